import { describe, expect, it } from 'vitest';
import { MainChannelDecoder, type DecodeOptions } from '../src/codec/decode.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource } from '../src/io/source.js';
import { CompareSink } from '../src/io/sink.js';
import { StreamError } from '../src/model/errors.js';
import type { MainRecord } from '../src/model/records.js';
import type { VmDescription } from '../src/vmstate/vmdesc.js';
import { encodeToBytes, openMainStream, roundtripSource } from '../src/codec/open.js';
import { countingSource } from './helpers.js';
import {
  EOF,
  HEADER,
  ascii,
  be16,
  be32,
  be64,
  bytes,
  counted,
  footer,
  full,
  part,
  start,
  stream,
  vmdesc,
} from './bytes.js';

/**
 * The main-channel decoder's paths one at a time, on streams assembled by hand from the
 * layouts in ../shared/spec/savevm-main-channel.md (§2 file header, §3 configuration, §4
 * sections and footers, §5 commands, §6 RAM records; §5.5 vmdescription). Each case names
 * the whole error (rule, offset, path, expected, found) or the records and warnings, so a
 * changed message, offset or bound shows.
 */

interface Decoded {
  records: MainRecord[];
  warnings: string[];
  error?: ReturnType<StreamError['toJSON']>;
}

function decode(b: Uint8Array, opts: DecodeOptions = {}, capacity?: number): Decoded {
  const warnings: string[] = [];
  const d = new MainChannelDecoder(new StreamReader(new BufferSource(b), capacity), {
    copyData: true,
    ...opts,
    onWarning: (w) => warnings.push(`@${w.offset.toString(16)} ${w.path}: ${w.message}`),
  });
  const records: MainRecord[] = [];
  try {
    for (const r of d.records()) records.push(r);
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    return { records, warnings, error: e.toJSON() };
  }
  return { records, warnings };
}

function fails(b: Uint8Array, opts: DecodeOptions = {}): NonNullable<Decoded['error']> {
  const r = decode(b, opts);
  expect(r.error, 'a StreamError').toBeDefined();
  return r.error!;
}

function kinds(rs: MainRecord[]): string[] {
  return rs.map((r) => (r.kind === 'ram' ? `ram:${r.op}` : r.kind));
}

// --- hand assembly of the parts of a stream (savevm-main-channel.md) ----------------------

/** QEMU_VM_CONFIGURATION with the machine type and subsections (§3) */
const configuration = (machine: string, ...subs: number[][]): number[] => [
  0x07,
  ...be32(machine.length),
  ...ascii(machine),
  ...subs.flat(),
];
const subsection = (name: string, version: number, ...fields: number[][]): number[] => [
  0x05,
  ...counted(name),
  ...be32(version),
  ...fields.flat(),
];
const pageBits = (bits: number): number[] => subsection('configuration/target-page-bits', 1, be32(bits));
const capabilities = (...names: string[]): number[] =>
  subsection('configuration/capabilities', 1, be32(names.length), ...names.map(counted));

/** one RAM record header: be64 address | flags (§6) */
const ramHeader = (addr: number, flags: number): number[] => be64(BigInt(addr) | BigInt(flags));
const MEM_SIZE = 0x04;
const ZERO = 0x02;
const PAGE = 0x08;
const EOS = 0x10;
const CONTINUE = 0x20;
const XBZRLE = 0x40;
const HOOK = 0x80;
const COMPRESS = 0x100;
const memSize = (...blocks: [string, number][]): number[] => [
  ...ramHeader(
    blocks.reduce((s, [, n]) => s + n, 0),
    MEM_SIZE,
  ),
  ...blocks.flatMap(([name, n]) => [...counted(name), ...be64(n)]),
];

/** A stream whose one section is "ram" START (id 1, version 4) holding `ram`, with footers. */
function ramStream(ram: number[][], before: number[][] = []): Uint8Array {
  return stream(HEADER, ...before, start(1, 'ram', 0, 4), ...ram, footer(1), EOF);
}
const RAM_PATH = ['section 1 "ram" (START)'];

describe('file header and configuration', () => {
  it('names the magic and version QEMU expects', () => {
    expect(fails(stream([...be32(0x5145564e), ...be32(3)], EOF))).toEqual({
      code: 'bad-magic',
      offset: 0,
      path: ['file header'],
      expected: 'QEMU_VM_FILE_MAGIC 0x5145564d ("QEVM")',
      found: '0x5145564e',
    });
    expect(fails(stream([...be32(0x5145564d), ...be32(2)], EOF))).toEqual({
      code: 'bad-version',
      offset: 4,
      path: ['file header'],
      expected: 'QEMU_VM_FILE_VERSION 3',
      found: '2',
    });
  });

  it('takes a 256-byte machine type name and refuses 257 bytes', () => {
    const name = 'm'.repeat(256);
    const ok = decode(stream(HEADER, configuration(name), EOF));
    expect(ok.error).toBeUndefined();
    expect(ok.records[1]).toMatchObject({ kind: 'configuration', machineType: name, length: 5 + 256 });
    expect(fails(stream(HEADER, configuration(name + 'm'), EOF))).toEqual({
      code: 'bad-configuration',
      offset: 9, // the length field
      path: ['QEMU_VM_CONFIGURATION @0x8'],
      expected: 'a machine type name of at most 256 bytes',
      found: '257',
    });
  });

  it('refuses a configuration subsection QEMU does not define, listing those it does', () => {
    expect(fails(stream(HEADER, configuration('pc', subsection('configuration/bogus', 1)), EOF))).toEqual({
      code: 'bad-configuration',
      offset: 8 + 5 + 2,
      path: ['QEMU_VM_CONFIGURATION @0x8'],
      expected:
        'a configuration subsection (configuration/target-page-bits, configuration/capabilities, configuration/uuid)',
      found: '"configuration/bogus"',
    });
  });

  it('takes target-page-bits 10 to 30 as the page size and refuses 9 and 31', () => {
    for (const bits of [10, 16, 30]) {
      const d = new MainChannelDecoder(
        new StreamReader(new BufferSource(stream(HEADER, configuration('pc', pageBits(bits)), EOF))),
      );
      expect(Array.from(d.records()).at(-1)?.kind).toBe('eof');
      expect(d.pageSize).toBe(2 ** bits);
    }
    for (const bits of [9, 31]) {
      expect(fails(stream(HEADER, configuration('pc', pageBits(bits)), EOF))).toEqual({
        code: 'bad-configuration',
        offset: 8 + 5 + 2,
        path: ['QEMU_VM_CONFIGURATION @0x8'],
        expected: 'target-page-bits between 10 and 30',
        found: `${bits}`,
      });
    }
  });

  it('the page size comes from the vmdescription only when the caller gives none', () => {
    const b = stream(HEADER, EOF);
    const vm: VmDescription = { page_size: 65536, devices: [] };
    expect(new MainChannelDecoder(new StreamReader(new BufferSource(b)), { vmdesc: vm }).pageSize).toBe(65536);
    expect(new MainChannelDecoder(new StreamReader(new BufferSource(b)), { vmdesc: vm, pageSize: 8192 }).pageSize).toBe(
      8192,
    );
    expect(new MainChannelDecoder(new StreamReader(new BufferSource(b))).pageSize).toBe(4096);
  });

  it('collects the capabilities the configuration names, and those the caller adds', () => {
    const d = new MainChannelDecoder(
      new StreamReader(new BufferSource(stream(HEADER, configuration('pc', capabilities('x-ignore-shared')), EOF))),
      { capabilities: ['mapped-ram'] },
    );
    expect(Array.from(d.records()).at(-1)?.kind).toBe('eof');
    expect([...d.capabilities].sort()).toEqual(['mapped-ram', 'x-ignore-shared']);
  });
});

