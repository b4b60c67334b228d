import { describe, expect, it } from 'vitest';
import type { MainRecord } from '../src/model/records.js';
import { decodeFile, fixtureIndex, REAL } from './helpers.js';
import { join } from 'node:path';

/**
 * The recording harness walked every stream and counted its records
 * (fixtures/real/index.json, "scan"). The decoder must find the same.
 */
const TYPE_NAMES: Record<string, string> = {
  START: 'SECTION_START',
  PART: 'SECTION_PART',
  END: 'SECTION_END',
  FULL: 'SECTION_FULL',
};

function census(records: MainRecord[]) {
  const rec: Record<string, number> = {};
  const cmds: Record<string, number> = {};
  const ram: Record<string, number> = {};
  const bump = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
  let subsections = 0;
  let ramBlocks = 0;
  const countSubs = (n: {
    subsections: { node: unknown }[];
    fields: { elements: { kind: string; node?: unknown }[] }[];
  }): void => {
    subsections += n.subsections.length;
    for (const s of n.subsections) countSubs(s.node as never);
    for (const f of n.fields) for (const e of f.elements) if (e.kind === 'struct') countSubs(e.node as never);
  };
  for (const r of records) {
    if (r.depth) continue;
    switch (r.kind) {
      case 'configuration':
        bump(rec, 'CONFIGURATION');
        for (let i = 0; i < r.subsections.length; i++) bump(rec, 'SUBSECTION');
        subsections += r.subsections.length;
        break;
      case 'section':
        bump(rec, TYPE_NAMES[r.section]);
        break;
      case 'section_footer':
        bump(rec, 'SECTION_FOOTER');
        break;
      case 'command':
        bump(rec, 'COMMAND');
        bump(cmds, r.name.replace(/^MIG_CMD_/, ''));
        break;
      case 'eof':
        bump(rec, 'EOF');
        break;
      case 'ram_block':
        ramBlocks++;
        if (r.mappedRam) bump(ram, 'MAPPED_RAM_BLOCKS');
        break;
      case 'mapped_ram_page':
        if (r.present) bump(ram, 'MAPPED_RAM_PAGES_SET');
        break;
      case 'vmstate':
        countSubs(r.node);
        break;
      case 'ram':
        bump(ram, r.op.toUpperCase());
        if ('block' in r && r.flags & 0x20) bump(ram, 'CONTINUE');
        break;
      default:
        break;
    }
  }
  return { rec, cmds, ram, subsections, ramBlocks };
}

describe('record census equals the recording harness scan', () => {
  for (const c of fixtureIndex()) {
    for (const file of c.files.filter((f) => f.file.endsWith('.mig'))) {
      it(`${c.dir}/${file.file}`, () => {
        const { records } = decodeFile(join(REAL, c.dir, file.file));
        const got = census(records);
        expect(got.rec).toEqual(file.scan.records);
        expect(got.cmds).toEqual(file.scan.commands ?? {});
        const ram = file.scan.ram ?? {};
        for (const k of ['ZERO', 'PAGE', 'EOS', 'XBZRLE', 'MULTIFD_FLUSH', 'MEM_SIZE', 'CONTINUE', 'COMPRESS_PAGE']) {
          const key = k === 'COMPRESS_PAGE' && !(k in ram) && 'COMPRESS' in ram ? 'COMPRESS' : k;
          expect(got.ram[k] ?? 0, k).toBe(ram[key] ?? 0);
        }
        expect(got.ram.MAPPED_RAM_BLOCKS ?? 0).toBe(ram.MAPPED_RAM_blocks ?? 0);
        expect(got.ram.MAPPED_RAM_PAGES_SET ?? 0).toBe(ram.MAPPED_RAM_pages_set ?? 0);
        if (ram.ramblocks !== undefined) expect(got.ramBlocks).toBe(ram.ramblocks);
        if (file.scan.vmdescription) expect(records.some((r) => r.kind === 'vmdescription')).toBe(true);
        if (file.scan.subsections !== undefined && file.scan.vmdescription)
          expect(got.subsections).toBe(file.scan.subsections);
      });
    }
  }
});
