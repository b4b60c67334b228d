import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFile, REAL, ROOT, runCli, tempDir } from './helpers.js';
import { save } from '../src/generator/save.js';
import { writeRamStream } from '../src/generator/synthetic-ram.js';

// `npm test` compiles first; these run the real executable as a user would.
const BIN = join(ROOT, 'bin', 'migstream');
const tmp = tempDir('migstream-cli-');

const run = runCli;

const paused = join(REAL, 'qemu-11.1', 'pc-paused.mig');
const xbzrle = join(REAL, 'qemu-10.0', 'pc-xbzrle.mig');
const mapped = join(REAL, 'qemu-11.1', 'pc-mapped-ram.mig');

describe('migstream CLI', () => {
  it('dump (default analyze) prints what analyze-migration.py printed', () => {
    const r = run(['dump', paused]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.analyze.json'), 'utf8'));
    expect(r.stderr).toBe('');
  });

  it('dump --vmsd: a suppress-vmdesc stream decoded with the description of a sibling recording', () => {
    // same QEMU (10.0) and machine options as pc-file, only suppress-vmdesc=on differs
    const r = run([
      'dump',
      join(REAL, 'qemu-10.0', 'pc-suppress-vmdesc.mig'),
      '--vmsd',
      join(REAL, 'qemu-10.0', 'pc-file.desc.json'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(r.stdout).not.toContain('$raw');
    expect(Object.keys(doc)).toEqual(
      Object.keys(JSON.parse(readFileSync(join(REAL, 'qemu-10.0', 'pc-file.analyze.json'), 'utf8'))),
    );
  });

  it('validate --vmsd judges sections against the given description', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-suppress-vmdesc.mig');
    expect(run(['validate', f, '--vmsd', join(REAL, 'qemu-10.0', 'pc-file.desc.json')]).code).toBe(0);
    // a description of another machine (q35): the i440fx devices are unknown to that destination
    const other = run(['validate', f, '--vmsd', join(REAL, 'qemu-10.0', 'q35-devices-running.desc.json')]);
    expect(other.code).toBe(1);
    expect(other.stdout).toContain('[savevm/unknown-section]');
  });

  it('dump from a pipe: the vmdescription arrives last, the output is the same', () => {
    const q35 = join(REAL, 'qemu-11.1', 'q35-devices-running.mig');
    const r = run(['dump', '-'], readFileSync(q35));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(REAL, 'qemu-11.1', 'q35-devices-running.analyze.json'), 'utf8'));
  });

  for (const f of [paused, xbzrle, mapped, join(REAL, 'qemu-7.2', 'pc-compress-7.2.mig')]) {
    it(`dump --format ir then encode reproduces ${f.split('/').slice(-2).join('/')} byte for byte`, () => {
      const ir = join(tmp, 'x.ir.json');
      const out = join(tmp, 'x.mig');
      expect(run(['dump', '--format', 'ir', f, '-o', ir]).code).toBe(0);
      const e = run(['encode', ir, '-o', out]);
      expect(e.stderr).toBe('');
      expect(e.code).toBe(0);
      expect(Buffer.compare(readFileSync(out), readFileSync(f))).toBe(0);
    });
  }

  it('the IR names its input relative to itself: encoded from another directory, and after the pair moved', () => {
    const base = tempDir('migstream-ir-paths-');
    mkdirSync(join(base, 'captures'));
    mkdirSync(join(base, 'irs'));
    const input = join(base, 'captures', 'pc.mig');
    copyFileSync(paused, input);
    const dumped = spawnSync(process.execPath, [BIN, 'dump', '--format', 'ir', 'pc.mig', '-o', '../irs/pc.ir'], {
      cwd: join(base, 'captures'),
    });
    expect(dumped.status).toBe(0);
    expect(readFileSync(join(base, 'irs', 'pc.ir'), 'utf8')).toContain('"source": "../captures/pc.mig",');
    // from the filesystem root, then with both moved under a new name
    const out = join(base, 'again.mig');
    expect(
      spawnSync(process.execPath, [BIN, 'encode', join(base, 'irs', 'pc.ir'), '-o', out], { cwd: '/' }).status,
    ).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(paused))).toBe(0);
    const moved = join(tempDir('migstream-ir-moved-'), 'tree');
    renameSync(base, moved);
    const r = spawnSync(process.execPath, [BIN, 'encode', join(moved, 'irs', 'pc.ir'), '-o', '-'], { cwd: '/' });
    expect(r.status).toBe(0);
    expect(Buffer.compare(r.stdout, readFileSync(paused))).toBe(0);
    // to stdout the IR's place is not known: the input is named by its absolute path
    expect(run(['dump', '--format', 'ir', paused]).stdout).toContain(`"source": ${JSON.stringify(paused)},`);
  });

  it('encode also reads an IR document that was re-formatted by hand (not one record per line)', () => {
    const ir = join(tmp, 'p.ir.json');
    expect(run(['dump', '--format', 'ir', '--inline', paused, '-o', ir]).code).toBe(0);
    writeFileSync(ir, JSON.stringify(JSON.parse(readFileSync(ir, 'utf8')), null, 2));
    const out = join(tmp, 'p.mig');
    expect(run(['encode', ir, '-o', out]).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(paused))).toBe(0);
  });

  it('the IR of an invalid stream encodes back to the same bytes, and encode exits 1', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-no-configuration.mig');
    const ir = join(tmp, 'nc.ir.json');
    const out = join(tmp, 'nc.mig');
    expect(run(['dump', '--format', 'ir', f, '-o', ir]).code).toBe(1);
    const e = run(['encode', ir, '-o', out]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('decode error at 0x45589');
    expect(Buffer.compare(readFileSync(out), readFileSync(f))).toBe(0);
  });

  it('dump --format ir --inline from stdin is self-contained', () => {
    const ir = join(tmp, 'inline.ir.json');
    const out = join(tmp, 'inline.mig');
    expect(run(['dump', '--format', 'ir', '--inline', '-', '-o', ir], readFileSync(paused)).code).toBe(0);
    expect(readFileSync(ir, 'utf8')).not.toContain('$ref');
    expect(run(['encode', ir, '-o', out]).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(paused))).toBe(0);
  });

  it('roundtrip: exit 0 for identical files', () => {
    const r = run(['roundtrip', paused, xbzrle]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pc-paused.mig: identical/);
  });

  it('roundtrip: exit 1 with the offset for an invalid stream, one line and its bytes, no stack trace', () => {
    const f = join(REAL, 'qemu-10.0', 'pc-no-configuration.mig');
    const r = run(['roundtrip', f]);
    expect(r.code).toBe(1);
    const [line, ...rows] = r.stderr.trim().split('\n');
    expect(line).toMatch(/at 0x45589: section 1 "ram" \(END\): expected QEMU_VM_SECTION_FOOTER/);
    expectHexContext(rows, readFileSync(f), 0x45589);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('dump of a damaged stream: partial output, exit 1, one error line', () => {
    const bad = readFileSync(paused).subarray(0, 0x5000);
    const f = join(tmp, 'cut.mig');
    writeFileSync(f, bad);
    const r = run(['dump', '--format', 'summary', f]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).ramRecords.zero).toBeGreaterThan(0);
    const [line = '', ...rows] = r.stderr.trim().split('\n');
    // the page record that the cut runs through starts at most a page and a header before it
    const at = parseInt(/at 0x([0-9a-f]+)/.exec(line)![1], 16);
    expect(at).toBeLessThanOrEqual(0x5000);
    expect(at).toBeGreaterThan(0x5000 - 4096 - 16);
    expect(line).toContain('end of stream');
    expectHexContext(rows, bad, at);
  });

  it('garbage input: exit 1 with the magic error', () => {
    const f = join(tmp, 'garbage.bin');
    writeFileSync(f, Buffer.from('not a migration stream'));
    const r = run(['dump', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('expected QEMU_VM_FILE_MAGIC');
  });

  it('usage and I/O errors: exit 2', () => {
    expect(run(['dump', join(tmp, 'missing.mig')]).code).toBe(2);
    expect(run(['dump', '--format', 'nope', paused]).code).toBe(2);
    expect(run(['frobnicate']).code).toBe(2);
    expect(run(['encode', paused, '-o', join(tmp, 'o')]).code).toBe(2);
  });

  it('stats of a multifd channel; roundtrip refuses stdin', () => {
    const r = run(['stats', join(REAL, 'qemu-10.0', 'pc-multifd-tcp.multifd0.bin')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^multifd\s+0\s+44\s+3\s+51\s+4879\s/m); // fixtures/real/README.md: 44 packets, SYNC x3, 51 normal, 4879 zero
    expect(run(['roundtrip', '-'], readFileSync(paused)).code).toBe(2);
  });

  it('stats prints the per-section table', () => {
    const r = run(['stats', paused]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ram\s+0\s+1\s+1\s+1\s+0\s+\d+$/m);
    expect(r.stdout).toMatch(/^pc\.ram\s+33554432\s+/m);
  });

  it('dump -x DIR writes what analyze-migration.py -x writes: RAMBlock files, desc.json, state.json', () => {
    const dir = join(tmp, 'x');
    expect(run(['dump', '-x', dir, paused]).code).toBe(0);
    const base = join(REAL, 'qemu-11.1', 'pc-paused');
    // the script writes both documents without the trailing newline print() adds on stdout
    expect(readFileSync(join(dir, 'state.json'), 'utf8') + '\n').toBe(readFileSync(`${base}.analyze.json`, 'utf8'));
    expect(readFileSync(join(dir, 'desc.json'), 'utf8') + '\n').toBe(readFileSync(`${base}.desc.json`, 'utf8'));
    expect(readFileSync(join(dir, 'pc.ram')).length).toBe(32 << 20); // "section sizes": pc.ram 0x2000000
    expect(readFileSync(join(dir, 'rom@etc', 'acpi', 'tables')).length).toBe(0x20000);
  });

  it('mapped-ram: the pages the bitmap marks present land at their offsets; holes are seeked over', () => {
    const f = join(REAL, 'qemu-11.1', 'pc-mapped-ram.mig');
    const dir = join(tmp, 'mr');
    expect(run(['dump', '--ram', `extract:${dir}`, f]).code).toBe(0);
    const bytes = readFileSync(f);
    const { records } = decodeFile(f);
    const pages = records.filter((r) => r.kind === 'mapped_ram_page' && r.present);
    expect(pages.length).toBe(45); // index.json census: MAPPED_RAM_pages_set 45
    for (const p of pages) {
      if (p.kind !== 'mapped_ram_page') continue;
      const out = readFileSync(join(dir, p.block.replace(/^\/+/, '')));
      expect(
        Buffer.compare(out.subarray(p.index * 4096, p.index * 4096 + 4096), bytes.subarray(p.offset, p.offset + 4096)),
      ).toBe(0);
    }
  });

  it('dump --ram extract writes the RAMBlocks; XBZRLE pages applied', () => {
    const dir = join(tmp, 'ram');
    const r = run(['dump', '--ram', `extract:${dir}`, xbzrle]);
    expect(r.code).toBe(0);
    // the same bytes as the in-process extraction, which test/golden.test.ts checks against the guest's program
    const golden = readFileSync(join(ROOT, 'test', 'golden', 'pc-xbzrle-10.0.ram-extract.sha256'), 'utf8');
    const ram = readFileSync(join(dir, 'pc.ram'));
    expect(golden).toContain(`pc.ram ${ram.length} ${createHash('sha256').update(ram).digest('hex')}`);
  });

  const vfio = join(ROOT, 'fixtures', 'vfio');

  it('validate: exit 0 for a valid stream, 1 with every diagnostic for an invalid one', () => {
    const ok = run([
      'validate',
      join(vfio, 'v2-precopy-switchover-ack-8.1.mig'),
      '--capability',
      'return-path',
      '--capability',
      'switchover-ack',
      '--qemu-version',
      '8.1',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/valid \(0 diagnostics\)/);
    const bad = run(['validate', join(vfio, 'bad-setup-eos.mig'), '--qemu-version', '8.1']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /at 0x[0-9a-f]+: section 2 "0000:00:02.0\/vfio" \(START\): error \[vfio\/setup-eos\] 0000:00:02.0\/vfio: SETUP STATE: EOS not found 0xffffffffef100005/,
    );
  });

  it('validate --format json is one document for CI', () => {
    const r = run([
      'validate',
      join(vfio, 'bad-init-data-twice.mig'),
      '--capability',
      'return-path',
      '--capability',
      'switchover-ack',
      '--qemu-version',
      '8.1',
      '--format',
      'json',
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.valid).toBe(false);
    expect(doc.diagnostics.map((d: { rule: string }) => d.rule)).toEqual(['vfio/switchover-ack-count']);
  });

  it('validate: usage errors exit 2', () => {
    expect(run(['validate', paused, '--qemu-version', 'eleven']).code).toBe(2);
    expect(run(['validate', paused, '--format', 'xml']).code).toBe(2);
  });

  it('validate on real recordings: valid with the destination settings they were loaded with', () => {
    expect(run(['validate', paused]).code).toBe(0);
    expect(run(['validate', join(REAL, 'qemu-11.1', 'pc-x-ignore-shared.mig')]).code).toBe(1); // the destination lacks x-ignore-shared
    expect(
      run(['validate', join(REAL, 'qemu-11.1', 'pc-x-ignore-shared.mig'), '--capability', 'x-ignore-shared']).code,
    ).toBe(0);
    expect(
      run([
        'validate',
        join(REAL, 'qemu-7.2', 'pc-old-format.mig'),
        '--no-configuration',
        '--no-section-footer',
        '--qemu-version',
        '7.2',
      ]).code,
    ).toBe(0);
  });

  it("dump --vfio-extract writes each device's data stream and config", () => {
    const dir = join(tmp, 'vfio');
    expect(run(['dump', join(vfio, 'v1-7.2.mig'), '--vfio-extract', dir]).code).toBe(0);
    // v1-7.2.scenario.json: precopy reads 4096 and 0, stop-copy reads 8192 and 100
    const data = readFileSync(join(dir, '0000:00:02.0_vfio.data'));
    expect(data.length).toBe(4096 + 8192 + 100);
    // the device data is what the save engine put into the DEV_DATA_STATE chunks, in order
    const saved = save(JSON.parse(readFileSync(join(vfio, 'v1-7.2.scenario.json'), 'utf8')));
    const chunks = saved.main.flatMap((r) => (r.kind === 'vfio_data' ? [Buffer.from(r.data)] : []));
    expect(Buffer.compare(data, Buffer.concat(chunks))).toBe(0);
    // the config file: PCIDevice version, 256-byte config, irq state, 4 MSI-X vectors, PBA (vfio-and-multifd.md §6)
    const config = readFileSync(join(dir, '0000:00:02.0_vfio.config'));
    expect(config.length).toBe(4 + 256 + 16 + 64 + 1);
    const pci = saved.main.find((r) => r.kind === 'vfio_pci_config');
    if (pci?.kind !== 'vfio_pci_config') throw new Error('no config');
    expect(config.readUInt32BE(0)).toBe(pci.pciVersion);
    expect(Buffer.compare(config.subarray(4, 260), Buffer.from(pci.config))).toBe(0);
  });

  it("gen writes the scenario's stream and its multifd channels", () => {
    const out = join(tmp, 'gen.mig');
    expect(run(['gen', join(vfio, 'multifd-10.0.scenario.json'), '-o', out]).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(join(vfio, 'multifd-10.0.mig')))).toBe(0);
    expect(
      Buffer.compare(
        readFileSync(join(tmp, 'gen.multifd1.bin')),
        readFileSync(join(vfio, 'multifd-10.0.multifd1.bin')),
      ),
    ).toBe(0);
  });

  it('validate MAIN --multifd CH --multifd CH: channels joined; exit 1 names the channel', () => {
    const f = join(vfio, 'multifd-10.0');
    const ok = run([
      'validate',
      `${f}.mig`,
      '--capability',
      'multifd',
      '--qemu-version',
      '10.0',
      '--multifd',
      `${f}.multifd1.bin`,
      '--multifd',
      `${f}.multifd0.bin`,
    ]);
    expect(ok.code).toBe(0);
    const b = join(vfio, 'bad-multifd-missing-idx');
    const bad = run([
      'validate',
      `${b}.mig`,
      '--capability',
      'multifd',
      '--qemu-version',
      '10.0',
      '--multifd',
      `${b}.multifd0.bin`,
      '--multifd',
      `${b}.multifd1.bin`,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /bad-multifd-missing-idx\.multifd\d\.bin: at 0x[0-9a-f]+: .*\[vfio\/buffer-missing\] 0000:00:02.0\/vfio: state buffer 1 never arrives/,
    );
  });

  it('validate of a lone multifd channel checks what it can without the main channel', () => {
    expect(run(['validate', join(REAL, 'qemu-11.1', 'pc-multifd-zstd-tcp.multifd0.bin')]).code).toBe(0);
    const dup = run(['validate', join(vfio, 'bad-multifd-sync-device-state.multifd0.bin')]);
    expect(dup.code).toBe(1);
    expect(dup.stdout).toContain('[multifd/device-state-sync] multifd: received SYNC device state packet');
  });

  it('dump --multifd --ram extract: RAM from the channels; the ROMs equal those of a plain file migration of the same QEMU', () => {
    const m = join(REAL, 'qemu-10.0', 'pc-multifd-tcp');
    const a = join(tmp, 'ram-multifd');
    const b = join(tmp, 'ram-file');
    expect(
      run([
        'dump',
        `${m}.mig`,
        '--multifd',
        `${m}.multifd0.bin`,
        '--multifd',
        `${m}.multifd1.bin`,
        '--ram',
        `extract:${a}`,
      ]).code,
    ).toBe(0);
    expect(run(['dump', join(REAL, 'qemu-10.0', 'pc-file.mig'), '--ram', `extract:${b}`]).code).toBe(0);
    // pc.bios and pc.rom are read-only ROM images of the same Debian package in both runs
    expect(readFileSync(join(a, 'pc.bios')).some((v) => v !== 0)).toBe(true); // the SeaBIOS image
    for (const rom of ['pc.bios', 'pc.rom'])
      expect(Buffer.compare(readFileSync(join(a, rom)), readFileSync(join(b, rom)))).toBe(0);
  });

  it('dump --multifd --vfio-extract reassembles multifd device state in idx order', () => {
    const f = join(vfio, 'multifd-10.0');
    const dir = join(tmp, 'mfd');
    expect(
      run([
        'dump',
        `${f}.mig`,
        '--multifd',
        `${f}.multifd0.bin`,
        '--multifd',
        `${f}.multifd1.bin`,
        '--vfio-extract',
        dir,
      ]).code,
    ).toBe(0);
    // multifd-10.0.scenario.json: stop-copy reads of 5000, 7000 and 3000 bytes
    const data = readFileSync(join(dir, '0000:00:02.0_vfio.data'));
    expect(data.length).toBe(15000);
    const saved = save(JSON.parse(readFileSync(`${f}.scenario.json`, 'utf8')));
    const bufs = saved.multifd
      .flat()
      .filter((r) => r.kind === 'multifd_payload')
      .map((r) => (r.kind === 'multifd_payload' ? r.data : new Uint8Array()));
    const byIdx = bufs
      .map((b) => ({
        idx: new DataView(b.buffer, b.byteOffset).getUint32(4),
        flags: new DataView(b.buffer, b.byteOffset).getUint32(8),
        data: b.subarray(12),
      }))
      .filter((b) => !(b.flags & 1))
      .sort((a, b) => a.idx - b.idx);
    expect(Buffer.compare(data, Buffer.concat(byIdx.map((b) => b.data)))).toBe(0);
  });

  it('dump --format summary with --multifd reports each channel', () => {
    const m = join(REAL, 'qemu-10.0', 'pc-multifd-tcp');
    const r = run([
      'dump',
      '-f',
      'summary',
      `${m}.mig`,
      '--multifd',
      `${m}.multifd0.bin`,
      '--multifd',
      `${m}.multifd1.bin`,
    ]);
    const doc = JSON.parse(r.stdout);
    // fixtures/real/README.md: 44 packets (SYNC x3, normal 51, zero 4879) and 31 packets (SYNC x3, normal 63, zero 3329)
    expect(
      doc.multifd.map((c: { packets: number; syncPackets: number; normalPages: number; zeroPages: number }) => [
        c.packets,
        c.syncPackets,
        c.normalPages,
        c.zeroPages,
      ]),
    ).toEqual([
      [44, 3, 51, 4879],
      [31, 3, 63, 3329],
    ]);
  });

  it('fuzz: exit 0 without findings, 1 with them, 2 for a bad target', () => {
    const quiet = run(['fuzz', paused, '--runs', '50', '--seed', '5']);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toMatch(
      /^50 runs in \d+\.\d s \(\d+ execs\/s\): \d+ accepted, \d+ rejected, 0 crashes, 0 hangs, 0 internal errors; 0 distinct findings$/m,
    );
    // accepts the seed itself, crashes on every mutant
    const crashing = run([
      'fuzz',
      paused,
      '--runs',
      '10',
      '--target',
      `cmd:sh -c 'cmp -s "$1" ${paused} || kill -SEGV $$' sh {}`,
    ]);
    expect(crashing.code).toBe(1);
    expect(crashing.stdout).toMatch(/^run 0: crash: exit status 139 \(signal 11\).*\[10 runs\]/m);
    expect(run(['fuzz', paused, '--target', 'qemu']).code).toBe(2);
    const missing = run(['fuzz', paused, '--runs', '2', '--target', 'cmd:/nonexistent-binary {}']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not accept the unmutated seed .*pc-paused\.mig \(rejected: exit status 127/);
  });

  it('roundtrip --kind return-path and dump of a return-path capture', () => {
    const rp = join(REAL, 'qemu-10.0', 'pc-switchover-ack-tcp.main-return-path.bin');
    expect(run(['roundtrip', '--kind', 'return-path', rp]).code).toBe(0);
    const doc = JSON.parse(run(['dump', '--kind', 'return-path', '-f', 'summary', rp]).stdout);
    // fixtures/real/README.md: MIG_RP_MSG SWITCHOVER_ACK(), PONG(00000001), SHUT(00000000)
    expect(doc.messages.map((m: { name: string }) => m.name)).toEqual([
      'MIG_RP_MSG_SWITCHOVER_ACK',
      'MIG_RP_MSG_PONG',
      'MIG_RP_MSG_SHUT',
    ]);
  });
});

describe('bin/qemu-load parses its options strictly', () => {
  const qemuLoad = (args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'bin', 'qemu-load'), ...args], { encoding: 'utf8', timeout: 20_000 });
  const paused72 = join(REAL, 'qemu-7.2', 'pc-paused.mig');
  it('an unknown option is a usage error, not the FILE', () => {
    const r = qemuLoad(['--capabilty', 'multifd', paused72]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^qemu-load: unknown option --capabilty\nusage: qemu-load/);
  });
  it('--help prints the usage with an example and exits 0', () => {
    const r = qemuLoad(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: qemu-load [^]*example: qemu-load /);
  });
  it('a missing FILE fails at once', () => {
    const r = qemuLoad(['/nonexistent/stream.mig']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^qemu-load: \/nonexistent\/stream.mig: no such file/);
  });
  it('an option without its value', () => {
    const r = qemuLoad(['--timeout']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^qemu-load: --timeout needs a value/);
  });
});

/**
 * The hex rows printed under an error: each row's bytes are the file's at that address, the
 * byte at the offset is marked by a caret under it (or the input ends there), and nothing else
 * is printed.
 */
function expectHexContext(rows: string[], file: Uint8Array, offset: number): void {
  expect(rows.length).toBeGreaterThanOrEqual(2);
  let caretSeen = false;
  let previous = '';
  for (const row of rows) {
    const m = /^ {4}([0-9a-f]{8}) {2}((?:[0-9a-f]{2}| {2})(?: {1,2}(?:[0-9a-f]{2}| {2})){15}) {2}\|.{16}\|$/.exec(row);
    if (m) {
      const at = parseInt(m[1], 16);
      const bytes = m[2]
        .split(/ +/)
        .filter((x) => x)
        .map((x) => parseInt(x, 16));
      expect(bytes).toEqual([...file.subarray(at, at + bytes.length)]);
      previous = row;
      continue;
    }
    if (row === `    (the input ends at 0x${offset.toString(16)})`) {
      expect(offset).toBe(file.length);
      caretSeen = true;
      continue;
    }
    const caret = /^( +)\^\^ 0x([0-9a-f]+)$/.exec(row);
    expect(caret, `not a hex row or a caret line: ${JSON.stringify(row)}`).not.toBeNull();
    expect(parseInt(caret![2], 16)).toBe(offset);
    const rowStart = parseInt(previous.slice(4, 12), 16);
    const i = offset - rowStart;
    expect(i >= 0 && i < 16).toBe(true);
    // the caret's column is the byte's column in the row above
    expect(caret![1].length).toBe(14 + 3 * i + (i >= 8 ? 1 : 0));
    caretSeen = true;
  }
  expect(caretSeen).toBe(true);
}

describe('the bytes around an error', () => {
  const cut = join(tmp, 'cut-hex.mig');
  const bytes = readFileSync(join(REAL, 'qemu-7.2', 'pc-paused.mig')).subarray(0, 3000);
  writeFileSync(cut, bytes);

  it('dump, stats and validate show them; the byte at the offset marked', () => {
    for (const args of [
      ['dump', cut],
      ['stats', cut],
    ]) {
      const r = run(args);
      expect(r.code).toBe(1);
      const [line = '', ...rows] = r.stderr.trim().split('\n');
      expectHexContext(rows, bytes, parseInt(/at 0x([0-9a-f]+)/.exec(line)![1], 16));
    }
    const v = run(['validate', join(ROOT, 'fixtures', 'vfio', 'bad-init-data-twice.mig')]);
    const lines = v.stdout.trim().split('\n');
    // the first error's bytes follow its line; the second error's line comes right after them
    expect(lines[0]).toMatch(/at 0x114c: .*\[vfio\/init-data-sent-without-ack\]/);
    expectHexContext(
      lines.slice(1, 5),
      readFileSync(join(ROOT, 'fixtures', 'vfio', 'bad-init-data-twice.mig')),
      0x114c,
    );
    expect(lines[5]).toMatch(/at 0x1980: .*\[vfio\/init-data-sent-without-ack\]/);
  });

  it('in color the byte is shown inverse instead of a caret', () => {
    const r = spawnSync(process.execPath, [BIN, 'dump', cut], {
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '1' },
    });
    const at = parseInt(/at 0x([0-9a-f]+)/.exec(r.stderr)![1], 16);
    const b = bytes[at].toString(16).padStart(2, '0');
    expect(r.stderr).toContain(`\x1b[7m\x1b[31m${b}\x1b[39m\x1b[27m`);
    expect(r.stderr).not.toContain('^^');
  });

  it('from a pipe there is nothing to re-read: the error line alone', () => {
    const r = run(['dump', '-'], bytes);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('output through real pipes', () => {
  const q35 = join(REAL, 'qemu-11.1', 'q35-devices-running.mig');
  const sh = (script: string) =>
    spawnSync('bash', ['-c', script], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 50_000,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
  const tmpd = tempDir('migstream-pipes-');

  it("a reader that closes early (| head) ends the command quietly with status 141 (SIGPIPE's)", () => {
    const r = sh(`bin/migstream dump ${q35} 2>${tmpd}/err | head -c 10 >/dev/null; echo "$\{PIPESTATUS[0]}"`);
    expect(r.stdout.trim()).toBe('141');
    expect(readFileSync(join(tmpd, 'err'), 'utf8')).toBe('');
  });

  it('help to a reader that has closed its end (--help | true) ends quietly with 141, for the program and for a command', async () => {
    // the read end is closed before the child starts writing (Node takes tens of ms to start), so
    // every write of the help meets EPIPE: commander's own write to process.stdout threw out of Node
    const closedReader = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      });
    for (const args of [['--help'], ['help'], ['dump', '--help'], ['fuzz', '--help'], ['--version']]) {
      expect(await closedReader(args), args.join(' ')).toEqual({ code: 141, stderr: '' });
    }
  });

  it('a slow reader loses nothing: encode -o - into a pipe that is read after a pause, IR of 2 MB', () => {
    const ir = join(tmpd, 'q35.ir');
    expect(run(['dump', '--format', 'ir', '--inline', q35, '-o', ir]).code).toBe(0);
    const out = join(tmpd, 'q35.out');
    const r = sh(`bin/migstream encode ${ir} -o - | (sleep 1; cat) > ${out}; echo "$\{PIPESTATUS[0]}"`);
    expect(r.stdout.trim()).toBe('0');
    expect(Buffer.compare(readFileSync(out), readFileSync(q35))).toBe(0);
  });

  it('encode -o - | cat reproduces the stream byte for byte, 20 times in a row', () => {
    const ir = join(tmpd, 'q35-20.ir');
    expect(run(['dump', '--format', 'ir', '--inline', q35, '-o', ir]).code).toBe(0);
    const r = sh(
      `for i in $(seq 20); do bin/migstream encode ${ir} -o - | cat > ${tmpd}/o$i || exit 9; cmp -s ${tmpd}/o$i ${q35} || { echo "run $i differs"; exit 1; }; done; echo same`,
    );
    expect(r.stdout.trim()).toBe('same');
  });

  it('dump --ram hex holds pages on disk, not in memory: 128 MiB of RAM from a file and from a pipe', () => {
    // the script's -m (and the in-memory dict this replaced) holds 3 bytes of text per byte of
    // RAM: 384 MiB here. Node itself starts at about 50 MiB.
    const big = join(tmpd, 'ram-128m.mig');
    writeRamStream(big, 128 << 20);
    const wrapper = join(tmpd, 'rss.mjs');
    writeFileSync(
      wrapper,
      `import { main } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'cli', 'main.js'))};\n` +
        `const code = await main(['node', 'migstream', ...process.argv.slice(2)]);\n` +
        `process.stderr.write(JSON.stringify({ code, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));\n`,
    );
    for (const cmd of [
      `node ${wrapper} dump --ram hex ${big} -o /dev/null`,
      `cat ${big} | node ${wrapper} dump --ram hex - -o /dev/null`,
    ]) {
      const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', timeout: 100_000 });
      const m = JSON.parse(r.stderr) as { code: number; maxRssMiB: number };
      expect(m.code, cmd).toBe(0);
      expect(m.maxRssMiB, cmd).toBeLessThan(200);
    }
    // and every page is printed: one memory entry per page of the block
    const r = sh(`bin/migstream dump --ram hex ${big} | grep -c '"pc.ram (0x'`);
    expect(r.stdout.trim()).toBe(String((128 << 20) / 4096));
  }, 200_000);

  it('dump through a slow pipe equals dump to a file', () => {
    const a = join(tmpd, 'a.json');
    expect(run(['dump', q35, '-o', a]).code).toBe(0);
    const b = join(tmpd, 'b.json');
    const r = sh(`bin/migstream dump ${q35} | (sleep 1; cat) > ${b}; echo "$\{PIPESTATUS[0]}"`);
    expect(r.stdout.trim()).toBe('0');
    expect(readFileSync(b, 'utf8')).toBe(readFileSync(a, 'utf8'));
  });
});

describe('errors say what went wrong, with the path', () => {
  const paused11 = join(REAL, 'qemu-11.1', 'pc-paused.mig');
  const err = (args: string[]) => {
    const r = run(args);
    return { code: r.code, stderr: r.stderr };
  };
  it('a directory, a missing file', () => {
    expect(err(['dump', join(ROOT, 'fixtures')])).toEqual({
      code: 2,
      stderr: `migstream: cannot open ${join(ROOT, 'fixtures')}: is a directory (give a stream file)\n`,
    });
    expect(err(['dump', '/nonexistent.mig'])).toEqual({
      code: 2,
      stderr: 'migstream: cannot open /nonexistent.mig: no such file or directory\n',
    });
  });
  it('an output directory that cannot be made fails at once (no hang under /proc)', () => {
    const r = err(['dump', '-x', '/proc/forbidden/x', paused11]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^migstream: \/proc\/forbidden: no such file or directory \(mkdir\)$/m);
  });
  it('option values are checked up front: page size, capability names', () => {
    const ps = err(['dump', '--page-size', '3000', paused11]);
    expect(ps.code).toBe(2);
    expect(ps.stderr).toMatch(/argument '3000' is invalid\. a power of two from 512 to 2\^30/);
    const cap = err(['validate', '--capability', 'bogus-cap', paused11]);
    expect(cap.code).toBe(2);
    expect(cap.stderr).toMatch(
      /'bogus-cap' is invalid\. not a QEMU migration capability; one of: xbzrle, .*mapped-ram/,
    );
  });
  it('gen -o - writes the stream to stdout and names what else it wrote', () => {
    const r = run(['gen', join(ROOT, 'fixtures', 'vfio', 'v1-7.2.scenario.json'), '-o', '-']);
    expect(r.code).toBe(0);
    expect(Buffer.compare(r.raw, readFileSync(join(ROOT, 'fixtures', 'vfio', 'v1-7.2.mig')))).toBe(0);
    expect(err(['gen', join(ROOT, 'fixtures', 'vfio', 'multifd-10.0.scenario.json'), '-o', '-']).code).toBe(2);
  });
});

describe('profile and validate --profile/--machine/--uuid', () => {
  const uuid72 = join(ROOT, 'fixtures', 'recorded-7.2', 'pc-validate-uuid.mig');
  it('profile writes what the stream says of its destination, and validate takes it back', () => {
    const out = join(tmp, 'uuid.profile.json');
    const r = run(['profile', uuid72, '-o', out]);
    expect(r.code).toBe(0);
    const p = JSON.parse(readFileSync(out, 'utf8'));
    // the recording's meta.json: -machine pc (7.2 names it pc-i440fx-7.2), -uuid 12345678-9abc-def0-1234-56789abcdef0
    expect(p).toMatchObject({
      format: 'migstream-destination-profile',
      version: 1,
      machineType: 'pc-i440fx-7.2',
      qemuVersion: '7.2',
      uuid: '12345678-9abc-def0-1234-56789abcdef0',
    });
    expect(p.ramBlocks[0]).toEqual({ name: 'pc.ram', usedLength: 32 * 1024 * 1024 });
    expect(p.devices[0]).toEqual({ idstr: 'ram', instanceId: 0, versionId: 4 });
    expect(run(['validate', uuid72, '--profile', out]).code).toBe(0);
    expect(run(['validate', paused, '--profile', out]).stdout).toContain('[savevm/machine-type-mismatch]');
  });
  it('--machine and --uuid on their own', () => {
    const m = run(['validate', uuid72, '--machine', 'pc-i440fx-7.1']);
    expect(m.code).toBe(1);
    expect(m.stdout).toContain("Machine type received is 'pc-i440fx-7.2' and local is 'pc-i440fx-7.1'");
    const u = run(['validate', uuid72, '--uuid', '12345678-9ABC-DEF0-1234-56789ABCDEF1']);
    expect(u.code).toBe(1);
    expect(u.stdout).toContain('[savevm/uuid]');
    expect(run(['validate', uuid72, '--uuid', '12345678-9abc-def0-1234-56789abcdef0']).code).toBe(0);
    const bad = run(['validate', uuid72, '--uuid', 'not-a-uuid']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--uuid takes a UUID');
  });
  it('a profile JSON with a typo is refused, not ignored', () => {
    const f = join(tmp, 'typo.profile.json');
    writeFileSync(f, JSON.stringify({ format: 'migstream-destination-profile', version: 1, machinetype: 'pc' }));
    const r = run(['validate', paused, '--profile', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown key "machinetype"');
  });
});

describe('validate FILE...', () => {
  const v72 = join(REAL, 'qemu-7.2');
  it('one verdict per file, a summary line, exit 1 when any is invalid', () => {
    const ok = join(v72, 'pc-paused.mig');
    const bad = join(v72, 'pc-x-ignore-shared.mig'); // x-ignore-shared on in the source, not given here
    const r = run(['validate', ok, bad]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContain(`${ok}: valid (0 diagnostics)`);
    expect(lines).toContain(`${bad}: INVALID (1 diagnostics)`);
    expect(lines.at(-1)).toBe('2 files: 1 valid, 1 invalid');
    expect(run(['validate', ok, ok]).code).toBe(0);
  });
  it('a directory stands for its *.mig files, in name order; JSON holds one document per file', () => {
    const r = run(['validate', v72, '--format', 'json', '--qemu-version', '7.2']);
    const doc = JSON.parse(r.stdout) as { files: { file: string; valid: boolean }[]; valid: number; invalid: number };
    const names = readdirSync(v72)
      .filter((f) => f.endsWith('.mig'))
      .sort();
    expect(doc.files.map((f) => f.file)).toEqual(names.map((f) => join(v72, f)));
    expect(doc.valid + doc.invalid).toBe(names.length);
    expect(doc.invalid).toBe(doc.files.filter((f) => !f.valid).length);
    expect(r.code).toBe(doc.invalid ? 1 : 0);
  });
  it("text mode shows the decoder's warnings, as JSON does", () => {
    const f = join(REAL, 'qemu-10.0', 'pc-suppress-vmdesc.mig');
    const text = run(['validate', f])
      .stdout.split('\n')
      .filter((l) => l.includes('warning (decoder)'));
    const json = JSON.parse(run(['validate', f, '--format', 'json']).stdout);
    expect(json.warnings.length).toBeGreaterThan(0);
    expect(text).toEqual(
      json.warnings.map(
        (w: { offset: number; path: string; message: string }) =>
          `${f}: at 0x${w.offset.toString(16)}: ${w.path ? w.path + ': ' : ''}warning (decoder) ${w.message}`,
      ),
    );
  });
  it('side channels belong to one main stream', () => {
    const r = run(['validate', paused, paused, '--multifd', paused]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give one FILE with them');
  });
});
