import { openMainStream, type OpenOptions } from '../codec/open.js';
import { StreamError } from '../errors.js';
import type { ByteSource } from '../io/source.js';
import { ReferenceLoader, type Diagnostic, type LoadOptions } from './load.js';

export interface ValidationResult {
  valid: boolean;
  diagnostics: Diagnostic[];
  warnings: { offset: number; path: string; message: string }[];
}

/** Decode a main-channel stream and run the reference loader over it. */
export function validateMain(source: ByteSource, load: LoadOptions, open: OpenOptions = {}): ValidationResult {
  const s = openMainStream(source, { ...open, capabilities: load.capabilities });
  const loader = new ReferenceLoader(load);
  try {
    for (const rec of s.records()) loader.add(rec);
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    loader.streamError(e);
  }
  const diagnostics = loader.finish().sort((a, b) => a.offset - b.offset);
  return { valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics, warnings: s.warnings };
}
