import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMainStream, roundtripSource } from '../src/codec/open.js';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps } from '../src/formats/pyjson.js';
import { BufferSource } from '../src/io/source.js';
import { REAL, ROOT, tempDir } from './helpers.js';

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

  it('a gzip image from a pipe (nothing to inflate it) is refused with what to do', () => {
    const s = openMainStream(new BufferSource(wrap(paused, { format: 1 })));
    expect(() => [...s.records()]).toThrow(
      /raw or sparse libvirt save image \(a gzip one is read directly when opened as a file, not from a pipe\), found a gzip-compressed image/,
    );
  });

  describe('a gzip body (virsh save with save_image_format = "gzip"), read from the file', () => {
    const dir = tempDir('migstream-libvirt-');
    const raw = wrap(paused);
    const headerEnd = raw.length - paused.length;
    const gz = join(dir, 'vm.save');
    // the header and XML as they are, format 1, then the stream gzip-compressed
    const image = Buffer.concat([Buffer.from(wrap(new Uint8Array(0), { format: 1 })), gzipSync(paused)]);
    writeFileSync(gz, image);
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), ...args], { encoding: 'utf8' });

    it('dumps as analyze-migration.py dumped the bare stream; validates; round-trips to its inflated bytes', () => {
      expect(cli(['dump', gz]).stdout).toBe(expected);
      expect(cli(['validate', gz]).stdout).toBe(`${gz}: valid (0 diagnostics)\n`);
      expect(cli(['roundtrip', gz]).stdout).toMatch(/identical/);
      // the IR's offsets are those of the inflated image: encoded, it is the raw image
      const ir = join(dir, 'vm.ir');
      expect(cli(['dump', '--format', 'ir', '--inline', gz, '-o', ir]).status).toBe(0);
      const out = join(dir, 'vm.raw');
      expect(cli(['encode', ir, '-o', out]).status).toBe(0);
      const again = readFileSync(out);
      expect(again.subarray(headerEnd)).toEqual(Buffer.from(paused));
      expect(again.readUInt32LE(16 + 12)).toBe(1); // the header is kept as it was: format gzip
    });

    it('other compressed bodies are refused, naming the command and the offset where the body starts', () => {
      const f = join(dir, 'vm-xz.save');
      writeFileSync(f, Buffer.concat([Buffer.from(wrap(new Uint8Array(0), { format: 3 })), Buffer.from('not xz')]));
      const r = cli(['dump', f]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`from offset ${headerEnd}, decompresses with \`xz -dc\``);
    });
  });

  it('an incomplete save (LibvirtQemudPart) decodes with a warning', () => {
    const s = openMainStream(new BufferSource(wrap(paused, { magic: 'LibvirtQemudPart' })));
    for (const _ of s.records());
    expect(s.warnings.map((w) => w.message)).toContain('libvirt save image marked incomplete (LibvirtQemudPart)');
  });

  describe('the shipped image (fixtures/libvirt/, built by its make.mjs)', () => {
    const image = join(ROOT, 'fixtures', 'libvirt', 'pc-paused-7.2.save');
    const bytes = readFileSync(image);
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), ...args], { encoding: 'utf8' });

    it('dumps as analyze-migration.py dumped the bare 7.2 stream', () => {
      expect(cli(['dump', image]).stdout).toBe(readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.analyze.json'), 'utf8'));
    });

    it('libvirt-xml prints the domain XML and --cookie the cookie, as the header places them', () => {
      // virQEMUSaveHeader, little-endian: data_len at 20, cookieOffset at 32; the XML and cookie NUL-terminated
      const dataLen = bytes.readUInt32LE(20);
      const cookieOffset = bytes.readUInt32LE(32);
      const data = bytes.subarray(92, 92 + dataLen);
      const xml = data.subarray(0, data.indexOf(0)).toString('utf8');
      const cookie = data.subarray(cookieOffset, data.indexOf(0, cookieOffset)).toString('utf8');
      expect(xml).toContain('<domain');
      expect(cli(['libvirt-xml', image]).stdout).toBe(xml);
      expect(cli(['libvirt-xml', '--cookie', image]).stdout).toBe(cookie);
      const bare = cli(['libvirt-xml', join(REAL, 'qemu-7.2', 'pc-paused.mig')]);
      expect(bare.status).toBe(2);
      expect(bare.stderr).toContain('is not a libvirt save image');
    });
  });
});
