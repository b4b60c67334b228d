// Apart from errors.ts: the hex rows open the input again (qcow2, gzip, libvirt readers), which the
// start-up path of main.ts (--version, --help, usage errors) must not load.
import { errColor } from './color.js';
import { reportError } from './errors.js';
import { hexContext } from './hex-context.js';
import { StreamError } from '../model/errors.js';

/** reportError, then, for an invalid stream, the bytes of `file` around the error's offset. */
export function reportErrorIn(file: string, e: unknown): number {
  const code = reportError(e);
  if (e instanceof StreamError) process.stderr.write(hexContext(file, e.offset, errColor()));
  return code;
}
