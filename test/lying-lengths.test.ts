import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRuleId } from '../grammar/rules.js';
import { openMainStream } from '../src/codec/open.js';
import type { MainRecord } from '../src/model/records.js';
import { validateMain } from '../src/loader/validate.js';
import { lengthFields, readBeField, withField, type LengthField } from '../src/fuzz/mutators.js';
import { BufferSource } from '../src/io/source.js';
import { PipeLike, REAL, ROOT } from './helpers.js';

/**
 * Every length field the fuzzer knows (src/fuzz/mutators.ts lengthFields), in every seed that
 * has one, set to 0, one less and one more than it is, just past the end of the file, 2^32,
 * 2^53 and 2^64-1 (each cut to the field's width): the reference loader answers with
 * diagnostics of the rule catalogue, never an internal error, and never allocates by the claimed
 * size (the heap stays small). Read as a file and as a pipe (no size known), since a pipe is
 * where a lying length could make a reader buffer what it was promised.
 */
const SEEDS = [
  join(REAL, 'qemu-11.1', 'pc-paused.mig'),
  join(REAL, 'qemu-11.1', 'pc-mapped-ram.mig'),
  join(REAL, 'qemu-11.1', 'pc-postcopy-ram.mig'),
  join(REAL, 'qemu-10.0', 'pc-xbzrle.mig'),
  join(REAL, 'qemu-7.2', 'pc-compress-7.2.mig'),
  join(REAL, 'qemu-7.2', 'pc-x-ignore-shared.mig'),
  join(ROOT, 'fixtures', 'vfio', 'v2-precopy-switchover-ack-8.1.mig'),
];

function records(b: Uint8Array): MainRecord[] {
  return [...openMainStream(new BufferSource(b)).records()];
}

function values(f: LengthField, seed: Uint8Array): { name: string; v: bigint }[] {
  const actual = readBeField(seed, f);
  const max = (1n << BigInt(f.width * 8)) - 1n;
  const pastEnd = BigInt(seed.length - (f.at + f.width) + 1);
  const cut = (v: bigint): bigint => (v > max ? max : v);
  return [
    { name: '0', v: 0n },
    { name: 'one less', v: actual > 0n ? actual - 1n : 0n },
    { name: 'one more', v: cut(actual + 1n) },
    { name: 'just past the file', v: cut(pastEnd) },
    { name: '2^32', v: cut(1n << 32n) },
    { name: '2^53', v: cut(1n << 53n) },
    { name: '2^64-1', v: max },
  ];
}