describe('top-level records', () => {
  it('a stream without QEMU_VM_EOF is truncated', () => {
    expect(fails(stream(HEADER))).toEqual({
      code: 'truncated',
      offset: 8,
      path: [],
      expected: 'a record type byte (the stream has no QEMU_VM_EOF)',
      found: 'end of stream',
    });
  });

  it('an unknown record type names the ones QEMU knows', () => {
    expect(fails(stream(HEADER, [0x09]))).toEqual({
      code: 'unknown-section-type',
      offset: 8,
      path: [],
      expected: 'a top-level record type (QEMU_VM_EOF, QEMU_VM_SECTION_START/PART/END/FULL or QEMU_VM_COMMAND)',
      found: 'byte 0x9',
    });
  });

  it('PART of a section never opened', () => {
    expect(fails(stream(HEADER, part(7), EOF))).toEqual({
      code: 'unknown-section-id',
      offset: 9,
      path: [],
      expected: 'the id of a section opened by QEMU_VM_SECTION_START',
      found: 'section id 7 in PART',
    });
  });

  it('the vmdescription length is bounded at 256 MiB', () => {
    const over = stream(HEADER, EOF, [0x06, ...be32((256 << 20) + 1)]);
    expect(fails(over)).toEqual({
      code: 'limit',
      offset: 10,
      path: ['vmdescription @0x9'],
      expected: `a vmdescription of at most ${256 << 20} bytes`,
      found: `${(256 << 20) + 1}`,
    });
    // exactly the bound is read (and here found missing)
    expect(fails(stream(HEADER, EOF, [0x06, ...be32(256 << 20)]))).toMatchObject({
      code: 'truncated',
      path: ['vmdescription @0x9'],
    });
  });

  it('keeps the vmdescription JSON and its record length', () => {
    const d = decode(stream(HEADER, EOF, vmdesc('{"devices":[]}')));
    expect(d.records.at(-1)).toEqual({ kind: 'vmdescription', offset: 9, length: 5 + 14, json: '{"devices":[]}' });
  });

  it('trailing bytes are kept in 1 MiB raw records with one warning each', () => {
    const n = (1 << 20) + 5;
    const d = decode(stream(HEADER, EOF, bytes(n, 0x11)));
    expect(d.error).toBeUndefined();
    const raws = d.records.filter((r) => r.kind === 'raw');
    expect(raws.map((r) => [r.offset, r.length, r.kind === 'raw' && r.reason])).toEqual([
      [9, 1 << 20, 'trailing bytes after the stream'],
      [9 + (1 << 20), 5, 'trailing bytes after the stream'],
    ]);
    expect(d.warnings).toEqual([
      `@9 : ${1 << 20} bytes after the end of the stream`,
      `@100009 : 5 bytes after the end of the stream`,
    ]);
  });
});

