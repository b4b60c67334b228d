import { readFileSync } from 'node:fs';
import { openMainStream, type OpenedStream } from '../codec/open.js';
import { UsageError } from '../errors.js';
import { FileSource } from '../io/source.js';
import { parseVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { warnLine } from './errors.js';

export interface StreamCliOptions {
  vmsd?: string;
  pageSize?: number;
  capability?: string[];
  /** keep every byte (IR): read mapped-ram holes too */
  exact?: boolean;
}

export function openSource(path: string): FileSource {
  try {
    return new FileSource(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot open ${path}: ${err.code ?? err.message}`);
  }
}

/** Open a main stream for reading what it says (not for re-encoding it). */
export function openFromCli(path: string, o: StreamCliOptions): OpenedStream {
  const vmdesc = readVmsdOption(o.vmsd);
  return openMainStream(openSource(path), { vmdesc, pageSize: o.pageSize, capabilities: o.capability ?? [], skipAbsentMappedRamPages: !o.exact });
}

/** The vmdescription given with --vmsd, if any. */
export function readVmsdOption(path: string | undefined): VmDescription | undefined {
  if (!path) return undefined;
  try {
    return parseVmDescription(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot use --vmsd ${path}: ${(e as Error).message}`);
  }
}

export function printWarnings(s: OpenedStream, max = 20): void {
  const ws = s.warnings;
  for (const w of ws.slice(0, max)) warnLine(`at 0x${w.offset.toString(16)}: ${w.path ? w.path + ': ' : ''}${w.message}`);
  if (ws.length > max) warnLine(`${ws.length - max} more warnings`);
}
