import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeToBytes, openMainStream } from '../src/codec/open.js';
import {
  IR_FORMAT,
  IR_VERSION,
  IrWriter,
  readIr,
  recordToIrLine,
  type DataMode,
  type IrHeader,
} from '../src/formats/ir.js';
import { StreamReader } from '../src/io/reader.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import type { AnyRecord } from '../src/model/channel-records.js';
import { StreamError } from '../src/model/errors.js';
import { REAL, tempDir } from './helpers.js';

// The IR reader and writer used directly, as a library user does: what the CLI's `dump --format
// ir` / `encode` pair relies on (that pair is checked end to end in golden.test.ts).

const tmp = tempDir('migstream-ir-');
let n = 0;

/** The IR of a main-channel file, written the way `dump --format ir` writes it. */
function writeIr(path: string, mode: DataMode): { irPath: string; records: AnyRecord[]; text: string } {
  const src = new FileSource(path);
  const s = openMainStream(src);
  const parts: string[] = [];
  const w = new IrWriter((t) => parts.push(t), {
    format: IR_FORMAT,
    version: IR_VERSION,
    channel: 'main',
    source: path,
    sourceSize: undefined,
  });
  const records: AnyRecord[] = [];
  let error: StreamError | undefined;
  try {
    for (const rec of s.records()) {
      w.record(recordToIrLine(rec, mode, (b) => s.reader.offsetOf(b)));
      records.push(structuredClone(rec));
    }
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    error = e;
  }
  w.end({ warnings: s.warnings, error: error?.toJSON() });
  src.close();
  const irPath = join(tmp, `ir${n++}.json`);
  const text = parts.join('');
  writeFileSync(irPath, text);
  return { irPath, records, text };
}

const opener = (path: string) => (h: IrHeader) => {
  expect(h.source).toBe(path);
  return new FileSource(path);
};