describe('commands', () => {
  const cmd = (c: number, payload: number[]): number[] => [0x08, ...be16(c), ...be16(payload.length), ...payload];

  it('a known command record spans its header and payload', () => {
    const d = decode(stream(HEADER, cmd(2, be32(0x1234)), EOF));
    expect(d.records[1]).toEqual({
      kind: 'command',
      offset: 8,
      length: 9,
      cmd: 2,
      name: 'MIG_CMD_PING',
      len: 4,
      fields: { value: 0x1234 },
    });
  });

  it('an unknown command is kept raw, with a warning', () => {
    const d = decode(stream(HEADER, cmd(99, [1, 2, 3]), EOF));
    expect(d.records[1]).toEqual({
      kind: 'command',
      offset: 8,
      length: 8,
      cmd: 99,
      name: 'MIG_CMD_99',
      len: 3,
      data: new Uint8Array([1, 2, 3]),
    });
    expect(d.warnings).toEqual(['@8 MIG_CMD_99 @0x8: unknown command 99 (QEMU rejects it); payload kept raw']);
  });

  it('a command cut short names the part it was reading', () => {
    // the header's be16 length (savevm-main-channel.md §5: marker, be16 cmd, be16 len)
    expect(fails(stream(HEADER, [0x08, ...be16(2), 0]))).toEqual({
      code: 'truncated',
      offset: 11,
      path: [],
      expected: '2 bytes of QEMU_VM_COMMAND len',
      found: 'end of stream after 1',
    });
    // an unknown command's payload, kept raw, shorter than its len
    expect(fails(stream(HEADER, [0x08, ...be16(99), ...be16(10), 1, 2]))).toEqual({
      code: 'truncated',
      offset: 13,
      path: ['MIG_CMD_99 @0x8'],
      expected: '10 bytes of command payload',
      found: 'end of stream after 2',
    });
  });

  const packaged = (blob: number[]): number[] => cmd(7, be32(blob.length)).concat(blob);

  it('PACKAGED: records must end at the blob end', () => {
    // a PING (9 bytes) in a blob that claims 5
    const b = stream(HEADER, cmd(7, be32(5)), cmd(2, be32(1)), EOF);
    expect(fails(b)).toEqual({
      code: 'bad-command',
      offset: 8 + 9 + 9,
      path: ['MIG_CMD_PACKAGED @0x8'],
      expected: 'records ending at the PACKAGED blob end 0x16',
      found: 'a record ending at 0x1a',
    });
  });

  it('PACKAGED: a blob cut short names the blob', () => {
    const b = stream(HEADER, cmd(7, be32(20)), cmd(2, be32(1)));
    expect(fails(b)).toEqual({
      code: 'truncated',
      offset: 26,
      path: ['MIG_CMD_PACKAGED @0x8'],
      expected: 'the rest of the PACKAGED blob',
      found: 'end of stream',
    });
  });

  it('PACKAGED: QEMU_VM_EOF inside the blob is a warning, and bytes after POSTCOPY_RUN are kept', () => {
    const blob = [...EOF, ...cmd(5, []), 0xaa, 0xbb];
    const d = decode(stream(HEADER, packaged(blob), EOF));
    expect(d.error).toBeUndefined();
    expect(kinds(d.records)).toEqual(['file_header', 'command', 'eof', 'command', 'raw', 'eof']);
    expect(d.records[4]).toMatchObject({
      offset: 23,
      length: 2,
      reason: 'bytes after POSTCOPY_RUN in the PACKAGED blob',
    });
    expect(d.records[2]).toMatchObject({ depth: 1 });
    expect(d.warnings).toEqual([
      '@11 MIG_CMD_PACKAGED @0x8: QEMU_VM_EOF inside a PACKAGED blob',
      '@17 MIG_CMD_PACKAGED @0x8: 2 bytes after MIG_CMD_POSTCOPY_RUN inside the PACKAGED blob',
    ]);
  });

  it('POSTCOPY_RUN at the top level keeps reading', () => {
    const d = decode(stream(HEADER, cmd(5, []), EOF));
    expect(kinds(d.records)).toEqual(['file_header', 'command', 'eof']);
    expect(d.warnings).toEqual([]);
  });
});

describe('section footers', () => {
  it('a footer naming another section', () => {
    expect(fails(stream(HEADER, start(1, 'ram', 0, 4), ramHeader(0, EOS), footer(2), EOF))).toEqual({
      code: 'footer-mismatch',
      offset: 8 + 17 + 8, // HEADER, START "ram", EOS
      path: RAM_PATH,
      expected: 'QEMU_VM_SECTION_FOOTER for section 1',
      found: 'footer for section 2',
    });
  });

  it('a footer after sections that had none', () => {
    const b = stream(HEADER, start(1, 'ram', 0, 4), ramHeader(0, EOS), part(1), ramHeader(0, EOS), footer(1), EOF);
    expect(fails(b)).toEqual({
      code: 'missing-footer',
      offset: 8 + 25 + 13,
      path: ['section 1 "ram" (PART)'],
      expected: 'no section footers (earlier sections had none)',
      found: 'a footer',
    });
  });

  it('no footer after sections that had one', () => {
    const b = stream(HEADER, start(1, 'ram', 0, 4), ramHeader(0, EOS), footer(1), part(1), ramHeader(0, EOS), EOF);
    expect(fails(b)).toEqual({
      code: 'missing-footer',
      offset: 8 + 30 + 13,
      path: ['section 1 "ram" (PART)'],
      expected: 'QEMU_VM_SECTION_FOOTER (0x7e) for section 1',
      found: 'byte 0x0',
    });
    const cut = stream(HEADER, start(1, 'ram', 0, 4), ramHeader(0, EOS), footer(1), part(1), ramHeader(0, EOS));
    expect(fails(cut)).toEqual({
      code: 'truncated',
      offset: 8 + 30 + 13,
      path: ['section 1 "ram" (PART)'],
      expected: 'QEMU_VM_SECTION_FOOTER (0x7e) for section 1',
      found: 'end of stream',
    });
  });

  it('a footer record is 5 bytes at its offset', () => {
    const d = decode(ramStream([ramHeader(0, EOS)]));
    expect(d.records.find((r) => r.kind === 'section_footer')).toEqual({
      kind: 'section_footer',
      offset: 33,
      length: 5,
      sectionId: 1,
    });
  });
});

