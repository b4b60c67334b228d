import { describe, expect, it } from 'vitest';
import { vmstateToPy } from '../src/formats/analyze.js';
import { pyDumps, pyFloat, pyString } from '../src/formats/pyjson.js';
import type { VmstateNode } from '../src/model/vmstate-nodes.js';

// How analyze-migration.py renders one VMState field (scripts/analyze-migration.py,
// vmsd_field_readers): VMSDFieldInt for int8, int16, int32, "int32 equal", "int32 le", int64,
// "int64 equal", "uint8 equal", "uint16 equal" (read big-endian and signed: a negative value is
// "0x<unsigned hex> (<signed decimal>)"); VMSDFieldUInt for uint8..uint64 and "uint32 equal"
// (never negative); VMSDFieldBool (first byte 0: false); any other type VMSDFieldGeneric, the
// bytes in hex separated by spaces.

function one(type: string, bytes: number[]): unknown {
  const node: VmstateNode = {
    fields: [{ name: 'f', type, size: bytes.length, elements: [{ kind: 'bytes', data: Uint8Array.from(bytes) }] }],
    subsections: [],
  };
  return vmstateToPy(node).get('f');
}

describe('VMState field values as analyze-migration.py prints them', () => {
  const signed = [
    'int8',
    'int16',
    'int32',
    'int32 equal',
    'int32 le',
    'int64',
    'int64 equal',
    'uint8 equal',
    'uint16 equal',
  ];
  const unsigned = ['uint8', 'uint16', 'uint32', 'uint32 equal', 'uint64'];
  for (const type of signed) {
    it(`${type}: negative values carry their signed decimal, others do not`, () => {
      expect(one(type, [0xff])).toBe('0xff (-1)');
      expect(one(type, [0x80, 0x00])).toBe('0x8000 (-32768)');
      expect(one(type, [0xff, 0xff, 0xff, 0xfe])).toBe('0xfffffffe (-2)');
      expect(one(type, [0x80, 0, 0, 0, 0, 0, 0, 0])).toBe('0x8000000000000000 (-9223372036854775808)');
      expect(one(type, [0x7f, 0xff])).toBe('0x7fff');
      expect(one(type, [0x00])).toBe('0x00');
    });
  }
  for (const type of unsigned) {
    it(`${type}: always plain hex`, () => {
      expect(one(type, [0xff])).toBe('0xff');
      expect(one(type, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe('0xffffffffffffffff');
      expect(one(type, [0x00, 0x01])).toBe('0x0001');
    });
  }
  it('bool: the first byte decides', () => {
    expect(one('bool', [0])).toBe(false);
    expect(one('bool', [1])).toBe(true);
    expect(one('bool', [2])).toBe(true);
  });
  it('other types: bytes in hex, space separated, two digits each', () => {
    expect(one('buffer', [0x00, 0x0a, 0xff, 0x10])).toBe('00 0a ff 10');
    expect(one('timer', [])).toBe('');
  });
  it('a repeated name becomes a list, in order; subsections follow the fields', () => {
    const node: VmstateNode = {
      fields: [
        {
          name: 'r',
          type: 'uint8',
          size: 1,
          elements: [
            { kind: 'bytes', data: Uint8Array.of(1) },
            { kind: 'bytes', data: Uint8Array.of(2) },
          ],
        },
        { name: 'r', type: 'uint8', size: 1, elements: [{ kind: 'bytes', data: Uint8Array.of(3) }] },
      ],
      subsections: [{ name: 'dev/sub', version: 1, node: { fields: [], subsections: [] } }],
    };
    expect([...vmstateToPy(node)]).toEqual([
      ['r', ['0x01', '0x02', '0x03']],
      ['dev/sub', new Map()],
    ]);
  });
});

// Python's json.dumps(indent=4, separators=(',', ': ')): floats by repr (the shortest digits that
// read back, exponent form below 1e-4 and from 1e16, exponent at least two digits), non-finite
// numbers as Infinity / NaN, null, non-ASCII as \uXXXX.
describe('Python JSON text', () => {
  it('floats as repr writes them', () => {
    expect(pyFloat(0.5)).toBe('0.5');
    expect(pyFloat(-2.25)).toBe('-2.25');
    expect(pyFloat(0.0001)).toBe('0.0001');
    expect(pyFloat(0.00001)).toBe('1e-05');
    expect(pyFloat(1.5e-7)).toBe('1.5e-07');
    expect(pyFloat(1e16)).toBe('1e+16');
    expect(pyFloat(1.2345e20)).toBe('1.2345e+20');
    expect(pyFloat(1.5e300)).toBe('1.5e+300');
    expect(pyFloat(123456789012345.6)).toBe('123456789012345.6');
    expect(pyFloat(Infinity)).toBe('Infinity');
    expect(pyFloat(-Infinity)).toBe('-Infinity');
    expect(pyFloat(NaN)).toBe('NaN');
  });
  it('documents: null, booleans, integers, nested containers, empty ones', () => {
    expect(pyDumps(new Map<string, never>())).toBe('{}');
    expect(pyDumps([])).toBe('[]');
    expect(pyDumps({ a: null, b: [true, false, 0.5, 3], c: {} })).toBe(
      '{\n    "a": null,\n    "b": [\n        true,\n        false,\n        0.5,\n        3\n    ],\n    "c": {}\n}',
    );
  });
  it('strings: non-ASCII escaped as lowercase \\u, control characters as JSON escapes', () => {
    expect(pyString('a\u00e9\u20ac"\n')).toBe('"a\\u00e9\\u20ac\\"\\n"');
  });
});
