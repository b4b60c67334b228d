import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMainStream, roundtripSource } from '../src/codec/open.js';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps } from '../src/formats/pyjson.js';
import { BufferSource } from '../src/io/source.js';
import { REAL } from './helpers.js';

/** A real QEMU stream inside a libvirt save image header laid out as libvirt-save-image.md says. */
function wrap(stream: Uint8Array, opts: { littleEndian?: boolean; format?: number; magic?: string } = {}): Uint8Array {
  const xml = Buffer.from('<domain type="kvm"><name>vm</name></domain>');
  const cookie = Buffer.from('<qemu-migration/>');
  const data = Buffer.concat([xml, Buffer.from([0]), cookie, Buffer.from([0]), Buffer.alloc(64 * 1024)]); // + 64 KiB padding
  const head = Buffer.alloc(92);
  head.write(opts.magic ?? 'LibvirtQemudSave', 0, 'latin1');
  const le = opts.littleEndian ?? true;
  [2, data.length, 1, opts.format ?? 0, xml.length + 1].forEach((v, i) =>
    le ? head.writeUInt32LE(v, 16 + 4 * i) : head.writeUInt32BE(v, 16 + 4 * i),
  );
  return new Uint8Array(Buffer.concat([head, data, stream]));
}

const paused = new Uint8Array(readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.mig')));
const expected = readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.analyze.json'), 'utf8');

function dump(b: Uint8Array): string {
  const s = openMainStream(new BufferSource(b));
  const d = new AnalyzeDump();
  for (const r of s.records()) d.add(r);
  return pyDumps(d.toPy()) + '\n';
}

describe('libvirt save images', () => {
  for (const littleEndian of [true, false]) {
    it(`${littleEndian ? 'little' : 'big'}-endian header: the stream after it dumps as analyze-migration.py dumped the bare stream`, () => {
      const b = wrap(paused, { littleEndian });
      expect(dump(b)).toBe(expected);
      expect(roundtripSource(new BufferSource(b), new BufferSource(b)).identical).toBe(true);
      const first = openMainStream(new BufferSource(b)).records().next().value;
      expect(first).toMatchObject({ kind: 'libvirt_header', version: 2, format: 0, wasRunning: 1, littleEndian });
    });
  }

  it('a compressed image is refused with what to do', () => {
    const s = openMainStream(new BufferSource(wrap(paused, { format: 1 })));
    expect(() => [...s.records()]).toThrow(
      /raw or sparse libvirt save image \(decompress it first\), found a gzip-compressed image/,
    );
  });

  it('an incomplete save (LibvirtQemudPart) decodes with a warning', () => {
    const s = openMainStream(new BufferSource(wrap(paused, { magic: 'LibvirtQemudPart' })));
    for (const _ of s.records());
    expect(s.warnings.map((w) => w.message)).toContain('libvirt save image marked incomplete (LibvirtQemudPart)');
  });
});
