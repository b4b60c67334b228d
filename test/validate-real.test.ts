import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateMain } from '../src/engine/validate.js';
import { FileSource } from '../src/io/source.js';
import { fixtureIndex, REAL } from './helpers.js';

/**
 * The reference loader agrees with QEMU on the real recordings: index.json says whether a
 * destination QEMU of the same version, with the same capabilities, loaded each stream.
 */
interface Case {
  version: string;
  case: string;
  dir: string;
  caps: Record<string, boolean>;
  loaded_by_qemu: boolean;
  files: { file: string }[];
}

describe('validate agrees with QEMU\'s own load of every recording', () => {
  for (const c of fixtureIndex() as unknown as Case[]) {
    const mig = c.files.find((f) => f.file.endsWith('.mig'));
    if (!mig) continue;
    it(`${c.dir}/${mig.file}: ${c.loaded_by_qemu ? 'loaded' : 'refused'} by QEMU ${c.version}`, () => {
      const capabilities = Object.entries(c.caps).filter(([, on]) => on).map(([k]) => k);
      const r = validateMain(new FileSource(join(REAL, c.dir, mig.file)), {
        capabilities,
        qemuVersion: c.version,
        // pc-old-format ran both sides with -global migration.send-configuration=off
        sendConfiguration: c.case !== 'pc-old-format',
      });
      expect(r.valid).toBe(c.loaded_by_qemu);
      if (!c.loaded_by_qemu) expect(r.diagnostics.some((d) => d.rule === 'stream/truncated')).toBe(true);
    });
  }
});