describe('device sections', () => {
  const dev: VmDescription = {
    devices: [
      { name: 'dev', instance_id: 0, vmsd_name: 'dev', version: 1, fields: [{ name: 'x', type: 'uint32', size: 4 }] },
    ],
  };
  const FULL_AT = 8;
  const PAYLOAD_AT = FULL_AT + 1 + 4 + 4 + 4 + 4; // FULL, id, counted "dev", instance, version

  it('with footers and no vmdescription: kept raw, delimited by the footer, with a warning', () => {
    const d = decode(stream(HEADER, full(1, 'dev', 0, 1), [1, 2, 3], footer(1), EOF));
    expect(d.records[2]).toEqual({
      kind: 'raw',
      offset: PAYLOAD_AT,
      length: 3,
      reason: 'undescribed section payload',
      data: new Uint8Array([1, 2, 3]),
    });
    expect(d.warnings).toEqual([
      `@${PAYLOAD_AT.toString(16)} section 1 "dev" (FULL): no vmdescription entry; 3 payload bytes kept raw (delimited by the section footer)`,
    ]);
    expect(
      decode(stream(HEADER, full(1, 'dev', 0, 1), [1, 2, 3], footer(1), EOF), { vmdescLater: true }).warnings,
    ).toEqual([]);
  });

  it('with footers and a vmdescription that fits: decoded', () => {
    const d = decode(stream(HEADER, full(1, 'dev', 0, 1), be32(7), footer(1), EOF), { vmdesc: dev });
    expect(d.records[2]).toMatchObject({ kind: 'vmstate', offset: PAYLOAD_AT, length: 4, idstr: 'dev', instanceId: 0 });
    expect(d.warnings).toEqual([]);
  });

  it('with footers and a vmdescription that describes less: kept raw, with a warning saying how much', () => {
    const d = decode(stream(HEADER, full(1, 'dev', 0, 1), be32(7), [9, 9], footer(1), EOF), { vmdesc: dev });
    expect(d.records[2]).toMatchObject({
      kind: 'raw',
      offset: PAYLOAD_AT,
      length: 6,
      reason: 'section payload that does not fit its vmdescription',
    });
    expect(d.warnings).toEqual([
      `@${PAYLOAD_AT.toString(16)} section 1 "dev" (FULL): the vmdescription describes 4 of the 6 payload bytes; kept raw`,
    ]);
  });

  it('with footers and a vmdescription that wants more: kept raw, with the reader error', () => {
    const d = decode(stream(HEADER, full(1, 'dev', 0, 1), [9, 9], footer(1), EOF), { vmdesc: dev });
    expect(d.records[2]).toMatchObject({
      kind: 'raw',
      length: 2,
      reason: 'section payload that does not fit its vmdescription',
    });
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings).toEqual([
      '@19 section 1 "dev" (FULL): the vmdescription does not fit the payload (at 0x19: section 1 "dev" (FULL) > ' +
        'field x: expected 4 bytes of field x, found end of stream after 2); kept raw',
    ]);
  });

  it('without footers: the vmdescription delimits the payload', () => {
    const d = decode(stream(HEADER, full(1, 'dev', 0, 1), be32(7), EOF), { vmdesc: dev });
    expect(d.records[2]).toMatchObject({ kind: 'vmstate', offset: PAYLOAD_AT, length: 4 });
    expect(d.records[3]).toEqual({ kind: 'eof', offset: PAYLOAD_AT + 4, length: 1 });
  });

  it('without footers and without a vmdescription entry the end is unknown', () => {
    // the first section decides: a RAM section without footer, then the device
    const b = stream(HEADER, start(1, 'ram', 0, 4), ramHeader(0, EOS), full(2, 'dev', 0, 1), be32(7), EOF);
    expect(fails(b)).toEqual({
      code: 'undelimited-section',
      offset: 8 + 25 + 17,
      path: ['section 2 "dev" (FULL)'],
      expected: 'a vmdescription entry for "dev" instance 0 (this stream has no section footers to find its end)',
      found: 'none',
    });
  });

  it('with footers but none within the raw-section bound', () => {
    const b = stream(HEADER, full(1, 'dev', 0, 1), bytes(100, 0x33), footer(1), EOF);
    expect(fails(b, { maxRawSection: 50 })).toEqual({
      code: 'undelimited-section',
      offset: PAYLOAD_AT,
      path: ['section 1 "dev" (FULL)'],
      expected: 'QEMU_VM_SECTION_FOOTER for section 1 within 50 bytes',
      found: 'none (and no vmdescription entry describes the section)',
    });
    expect(decode(b, { maxRawSection: 100 }).error).toBeUndefined();
  });

  it('the raw-section bound defaults to the read buffer less 1 KiB', () => {
    const b = stream(HEADER, full(1, 'dev', 0, 1), bytes(4000, 0x33), footer(1), EOF);
    expect(decode(b, {}, 5024).error).toBeUndefined();
    expect(decode(b, {}, 5023).error).toMatchObject({
      code: 'undelimited-section',
      expected: expect.stringContaining('within 3999 bytes'),
    });
  });

  it('s390-skeys is read by its built-in layout unless the vmdescription describes it', () => {
    const skeys = stream(HEADER, full(1, 's390-skeys', 0, 1), be64(0), be64(0), footer(1), EOF);
    expect(decode(skeys).records[2]?.kind).toBe('section_item');
    const described: VmDescription = { devices: [{ name: 's390-skeys', instance_id: 0, size: 16 }] };
    expect(decode(skeys, { vmdesc: described }).records[2]?.kind).not.toBe('section_item');
    const other: VmDescription = { devices: [{ name: 's390-skeys', instance_id: 1, size: 16 }] };
    expect(decode(skeys, { vmdesc: other }).records[2]?.kind).toBe('section_item');
  });
});

