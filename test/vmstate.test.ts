import { describe, expect, it } from 'vitest';
import { openMainStream } from '../src/codec/open.js';
import type { VmstateRecord } from '../src/model/records.js';
import { AnalyzeDump } from '../src/formats/analyze.js';
import { pyDumps } from '../src/formats/pyjson.js';
import { BufferSource } from '../src/io/source.js';
import { be32, EOF, footer, full, HEADER, stream, u8, vmdesc } from './bytes.js';

/** Arrays of pointers with NULLs, as the vmdescription describes them (corrections #16, #19). */
function decode(json: string, payload: number[]) {
  const b = stream(HEADER, full(5, 'dev', 0, 1), payload, footer(5), EOF, vmdesc(json));
  const s = openMainStream(new BufferSource(b));
  const records = [...s.records()];
  return { records, warnings: s.warnings, vm: records.find((r): r is VmstateRecord => r.kind === 'vmstate') };
}

const struct = '{"vmsd_name": "elem", "version": 1, "fields": [{"name": "v", "type": "uint32", "size": 4}]}';

describe('NULL entries of pointer arrays', () => {
  it('10.0+: [A, B, NULL, C] is described as {array_len 4}, {nullptr}, {struct}; the leading run is 2', () => {
    const json =
      `{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [` +
      `{"name": "a", "array_len": 4, "type": "struct", "struct": ${struct}, "size": 4}, ` +
      `{"name": "a", "type": "nullptr", "size": 1}, ` +
      `{"name": "a", "type": "struct", "struct": ${struct}, "size": 4}]}]}`;
    const { vm, warnings } = decode(json, [...be32(1), ...be32(2), ...u8(0x30), ...be32(3)]);
    expect(warnings).toEqual([]);
    expect(vm?.node.fields.map((f) => f.elements.length)).toEqual([2, 1, 1]);
    const dump = new AnalyzeDump();
    dump.add({
      kind: 'section',
      offset: 0,
      length: 0,
      section: 'FULL',
      sectionId: 5,
      idstr: 'dev',
      instanceId: 0,
      versionId: 1,
    });
    dump.add(vm!);
    const a = (dump.toPy().get('dev (5)') as Map<string, unknown>).get('a') as unknown[];
    expect(a.map((x) => (x instanceof Map ? x.get('v') : x))).toEqual([
      '0x00000001',
      '0x00000002',
      'nullptr',
      '0x00000003',
    ]);
  });

  it('before 10.0: a NULL struct element is {"type": "struct", "struct": {}, "size": 1}', () => {
    const json =
      `{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [` +
      `{"name": "a", "index": 0, "type": "struct", "struct": ${struct}, "size": 4}, ` +
      `{"name": "a", "index": 1, "type": "struct", "struct": {}, "size": 1}]}]}`;
    const { vm, warnings } = decode(json, [...be32(7), ...u8(0x30)]);
    expect(warnings).toEqual([]);
    expect(vm?.node.fields[1].elements).toEqual([{ kind: 'bytes', data: new Uint8Array([0x30]) }]);
  });
});

describe('a vmdescription that lies', () => {
  it('a huge array of empty elements ends in a limit error, not a hang', () => {
    const json =
      '{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [{"name": "a", "array_len": 1000000000, "type": "buffer", "size": 0}]}]}';
    const b = stream(HEADER, full(5, 'dev', 0, 1), be32(1), EOF, vmdesc(json)); // no footer: the description is the only delimiter
    const s = openMainStream(new BufferSource(b));
    expect(() => [...s.records()]).toThrow(/at most 16777216 elements/);
  });

  it('structs nested without end end in a limit error', () => {
    let st = '{"vmsd_name": "x", "version": 1, "fields": [{"name": "v", "type": "uint8", "size": 1}]}';
    for (let i = 0; i < 100; i++)
      st = `{"vmsd_name": "x", "version": 1, "fields": [{"name": "s", "type": "struct", "struct": ${st}, "size": 1}]}`;
    const json = `{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [{"name": "s", "type": "struct", "struct": ${st}, "size": 1}]}]}`;
    const b = stream(HEADER, full(5, 'dev', 0, 1), u8(1), EOF, vmdesc(json));
    const s = openMainStream(new BufferSource(b));
    expect(() => [...s.records()]).toThrow(/nested at most 64 deep/);
  });
});

describe('a packed field (an array of plain elements, kept as one run of bytes)', () => {
  const json =
    `{"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [` +
    `{"name": "regs", "array_len": 3, "type": "uint16", "size": 2}]}]}`;
  const payload = [...u8(0), ...u8(1), ...u8(0x80), ...u8(2), ...u8(0xff), ...u8(0xff)];
  const plain = {
    name: 'regs',
    type: 'uint16',
    size: 2,
    elements: [
      { kind: 'bytes', data: new Uint8Array([0, 1]) },
      { kind: 'bytes', data: new Uint8Array([0x80, 2]) },
      { kind: 'bytes', data: new Uint8Array([0xff, 0xff]) },
    ],
    arrayLen: 3,
  };

  it("reads as a plain field: the same elements, own properties in a plain field's order, in copies too", () => {
    const field = decode(json, payload).vm?.node.fields[0];
    expect(field).toEqual(plain);
    expect(Object.keys(field ?? {})).toEqual(['name', 'type', 'size', 'elements', 'arrayLen']);
    expect(structuredClone(field)).toEqual(plain);
    const viaJson: unknown = JSON.parse(JSON.stringify(field));
    expect(viaJson).toEqual(JSON.parse(JSON.stringify(plain)));
  });

  it("analyze renders it as the script does (uint16 values; a list under the field's name)", () => {
    const { records, vm } = decode(json, payload);
    const section = records.find((r) => r.kind === 'section');
    if (!section || !vm) throw new Error('no section');
    const dump = new AnalyzeDump();
    dump.add(section);
    dump.add(vm);
    // uint16 is unsigned: 0x8002 is not negative (the script's VMSDFieldUInt); the list is
    // written in one piece, as the script's json.dumps(indent=4) lays it out
    const regs = ['0x0001', '0x8002', '0xffff'].map((v) => `            "${v}"`).join(',\n');
    expect(pyDumps(dump.toPy())).toBe(`{\n    "dev (5)": {\n        "regs": [\n${regs}\n        ]\n    }\n}`);
  });

  it('elements given to it afterwards are its elements from then on (a worker gives records bytes of their own so)', () => {
    const field = decode(json, payload).vm?.node.fields[0];
    if (!field) throw new Error('no field');
    const own = field.elements.map((e) => (e.kind === 'bytes' ? { kind: 'bytes' as const, data: e.data.slice() } : e));
    field.elements = own;
    expect(field.elements).toBe(own);
  });
});
