/**
 * The validate use case: a stream file (main channel or a lone multifd channel), with its side
 * channels, judged by the reference loader. Returns the verdict and the diagnostics.
 */
import { detectChannelKind } from '../codec/channels.js';
import type { LoadOptions } from '../loader/load.js';
import { validateMain, validateMultifdChannel, type ValidationResult } from '../loader/validate.js';
import { openSource, readVmsdFile } from './open.js';

export interface ValidateRequest extends Omit<LoadOptions, 'vmdesc' | 'capabilities'> {
  capabilities: string[];
  /** a vmdescription JSON file to judge device payloads by, instead of the stream's own */
  vmsd?: string;
  pageSize?: number;
  /** multifd channel files of this stream, in any order */
  multifd: string[];
  /** the return-path capture (destination to source) */
  returnPath?: string;
}

export function validateFile(file: string, o: ValidateRequest): ValidationResult {
  const { vmsd, pageSize, multifd, returnPath, ...load } = o;
  const vmdesc = readVmsdFile(vmsd);
  const src = openSource(file);
  if (detectChannelKind(src) === 'multifd') return validateMultifdChannel({ name: file, source: src }, pageSize);
  return validateMain(
    src,
    { ...load, vmdesc },
    { pageSize, vmdesc },
    {
      multifd: multifd.map((f) => ({ name: f, source: openSource(f) })),
      returnPath: returnPath ? { name: returnPath, source: openSource(returnPath) } : undefined,
    },
  );
}
