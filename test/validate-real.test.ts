import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateMain } from '../src/loader/validate.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { decodeFile, fixtureIndex, REAL } from './helpers.js';

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

describe("validate agrees with QEMU's own load of every recording", () => {
  for (const c of fixtureIndex() as unknown as Case[]) {
    const mig = c.files.find((f) => f.file.endsWith('.mig'));
    if (!mig) continue;
    it(`${c.dir}/${mig.file}: ${c.loaded_by_qemu ? 'loaded' : 'refused'} by QEMU ${c.version}`, () => {
      const capabilities = Object.entries(c.caps)
        .filter(([, on]) => on)
        .map(([k]) => k);
      const r = validateMain(new FileSource(join(REAL, c.dir, mig.file)), {
        capabilities,
        qemuVersion: c.version,
        // pc-old-format ran both sides with -global migration.send-configuration=off and
        // send-section-footer=off; pc-no-section-footer with the latter only (meta.json)
        sendConfiguration: c.case !== 'pc-old-format',
        sectionFooters: c.case !== 'pc-old-format' && c.case !== 'pc-no-section-footer',
      });
      expect(r.valid).toBe(c.loaded_by_qemu);
      if (!c.loaded_by_qemu) expect(r.diagnostics.some((d) => d.rule === 'stream/truncated')).toBe(true);
    });
  }
});

describe('rules found by comparing with QEMU 7.2 on mutated recordings (test/qemu.test.ts)', () => {
  const paused = new Uint8Array(readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.mig')));
  const rulesOf = (edit: (b: Uint8Array) => void): string[] => {
    const b = paused.slice();
    edit(b);
    return [...new Set(validateMain(new BufferSource(b), {}).diagnostics.map((d) => d.rule))];
  };
  it('an idstr cut short ("ram" read as "ra"): QEMU says "Unknown savevm section or instance"', () => {
    expect(rulesOf((b) => (b[0x20] = 2))).toContain('savevm/unknown-section'); // worked-example.md: idstr length at 0x20
  });
  it('a machine type length that runs into the next record: QEMU says "Machine type received is ..."', () => {
    expect(rulesOf((b) => (b[0x0c] = 15))).toContain('savevm/machine-type'); // worked-example.md: be32 length 14 at 0x9
  });
  it('a section header whose version is above the vmdescription\'s: "savevm: unsupported version"', () => {
    // the first FULL section after the ram END: its version_id is the last be32 of its header
    const { records } = decodeFile(join(REAL, 'qemu-11.1', 'pc-paused.mig'));
    const full = records.find((r) => r.kind === 'section' && r.section === 'FULL')!;
    expect(rulesOf((b) => (b[full.offset + full.length - 2] = 1))).toContain('savevm/section-version');
  });
  it('a zero page outside its RAMBlock: "Illegal RAM offset"', () => {
    expect(rulesOf((b) => (b[0xca + 2] = 0x10))).toContain('ram/offset'); // worked-example.md: first RAM record at 0xca
  });
});