describe('IR reader', () => {
  const paused = join(REAL, 'qemu-11.1', 'pc-paused.mig');

  it('writes one record per line, header fields without undefined ones, and the trailer last', () => {
    const { text, records } = writeIr(paused, 'ref');
    const lines = text.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      '{',
      `"format": "${IR_FORMAT}",`,
      `"version": ${IR_VERSION},`,
      '"channel": "main",',
      `"source": ${JSON.stringify(paused)},`,
    ]);
    expect(text).not.toContain('sourceSize');
    expect(lines[5]).toBe('"records": [');
    // records, one a line, each but the last followed by a comma
    const recs = lines.slice(6, 6 + records.length);
    expect(recs.slice(0, -1).every((l) => l.startsWith('{') && l.endsWith('},'))).toBe(true);
    expect(JSON.parse(recs[recs.length - 1])).toMatchObject({ kind: 'vmdescription' });
    expect(lines.slice(6 + records.length)).toEqual(['],', '"warnings": []', '}', '']);
  });

  for (const mode of ['ref', 'inline'] as const) {
    it(`reads back every record of a recording (${mode}), bytes and 64-bit values included`, () => {
      const { irPath, records, text } = writeIr(paused, mode);
      // ref: payloads that are views of the input point into it; inline: every large payload is base64
      expect(text.includes('"$ref"')).toBe(mode === 'ref');
      if (mode === 'inline') expect(text).toContain('"$base64"');
      const doc = readIr(irPath, opener(paused));
      expect(doc.header).toEqual({ format: IR_FORMAT, version: IR_VERSION, channel: 'main', source: paused });
      const back = [...doc.records];
      expect(back).toEqual(records);
      expect(Buffer.compare(encodeToBytes(back), readFileSync(paused))).toBe(0);
      expect(doc.trailer()).toEqual({ warnings: [] });
    });
  }

  it("an IR larger than the reader's 1 MiB chunk: lines cut across chunks are joined again", () => {
    const big = join(REAL, 'qemu-7.2', 'pc-dirty-iterations.mig');
    const { irPath, records, text } = writeIr(big, 'inline');
    expect(text.length).toBeGreaterThan(3 << 20);
    const back = [...readIr(irPath, () => undefined).records];
    expect(back.length).toBe(records.length);
    expect(Buffer.compare(encodeToBytes(back), readFileSync(big))).toBe(0);
  });

  it('the last line without a newline is still read', () => {
    const { irPath, text } = writeIr(paused, 'ref');
    writeFileSync(irPath, text.trimEnd());
    const doc = readIr(irPath, opener(paused));
    expect([...doc.records].length).toBeGreaterThan(10);
    expect(doc.trailer()).toEqual({ warnings: [] });
  });

  it('records stream: an IR cut in the middle yields the records before the cut, then fails', () => {
    const { irPath, records, text } = writeIr(paused, 'ref');
    const lines = text.split('\n');
    writeFileSync(irPath, lines.slice(0, 6 + 10).join('\n') + '\n' + lines[16].slice(0, 20));
    const doc = readIr(irPath, opener(paused));
    const got: AnyRecord[] = [];
    expect(() => {
      for (const r of doc.records) got.push(r);
    }).toThrow(SyntaxError);
    expect(got).toEqual(records.slice(0, 10));
  });

  it('the trailer keeps the warnings and the decode error of an invalid stream', () => {
    const bad = join(REAL, 'qemu-10.0', 'pc-no-configuration.mig');
    const { irPath, records } = writeIr(bad, 'ref');
    const doc = readIr(irPath, opener(bad));
    expect([...doc.records]).toEqual(records);
    const t = doc.trailer();
    expect(t.warnings).toEqual([]);
    expect(t.error).toMatchObject({ code: 'truncated', offset: expect.any(Number) });
  });

  it('a document edited by hand (not one record per line) is parsed whole, trailer included', () => {
    const { irPath, records } = writeIr(paused, 'inline');
    const pretty = join(tmp, 'pretty.json');
    const doc0 = JSON.parse(readFileSync(irPath, 'utf8')) as object;
    writeFileSync(
      pretty,
      JSON.stringify({ ...doc0, warnings: [{ offset: 1, path: 'x', message: 'edited' }] }, null, 2),
    );
    const doc = readIr(pretty, () => undefined);
    expect(doc.header.format).toBe(IR_FORMAT);
    expect([...doc.records]).toEqual(records);
    expect(doc.trailer()).toEqual({ warnings: [{ offset: 1, path: 'x', message: 'edited' }], error: undefined });
  });

  it('refuses a document of another format or version, streamed or whole', () => {
    const { irPath, text } = writeIr(paused, 'ref');
    for (const [from, to, message] of [
      [`"format": "${IR_FORMAT}"`, '"format": "other"', 'not a migstream IR document (format "other")'],
      [`"version": ${IR_VERSION}`, '"version": 2', `IR version 2 is not supported (this is ${IR_VERSION})`],
    ] as const) {
      writeFileSync(irPath, text.replace(from, to));
      expect(() => readIr(irPath, opener(paused))).toThrow(message);
      writeFileSync(irPath, JSON.stringify(JSON.parse(text.replace(from, to))));
      expect(() => readIr(irPath, opener(paused))).toThrow(message);
    }
  });

  it('a $ref needs its input: none given, or an input shorter than the reference', () => {
    const { irPath, text } = writeIr(paused, 'ref');
    const m = /\{"\$ref":\{"offset":(\d+),"length":(\d+)\}\}/.exec(text);
    expect(m).not.toBeNull();
    expect(() => [...readIr(irPath, () => undefined).records]).toThrow(
      'the IR refers to its input file, which is not available (use --source FILE)',
    );
    const short = new BufferSource(readFileSync(paused).subarray(0, Number(m![1]) + 1), 'short.mig');
    const end = Number(m![1]) + Number(m![2]);
    expect(() => [...readIr(irPath, () => short).records]).toThrow(`the IR's input short.mig ends before ${end}`);
  });

  it('side channels: a multifd channel read back from its IR is the channel again', async () => {
    const ch = join(REAL, 'qemu-10.0', 'pc-multifd-tcp.multifd1.bin');
    const { decodeSideChannel } = await import('../src/codec/channels.js');
    const src = new FileSource(ch);
    const r = new StreamReader(src);
    const parts: string[] = [];
    const w = new IrWriter((t) => parts.push(t), {
      format: IR_FORMAT,
      version: IR_VERSION,
      channel: 'multifd',
      source: ch,
    });
    for (const rec of decodeSideChannel('multifd', r)) w.record(recordToIrLine(rec, 'ref', (b) => r.offsetOf(b)));
    w.end({ warnings: [] });
    src.close();
    const irPath = join(tmp, 'mfd.json');
    writeFileSync(irPath, parts.join(''));
    const back = [...readIr(irPath, () => new FileSource(ch)).records];
    expect(Buffer.compare(encodeToBytes(back), readFileSync(ch))).toBe(0);
  });
});
