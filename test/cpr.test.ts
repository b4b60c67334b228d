import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CPR_FD_DUMMY_BYTE, QEMU_CPR_FILE_MAGIC } from '../grammar/cpr.js';
import { detectChannelKind } from '../src/codec/channels.js';
import { encodeRecords, roundtripSource } from '../src/codec/open.js';
import { decodeCprChannel } from '../src/cpr/codec.js';
import { saveCprState } from '../src/generator/cpr.js';
import { StreamReader } from '../src/io/reader.js';
import { MemorySink } from '../src/io/sink.js';
import { BufferSource } from '../src/io/source.js';
import { validateCprChannel } from '../src/loader/validate.js';
import { ROOT } from './helpers.js';

/**
 * The CPR state channel (QEMU 10.0+ cpr-transfer). No QEMU here can send one (Debian's is
 * 7.2), so the fixture is the save engine's, and its bytes are checked one by one against
 * QEMU's source (qemu/qemu 1632a20, migration/cpr.c; migration/vmstate-types.c put_qlist;
 * migration/qemu-file.c qemu_file_put_fd). fixtures/cpr/README.md says how it was made.
 */
const FIXTURE = join(ROOT, 'fixtures', 'cpr', 'cpr-transfer.cpr');
const BIN = join(ROOT, 'bin', 'migstream');
/** the cpr_save_fd calls of the fixture, in call order (fixtures/cpr/README.md) */
const SAVED = [
  { name: 'ram0', id: 0 },
  { name: '0000:00:02.0', id: 0 },
  { name: 'tap', id: 0 },
  { name: 'tap', id: 1 },
];
const bytes = (): Uint8Array => new Uint8Array(readFileSync(FIXTURE));
const engine = (): Uint8Array => {
  const sink = new MemorySink();
  encodeRecords(saveCprState(SAVED), sink);
  return sink.bytes();
};

describe('the CPR state channel, byte by byte against QEMU source', () => {
  it('the fixture is what the save engine writes for the documented cpr_save_fd calls', () => {
    expect(engine()).toEqual(bytes());
  });
  it('header: be32 QEMU_CPR_FILE_MAGIC "QCPR", be32 QEMU_CPR_FILE_VERSION 1 (cpr_state_save)', () => {
    const b = bytes();
    expect(Buffer.from(b.subarray(0, 4)).toString('latin1')).toBe('QCPR');
    expect(new DataView(b.buffer, b.byteOffset).getUint32(0)).toBe(QEMU_CPR_FILE_MAGIC);
    expect([...b.subarray(4, 8)]).toEqual([0, 0, 0, 1]);
  });
  it('the list, most recent cpr_save_fd first (QLIST_INSERT_HEAD), each element framed by put_qlist', () => {
    const b = bytes();
    // element 1: tap id 1, the last call. put_qlist: byte 1; vmstate_cpr_fd: be32 namelen =
    // strlen + 1 (cpr_save_fd), the name with its NUL, be32 id, VMSTATE_FD: the byte " "
    expect([...b.subarray(8, 22)]).toEqual([
      1,
      ...[0, 0, 0, 4],
      ...Buffer.from('tap\0', 'latin1'),
      ...[0, 0, 0, 1],
      CPR_FD_DUMMY_BYTE,
    ]);
    expect(CPR_FD_DUMMY_BYTE).toBe(' '.charCodeAt(0));
    // put_qlist ends the list with a 0 byte; CprState has no subsections: the channel ends there
    expect(b.at(-1)).toBe(0);
    const names = [...decodeCprChannel(new StreamReader(new BufferSource(b)))].flatMap((r) =>
      r.kind === 'cpr_fd' ? [`${r.name}/${r.id}`] : [],
    );
    expect(names).toEqual(['tap/1', 'tap/0', '0000:00:02.0/0', 'ram0/0']);
  });
  it('told apart by its magic, re-encoded byte for byte, valid', () => {
    expect(detectChannelKind(new BufferSource(bytes()))).toBe('cpr');
    expect(roundtripSource(new BufferSource(bytes()), new BufferSource(bytes())).identical).toBe(true);
    expect(validateCprChannel({ name: 'cpr', source: new BufferSource(bytes()) })).toEqual({
      valid: true,
      diagnostics: [],
      warnings: [],
    });
  });
  it('a lying namelen is refused before anything is allocated for it', () => {
    const b = bytes();
    b.set([0xff, 0xff, 0xff, 0xff], 9);
    const r = validateCprChannel({ name: 'cpr', source: new BufferSource(b) });
    // reported where the name would start, after its be32 namelen at 9
    expect(r.diagnostics.map((d) => [d.rule, d.offset])).toEqual([['stream/limit', 13]]);
  });
  it('from the command line: dump --format summary lists the descriptors, validate and roundtrip accept it', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    const dump = run(['dump', FIXTURE, '--format', 'summary']);
    expect(JSON.parse(dump.stdout)).toEqual({
      file: FIXTURE,
      channel: 'cpr',
      fds: [
        { offset: 8, name: 'tap', id: 1 },
        { offset: 22, name: 'tap', id: 0 },
        { offset: 36, name: '0000:00:02.0', id: 0 },
        { offset: 59, name: 'ram0', id: 0 },
      ],
      error: null,
    });
    expect(run(['validate', FIXTURE]).stdout).toContain('valid (0 diagnostics)');
    expect(run(['roundtrip', FIXTURE]).stdout).toContain('identical (75 bytes, 6 records)');
  });
});