describe('lying lengths at every width', () => {
  for (const path of SEEDS) {
    const seed = new Uint8Array(readFileSync(path));
    const name = path.slice(ROOT.length + 1);
    it(`${name}: every length field at 0, ±1, past the end, 2^32, 2^53, 2^64-1`, () => {
      const fields = lengthFields(records(seed));
      // each kind once is enough to cover its code; more of a kind only repeat it
      const kinds = new Map<string, LengthField>();
      for (const f of fields)
        if (!kinds.has(f.what.replace(/^MIG_CMD_\w+/, 'cmd'))) kinds.set(f.what.replace(/^MIG_CMD_\w+/, 'cmd'), f);
      expect(kinds.size).toBeGreaterThan(3);
      const heapBefore = process.memoryUsage().arrayBuffers;
      let rejected = 0;
      for (const f of kinds.values()) {
        for (const { name: what, v } of values(f, seed)) {
          const bytes = withField(seed, f, v);
          for (const source of [new BufferSource(bytes, 'file'), new PipeLike(bytes)]) {
            const label = `${f.what} = ${v} (${what}) @0x${f.at.toString(16)} via ${source.name}`;
            let r;
            try {
              r = validateMain(source, {});
            } catch (e) {
              throw new Error(`${label}: internal error ${(e as Error).stack}`, { cause: e });
            }
            for (const d of r.diagnostics) expect(isRuleId(d.rule), `${label}: ${d.rule}`).toBe(true);
            // a claim of more bytes than the whole file holds cannot be true
            if (v > BigInt(seed.length) && f.what === 'vmdescription length') {
              // after QEMU_VM_EOF: QEMU never reads it; a warning (an error with --strict)
              expect(
                r.diagnostics.map((d) => d.rule),
                label,
              ).toContain('savevm/after-eof');
            } else if (v > BigInt(seed.length) && !/idstr length/.test(f.what)) {
              expect(r.valid, `${label} is refused`).toBe(false);
            }
            if (!r.valid) rejected++;
            expect(
              process.memoryUsage().arrayBuffers - heapBefore,
              `${label}: no allocation by the claimed size`,
            ).toBeLessThan(256 << 20);
          }
        }
      }
      expect(rejected).toBeGreaterThan(0);
    });
  }

  // A RAMBlock used_length that lies together with the MEM_SIZE total (so the sum still
  // matches): the mapped-ram bitmap is then sized by the lie (used_length / page / 8).
  it('mapped-ram: used_length and MEM_SIZE total lying together, bitmaps of 2^20 to 2^40 bytes (the stream ends inside them)', () => {
    const seed = new Uint8Array(readFileSync(join(REAL, 'qemu-11.1', 'pc-mapped-ram.mig')));
    const recs = records(seed);
    const fields = lengthFields(recs);
    const total = fields.find((f) => f.what.startsWith('MEM_SIZE'))!;
    const used = fields.find((f) => f.what === 'RAMBlock used_length')!;
    const oldUsed = readBeField(seed, used);
    const oldTotal = readBeField(seed, total) << 16n; // the top 48 bits of the be64
    for (const bits of [35n, 40n, 44n, 49n, 52n]) {
      const lie = 1n << bits;
      const newTotal = oldTotal - oldUsed + lie;
      // pages_offset moved past the lying bitmap, so the header itself stays consistent
      const bitmapOffset = readBeField(
        seed,
        fields.find((f) => f.what === 'MappedRamHeader bitmap_offset')!,
      );
      const pagesOffset = ((bitmapOffset + ((lie / 4096n + 63n) / 64n) * 8n + 4095n) / 4096n) * 4096n;
      const pages = fields.find((f) => f.what === 'MappedRamHeader pages_offset')!;
      const bytes = withField(withField(withField(seed, used, lie), total, newTotal >> 16n), pages, pagesOffset);
      for (const source of [new BufferSource(bytes, 'file'), new PipeLike(bytes)]) {
        const r = validateMain(source, { capabilities: ['mapped-ram'] });
        expect(r.valid, `used_length 2^${bits} via ${source.name}`).toBe(false);
        expect(r.diagnostics.map((d) => d.rule)).toContain('stream/truncated');
      }
    }
  });

  // libvirt-save-image.md: the header's be32 data_len says how much XML follows
  it('libvirt save image: data_len at 0, past the file, 2^32-1', () => {
    const stream = new Uint8Array(readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.mig')));
    const xml = Buffer.from('<domain type="kvm"><name>vm</name></domain>\0');
    for (const dataLen of [0, xml.length + stream.length + 1, 0xffffffff]) {
      const head = Buffer.alloc(92);
      head.write('LibvirtQemudSave', 0, 'latin1');
      [2, dataLen, 1, 0, xml.length].forEach((v, i) => head.writeUInt32LE(v, 16 + 4 * i));
      const bytes = new Uint8Array(Buffer.concat([head, xml, stream]));
      for (const source of [new BufferSource(bytes, 'file'), new PipeLike(bytes)]) {
        const r = validateMain(source, {});
        expect(r.valid, `data_len ${dataLen} via ${source.name}`).toBe(false);
        for (const d of r.diagnostics) expect(isRuleId(d.rule)).toBe(true);
      }
    }
  });
});