describe('RAM records', () => {
  const block = memSize(['pc.ram', 0x4000]);

  it('CONTINUE before any block name', () => {
    expect(fails(ramStream([ramHeader(0, ZERO | CONTINUE), [0]]))).toEqual({
      code: 'bad-ram-record',
      offset: 25,
      path: [...RAM_PATH, 'zero record @0x19'],
      expected: 'a RAMBlock name (RAM_SAVE_FLAG_CONTINUE with no previous block)',
      found: 'flags 0x22',
    });
  });

  it('a block MEM_SIZE did not announce', () => {
    expect(fails(ramStream([block, ramHeader(0, ZERO), counted('pc.rom'), [0]]))).toEqual({
      code: 'bad-ram-record',
      offset: 25 + 23 + 8,
      path: [...RAM_PATH, 'zero record @0x30'],
      expected: 'a RAMBlock announced by MEM_SIZE',
      found: '"pc.rom"',
    });
  });

  it('a zero page record carries its fill byte; CONTINUE reuses the block', () => {
    const d = decode(
      ramStream([
        block,
        ramHeader(0x1000, ZERO),
        counted('pc.ram'),
        [0],
        ramHeader(0x2000, ZERO | CONTINUE),
        [0],
        ramHeader(0, EOS),
      ]),
    );
    expect(d.error).toBeUndefined();
    const zeros = d.records.filter((r) => r.kind === 'ram' && r.op === 'zero');
    expect(zeros).toEqual([
      { kind: 'ram', op: 'zero', offset: 48, length: 16, flags: ZERO, addr: 0x1000, block: 'pc.ram', fill: 0 },
      {
        kind: 'ram',
        op: 'zero',
        offset: 64,
        length: 9,
        flags: ZERO | CONTINUE,
        addr: 0x2000,
        block: 'pc.ram',
        fill: 0,
      },
    ]);
  });

  it('a page record carries one target page', () => {
    const data = bytes(4096, 0x5a);
    const d = decode(ramStream([block, ramHeader(0x3000, PAGE), counted('pc.ram'), data, ramHeader(0, EOS)]));
    expect(d.records.find((r) => r.kind === 'ram' && r.op === 'page')).toEqual({
      kind: 'ram',
      op: 'page',
      offset: 48,
      length: 8 + 7 + 4096,
      flags: PAGE,
      addr: 0x3000,
      block: 'pc.ram',
      data: new Uint8Array(data),
    });
    expect(
      fails(stream(HEADER, start(1, 'ram', 0, 4), block, ramHeader(0x3000, PAGE), counted('pc.ram'), bytes(4095))),
    ).toMatchObject({
      code: 'truncated',
      offset: 48 + 15,
      path: [...RAM_PATH, 'page record @0x30'],
    });
  });

  it('XBZRLE data is at most a page', () => {
    const xb = (n: number): number[] => [...ramHeader(0, XBZRLE), ...counted('pc.ram'), 1, ...be16(n)];
    expect(fails(ramStream([block, xb(4097), bytes(4097)]))).toEqual({
      code: 'bad-ram-record',
      offset: 48 + 16, // the be16 length
      path: [...RAM_PATH, 'xbzrle record @0x30'],
      expected: 'an XBZRLE length of at most 4096',
      found: '4097',
    });
    const d = decode(ramStream([block, xb(4096), bytes(4096), ramHeader(0, EOS)]));
    expect(d.error).toBeUndefined();
    expect(d.records.find((r) => r.kind === 'ram' && r.op === 'xbzrle')).toMatchObject({
      length: 18 + 4096,
      encoding: 1,
    });
  });

  it('a compressed page is at most compressBound(page size) bytes (zlib: n + n>>12 + n>>14 + n>>25 + 13)', () => {
    const cp = (n: number): number[] => [...ramHeader(0, COMPRESS), ...counted('pc.ram'), ...be32(n)];
    // a block as large as the largest page: MEM_SIZE's total shares its low bits with the flags
    const bigBlock = memSize(['pc.ram', 2 ** 26]);
    const cases: [number, number][] = [
      [12, 4096 + 1 + 0 + 0 + 13],
      [16, 65536 + 16 + 4 + 0 + 13],
      [25, 2 ** 25 + 2 ** 13 + 2 ** 11 + 1 + 13],
    ];
    for (const [bits, bound] of cases) {
      const before = [configuration('pc', pageBits(bits))];
      const cfgLen = before[0].length;
      const at = 8 + cfgLen + 17 + 23;
      expect(fails(stream(HEADER, ...before, start(1, 'ram', 0, 4), bigBlock, cp(bound + 1), EOF))).toEqual({
        code: 'bad-ram-record',
        offset: at + 15,
        path: [...RAM_PATH, `compress_page record @0x${at.toString(16)}`],
        expected: `a compressed page length of at most ${bound}`,
        found: `${bound + 1}`,
      });
      const cut = fails(stream(HEADER, ...before, start(1, 'ram', 0, 4), bigBlock, cp(bound), EOF));
      expect(cut).toMatchObject({ code: 'truncated', expected: `${bound} bytes of compressed page` });
    }
  });

  it('RAM_SAVE_FLAG_HOOK (RDMA) and unknown flags', () => {
    expect(fails(ramStream([ramHeader(0, HOOK)]))).toEqual({
      code: 'bad-ram-record',
      offset: 25,
      path: [...RAM_PATH, 'hook record @0x19'],
      expected: 'RAM records of a non-RDMA stream',
      found: 'RAM_SAVE_FLAG_HOOK (RDMA control, not supported)',
    });
    expect(fails(ramStream([ramHeader(0, 0x400)]))).toEqual({
      code: 'bad-ram-record',
      offset: 25,
      path: [...RAM_PATH, 'RAM record @0x19'],
      expected: 'RAM record flags (ZERO, MEM_SIZE, PAGE, EOS, XBZRLE, COMPRESS_PAGE, MULTIFD_FLUSH)',
      found: 'flags 0x400 in START',
    });
  });

  it('MEM_SIZE entries must add up to the total', () => {
    const lying = [...ramHeader(0x1000, MEM_SIZE), ...counted('pc.ram'), ...be64(0x2000)];
    expect(fails(ramStream([lying]))).toEqual({
      code: 'bad-ram-record',
      offset: 33,
      path: [...RAM_PATH, 'RAMBlock entry @0x21', 'mem_size record @0x19'],
      expected: 'RAMBlock lengths adding up to the MEM_SIZE total 0x1000',
      found: '0x2000 after "pc.ram"',
    });
  });

  it('MEM_SIZE with two blocks yields both, each with its entry length', () => {
    const d = decode(ramStream([memSize(['a', 0x1000], ['bb', 0x3000]), ramHeader(0, EOS)]));
    expect(d.records.filter((r) => r.kind === 'ram_block')).toEqual([
      { kind: 'ram_block', offset: 33, length: 10, idstr: 'a', usedLength: 0x1000 },
      { kind: 'ram_block', offset: 43, length: 11, idstr: 'bb', usedLength: 0x3000 },
    ]);
  });

  describe('postcopy-ram: a huge-page block carries its page size', () => {
    const advise = [0x08, ...be16(3), ...be16(16), ...be64(0x2000_0000_0000), ...be64(0x1000)];
    const entry = (name: string, used: number, extra: number[]): number[] => [
      ...ramHeader(used, MEM_SIZE),
      ...counted(name),
      ...be64(used),
      ...extra,
    ];
    const blocks = (b: Uint8Array): unknown[] =>
      decode(b)
        .records.filter((r) => r.kind === 'ram_block')
        .map((r) => r.kind === 'ram_block' && r.pageSize);

    it('a power of two above the target page size is the page size field', () => {
      for (const ps of [0x200000, 0x40000000, 0x2000]) {
        const b = stream(
          HEADER,
          advise,
          start(1, 'ram', 0, 4),
          entry('mem', 0x200000, be64(ps)),
          ramHeader(0, EOS),
          footer(1),
          EOF,
        );
        expect(blocks(b), `page size ${ps}`).toEqual([ps]);
      }
    });

    it('a name, the target page size, a non-power of two or a value past 32 bits is not', () => {
      // the next RAM record header right after used_length: be64(0 | EOS) is 0x10, not a page size
      const noField = stream(
        HEADER,
        advise,
        start(1, 'ram', 0, 4),
        entry('mem', 0x200000, []),
        ramHeader(0, EOS),
        footer(1),
        EOF,
      );
      expect(blocks(noField)).toEqual([undefined]);
      for (const v of [0x1000, 0x300000]) {
        const b = stream(
          HEADER,
          advise,
          start(1, 'ram', 0, 4),
          entry('mem', 0x200000, []),
          ramHeader(v, ZERO),
          counted('mem'),
          [0],
          ramHeader(0, EOS),
          footer(1),
          EOF,
        );
        expect(blocks(b), `0x${v.toString(16)}`).toEqual([undefined]);
      }
      for (const hiByte of [0, 1, 2, 3]) {
        const v = [0, 0, 0, 0, 0, 0x20, 0, 0];
        v[hiByte] = 1;
        const b = stream(HEADER, advise, start(1, 'ram', 0, 4), entry('mem', 0x200000, []), v, EOF);
        // not a page size: read as the next RAM record (whose flags are then refused)
        expect(blocks(b), `byte ${hiByte}`).toEqual([undefined]);
      }
    });

    it('without POSTCOPY_ADVISE no page size is read', () => {
      const b = stream(
        HEADER,
        start(1, 'ram', 0, 4),
        entry('mem', 0x200000, []),
        ramHeader(0x200000, ZERO),
        counted('mem'),
        [0],
        ramHeader(0, EOS),
        footer(1),
        EOF,
      );
      expect(blocks(b)).toEqual([undefined]);
    });

    it('a block entry at the very end of the stream has no page size', () => {
      const b = stream(HEADER, advise, start(1, 'ram', 0, 4), entry('mem', 0x200000, []), [0, 0, 0]);
      expect(fails(b)).toMatchObject({ code: 'truncated' });
    });
  });
});

