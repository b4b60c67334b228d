/**
 * The validate use case: a stream file (main channel or a lone multifd channel), with its side
 * channels, judged by the reference loader. Returns the verdict and the diagnostics.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { detectChannelKind } from '../codec/channels.js';
import { UsageError } from '../model/errors.js';
import type { LoadOptions } from '../loader/load.js';
import { validateCprChannel, validateMain, validateMultifdChannel, type ValidationResult } from '../loader/validate.js';
import { openSource, readVmsdFile } from './open.js';
import { destinationProfile } from './profile.js';

/** The destination to judge a stream for (profile, machine, capabilities, parameters) and the stream's side channels. */
export interface ValidateRequest extends Omit<LoadOptions, 'vmdesc' | 'capabilities' | 'profile'> {
  /** the destination: a stream it accepted, or a profile JSON (`migstream profile`) */
  profile?: string;
  /** the destination's machine type (over the profile's) */
  machine?: string;
  /** the destination's -uuid (over the profile's) */
  uuid?: string;
  /** destination capabilities (QEMU names); none by default */
  capabilities?: string[];
  /** a vmdescription JSON file to judge device payloads by, instead of the stream's own */
  vmsd?: string;
  pageSize?: number;
  /** multifd channel files of this stream, in any order */
  multifd?: string[];
  /** the return-path capture (destination to source) */
  returnPath?: string;
  /** a qcow2 image: the internal snapshot (id or name) to validate; default the newest */
  snapshot?: string;
  /** threads for compressed multifd channels (SideChannels.threads): 1, N, or automatic */
  threads?: number;
}

/** The streams a list of arguments names: files as given, a directory's `*.mig` files in name order. */
export function streamFilesOf(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a !== '-' && existsSync(a) && statSync(a).isDirectory()) {
      const found = readdirSync(a)
        .filter((f) => f.endsWith('.mig'))
        .sort()
        .map((f) => join(a, f));
      if (!found.length) throw new UsageError(`${a}: a directory without *.mig files`);
      out.push(...found);
    } else out.push(a);
  }
  return out;
}

/** Validate a stream file as a destination would load it (`migstream validate`); throws UsageError when it cannot be read. */
export function validateFile(file: string, o: ValidateRequest = {}): ValidationResult {
  const {
    vmsd,
    pageSize,
    multifd = [],
    returnPath,
    profile,
    machine,
    uuid,
    capabilities = [],
    snapshot,
    threads,
    ...load
  } = o;
  const vmdesc = readVmsdFile(vmsd);
  const destination = destinationProfile({ profile, machine, uuid });
  const src = openSource(file, snapshot);
  const kind = detectChannelKind(src);
  if (kind === 'multifd') return validateMultifdChannel({ name: file, source: src }, pageSize);
  if (kind === 'cpr') return validateCprChannel({ name: file, source: src });
  return validateMain(
    src,
    { ...load, capabilities, vmdesc, profile: destination },
    { pageSize, vmdesc },
    {
      multifd: multifd.map((f) => ({ name: f, source: openSource(f) })),
      returnPath: returnPath ? { name: returnPath, source: openSource(returnPath) } : undefined,
      threads,
    },
  );
}