// --- mapped-ram (migration/ram.c mapped_ram_*; vfio-and-multifd.md has no part of it) ------

describe('mapped-ram areas', () => {
  const PAGE_SIZE = 4096;
  /** header + MappedRamHeader for one block of `pages` pages; bitmap right after, pages at `pagesAt` */
  function mappedStream(opts: {
    pages: number;
    bitmap: number[];
    pagesAt?: number;
    pageSize?: number;
    bitmapAt?: number;
    pageData?: (i: number) => number;
    usedLength?: number;
  }): Uint8Array {
    const before = [...HEADER, ...configuration('pc', capabilities('mapped-ram'))];
    const used = opts.usedLength ?? opts.pages * PAGE_SIZE;
    const sectionHead = start(1, 'ram', 0, 4);
    const headAt = before.length + sectionHead.length + 8 + 1 + 3 + 8;
    const bitmapAt = headAt + 4 + 24;
    const bitmapSize = Math.ceil(Math.ceil(used / PAGE_SIZE) / 64) * 8;
    const pagesAt = opts.pagesAt ?? Math.ceil((bitmapAt + bitmapSize) / PAGE_SIZE) * PAGE_SIZE;
    const head = [
      ...ramHeader(used, MEM_SIZE),
      ...counted('mem'),
      ...be64(used),
      ...be32(1),
      ...be64(opts.pageSize ?? PAGE_SIZE),
      ...be64(opts.bitmapAt ?? bitmapAt),
      ...be64(pagesAt),
    ];
    const bm = new Array<number>(bitmapSize).fill(0);
    opts.bitmap.forEach((v, i) => (bm[i] = v));
    const out = [...before, ...sectionHead, ...head, ...bm];
    while (out.length < pagesAt) out.push(0);
    for (let i = 0; i * PAGE_SIZE < used; i++) {
      const size = Math.min(PAGE_SIZE, used - i * PAGE_SIZE);
      out.push(...new Array<number>(size).fill(opts.pageData?.(i) ?? 0));
    }
    out.push(...ramHeader(0, EOS), ...footer(1), ...EOF);
    return new Uint8Array(out);
  }
  const pages = (b: Uint8Array): unknown[] =>
    decode(b).records.flatMap((r) => (r.kind === 'mapped_ram_page' ? [[r.index, r.present, r.length, r.data[0]]] : []));

  it('present pages, and absent slots only when they hold data', () => {
    const b = mappedStream({ pages: 10, bitmap: [0b0000_0101, 0b10], pageData: (i) => (i === 3 ? 7 : i + 1) });
    // present: 0, 2, 9; absent but non-zero: all others (pageData gives i + 1), here only 3 differs
    expect(pages(b)).toEqual([
      [0, true, 4096, 1],
      [1, false, 4096, 2],
      [2, true, 4096, 3],
      [3, false, 4096, 7],
      [4, false, 4096, 5],
      [5, false, 4096, 6],
      [6, false, 4096, 7],
      [7, false, 4096, 8],
      [8, false, 4096, 9],
      [9, true, 4096, 10],
    ]);
    const zeros = mappedStream({ pages: 10, bitmap: [0b0000_0101, 0b10] });
    expect(pages(zeros).map((p) => (p as unknown[])[0])).toEqual([0, 2, 9]);
  });

  it('the bitmap record holds the whole bitmap', () => {
    const b = mappedStream({ pages: 65, bitmap: [1, 0, 0, 0, 0, 0, 0, 0, 1] });
    const bm = decode(b).records.find((r) => r.kind === 'mapped_ram_bitmap');
    expect(bm).toMatchObject({ length: 16, block: 'mem' });
    expect(bm?.kind === 'mapped_ram_bitmap' && [...bm.data]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('a page size other than the target page size', () => {
    const e = fails(mappedStream({ pages: 1, bitmap: [1], pageSize: 8192 }));
    expect(e).toMatchObject({
      code: 'bad-ram-record',
      expected: 'MappedRamHeader page_size 4096',
      found: '8192',
    });
  });

  it('a bitmap that does not follow the header', () => {
    const e = fails(mappedStream({ pages: 1, bitmap: [1], bitmapAt: 0x1000 }));
    expect(e).toMatchObject({ code: 'bad-ram-record', found: '0x1000' });
    expect(e.expected).toMatch(/^MappedRamHeader bitmap_offset 0x[0-9a-f]+ \(right after the header\)$/);
  });

  it('a pages offset inside the bitmap or not page-aligned', () => {
    for (const pagesAt of [0x1001, 0x10]) {
      const e = fails(mappedStream({ pages: 1, bitmap: [1], pagesAt }));
      expect(e).toMatchObject({
        code: 'bad-ram-record',
        expected: 'a page-aligned MappedRamHeader pages_offset after the 8-byte bitmap',
        found: `0x${pagesAt.toString(16)}`,
      });
    }
  });

  it('non-zero padding before the pages is kept as a raw record', () => {
    const b = mappedStream({ pages: 1, bitmap: [1] });
    const bm = decode(b).records.find((r) => r.kind === 'mapped_ram_bitmap')!;
    const padAt = bm.offset + bm.length;
    const dirty = b.slice();
    dirty[padAt + 3] = 0x5a;
    const d = decode(dirty);
    const raw = d.records.find((r) => r.kind === 'raw');
    expect(raw).toMatchObject({ offset: padAt, length: 4096 - padAt, reason: 'mapped-ram padding (not zero)' });
    expect(kinds(decode(b).records)).not.toContain('raw');
    expect(encodeToBytes(d.records)).toEqual(dirty);
  });

  it('absent slots are seeked over when the caller asks', () => {
    const b = mappedStream({ pages: 4, bitmap: [0b1001], pageData: (i) => i + 1 });
    expect(
      decode(b, { skipAbsentMappedRamPages: true }).records.flatMap((r) =>
        r.kind === 'mapped_ram_page' ? [r.index] : [],
      ),
    ).toEqual([0, 3]);
  });
});

describe('opening a stream (src/codec/open.ts)', () => {
  it('a vmdescription found at the end whose JSON does not parse is a warning at its JSON, not an error', () => {
    const json = '{"devices": [';
    const b = stream(HEADER, EOF, vmdesc(json));
    const s = openMainStream(new BufferSource(b));
    expect(s.vmdescOffset).toBeUndefined();
    expect(s.warnings).toEqual([
      {
        offset: 14,
        path: 'vmdescription',
        message: expect.stringMatching(/^unreadable vmdescription JSON: /) as string,
      },
    ]);
    expect([...s.records()].map((r) => r.kind)).toEqual(['file_header', 'eof', 'vmdescription']);
  });

  it('a parsed vmdescription is found ahead of the records, and its offset kept', () => {
    const b = stream(HEADER, EOF, vmdesc('{"page_size": 4096, "devices": []}'));
    const s = openMainStream(new BufferSource(b));
    expect(s.vmdescOffset).toBe(9);
    expect(s.warnings).toEqual([]);
  });

  it('StreamReader keeps each byte 64 bytes further into its buffer page than into its input page, and answers only for the bytes it holds', () => {
    const input = Uint8Array.from({ length: 6 * 4096 }, (_, i) => (i * 7) & 0xff);
    const r = new StreamReader(new BufferSource(input), 4096);
    /** `view` is the input's bytes at `offset`, 64 bytes further into its buffer page than `offset` is into its input page */
    const expectSkewedAt = (view: Uint8Array, offset: number) => {
      expect(r.offsetOf(view)).toBe(offset);
      expect(view.byteOffset % 4096).toBe((offset + 64) % 4096);
      expect([...view]).toEqual([...input.subarray(offset, offset + view.length)]);
    };
    const first = r.bytes(4000);
    expect(first.byteOffset % 4096).toBe(64);
    r.bytes(4000);
    // a read past what is buffered moves the unread bytes: the one at 8000 goes to 64 bytes past its own page offset
    const v = r.bytes(200);
    expectSkewedAt(v, 8000);
    // bytes before the move are not held any more, whatever is left in the buffer's memory
    expect(r.differenceAt(input.subarray(7990, 8000), 7990)).toBeUndefined();
    expect(r.differenceAt(input.subarray(8000, 8200), 8000)).toBe(-1);
    const changed = input.slice(8000, 8200);
    changed[150] = (changed[150] ?? 0) ^ 1;
    expect(r.differenceAt(changed, 8000)).toBe(150);
    expect(r.holdsAt(v, 8000)).toBe(true);
    expect(r.holdsAt(v, 8001)).toBe(false);
    // a skip past the buffer on a seekable input: the next byte lands 64 bytes past its page offset too
    r.skip(11800);
    expectSkewedAt(r.bytes(16), 20000);
    expect(r.differenceAt(input.subarray(8000, 8200), 8000)).toBeUndefined();
  });

  it('CompareSink compares with the held input where it has it, and reads the source for the rest', () => {
    const input = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // the decoder holds bytes 4.. of the input (as after a refill), in its own buffer
    const held = StreamReader.over(input.slice(4), 'held', 4);
    const sameAsHeld = (offset: number, n: number) => held.window().subarray(offset - 4, offset - 4 + n);
    // every piece equal: the first four from the source (not held), the rest from memory
    let sink = new CompareSink(new BufferSource(input), held);
    sink.write(new Uint8Array([1, 2, 3, 4]));
    sink.write(new Uint8Array([5, 6, 7]));
    sink.write(sameAsHeld(7, 5));
    expect(sink.finish()).toBeUndefined();
    // a difference in memory (the 2nd byte of a held piece)
    sink = new CompareSink(new BufferSource(input), held);
    sink.write(new Uint8Array([1, 2, 3, 4]));
    sink.write(new Uint8Array([5, 0, 7]));
    expect(sink.finish()).toBe(5);
    // a difference where only the source has the bytes
    sink = new CompareSink(new BufferSource(input), held);
    sink.write(new Uint8Array([1, 2, 0, 4]));
    expect(sink.finish()).toBe(2);
    // a long held piece (compared in one call), different at its end
    const long = new Uint8Array(200).map((_, i) => i);
    const longHeld = StreamReader.over(long.slice(), 'long', 0);
    sink = new CompareSink(new BufferSource(long), longHeld);
    const wrong = long.slice();
    wrong[199] = 0;
    sink.write(wrong);
    expect(sink.finish()).toBe(199);
    // a shorter output: the rest of the input differs, at the end of what was written
    sink = new CompareSink(new BufferSource(input), held);
    sink.write(new Uint8Array([1, 2, 3, 4]));
    expect(sink.finish()).toBe(4);
    // one piece across the first held byte (a refill in the middle of a record): only its
    // start is read from the source, and a difference on either side is where it is
    let c = countingSource(input);
    sink = new CompareSink(c.source, held);
    sink.write(input.slice());
    expect(sink.finish()).toBeUndefined();
    expect(c.asked()).toBe(4 + 1); // the four before the held bytes, and finish's look past the end
    for (const [at, expected] of [
      [1, 1],
      [6, 6],
    ]) {
      c = countingSource(input);
      sink = new CompareSink(c.source, held);
      const piece = input.slice();
      piece[at] = 0;
      sink.write(piece);
      expect(sink.finish()).toBe(expected);
    }
    // pieces given as a range of a larger array (StreamWriter's flush of a record header): the
    // held bytes compared in place, a difference at its index in the range, the others as write
    const writer = new Uint8Array([9, 9, 5, 6, 7, 9, 1, 2, 3, 4, 9]);
    sink = new CompareSink(new BufferSource(input), held);
    sink.writeRange(writer, 6, 10); // 1 2 3 4: not held, from the source
    sink.writeRange(writer, 2, 5); // 5 6 7: held
    sink.write(sameAsHeld(7, 5));
    expect(sink.finish()).toBeUndefined();
    writer[3] = 0;
    sink = new CompareSink(new BufferSource(input), held);
    sink.writeRange(writer, 6, 10);
    sink.writeRange(writer, 2, 5);
    expect(sink.finish()).toBe(5);
    writer[8] = 0;
    sink = new CompareSink(new BufferSource(input), held);
    sink.writeRange(writer, 6, 10);
    expect(sink.finish()).toBe(2);
    // a range longer than a header is compared as write compares it
    sink = new CompareSink(new BufferSource(long), longHeld);
    const padded = new Uint8Array(210);
    padded.set(wrong, 5);
    sink.writeRange(padded, 5, 205);
    expect(sink.finish()).toBe(199);
  });

  it('roundtrip counts records and bytes, and an invalid stream gives its error, not a verdict', () => {
    const good = stream(HEADER, [0x08, ...be16(2), ...be16(4), ...be32(7)], EOF);
    expect(roundtripSource(new BufferSource(good), new BufferSource(good))).toEqual({
      identical: true,
      firstDifference: undefined,
      records: 3,
      bytes: good.length,
      warnings: [],
    });
    // the re-encoding is compared with the bytes the decoder read (CompareSink's held input, below):
    // the second source is only read again for bytes the decoder no longer holds
    const cut = good.subarray(0, 12);
    const r = roundtripSource(new BufferSource(cut), new BufferSource(cut));
    // bytes: where the decoder stood, at the length field it could not read whole
    expect(r).toMatchObject({ identical: false, records: 1, bytes: 11 });
    expect(r.error?.code).toBe('truncated');
  });
});

describe('64-bit lengths and offsets (StreamReader.be64Number)', () => {
  // A JS number holds every integer exactly up to Number.MAX_SAFE_INTEGER (2^53 - 1, ECMA-262
  // Number type); a be64 length or offset above it is refused where it stands, not rounded.
  const at = (v: bigint): StreamReader => StreamReader.over(new Uint8Array(be64(v)), 'x', 0x40);
  it('2^53 - 1 is a number, exactly', () => {
    expect(at((1n << 53n) - 1n).be64Number('VFIO device data size')).toBe(Number.MAX_SAFE_INTEGER);
  });
  for (const [name, v, found] of [
    ['2^53', 1n << 53n, '0x20000000000000'],
    ['2^53 + 1', (1n << 53n) + 1n, '0x20000000000001'],
    ['2^64 - 1', (1n << 64n) - 1n, '0xffffffffffffffff'],
  ] as const) {
    it(`${name} is a bad-value error at the field's offset`, () => {
      let e: unknown;
      try {
        at(v).be64Number('VFIO device data size');
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(StreamError);
      expect((e as StreamError).toJSON()).toEqual({
        code: 'bad-value',
        offset: 0x40,
        path: [],
        expected: 'VFIO device data size below 2^53',
        found,
      });
    });
  }
});
