import { Parser } from 'binary-parser';
import { fixedSize, SCALAR_WIDTH, type Layout, type LayoutValue, type ValueOf } from '../../grammar/layout.js';
import type { StreamReader } from '../io/reader.js';
import { expectMismatch } from './expect.js';

/**
 * binary-parser decoders compiled from grammar/ layouts, for fixed-size records that are
 * parsed from a buffered view (multifd packet headers, MappedRamHeader, ...). The
 * streaming reader (read.ts) and writer (write.ts) walk the same tables, and `read` checks
 * `expect` exactly as readLayout does.
 */
export interface CompiledLayout<V> {
  readonly size: number;
  /** decode a view of exactly `size` bytes; no checks */
  parse(view: Uint8Array): V;
  /** read `size` bytes from the stream, decode them and check every `expect` */
  read(r: StreamReader, what: string): V;
}

const cache = new WeakMap<Layout, CompiledLayout<LayoutValue>>();

export function compileLayout<L extends Layout>(layout: L): CompiledLayout<ValueOf<L>> {
  // binary-parser builds the object, so its type is declared here, once, from the layout
  return compileUntyped(layout) as CompiledLayout<ValueOf<L>>;
}

function compileUntyped(layout: Layout): CompiledLayout<LayoutValue> {
  const hit = cache.get(layout);
  if (hit) return hit;
  const size = fixedSize(layout);
  if (size === undefined) throw new Error('compileLayout: layout is not fixed-size');
  let p = new Parser().endianness('big');
  const offsets: number[] = [];
  let at = 0;
  for (const f of layout) {
    offsets.push(at);
    switch (f.type) {
      case 'u8':
        p = p.uint8(f.name);
        break;
      case 'be16':
        p = p.uint16be(f.name);
        break;
      case 'be32':
        p = p.uint32be(f.name);
        break;
      case 'be64':
        p = p.uint64be(f.name);
        break;
      case 'be64n':
        p = p.uint64be(f.name, { formatter: (v: unknown) => Number(v) });
        break;
      case 'le32':
        p = p.uint32le(f.name);
        break;
      case 'le64':
        p = p.uint64le(f.name);
        break;
      case 'bytes':
        p = p.buffer(f.name, { length: f.length });
        break;
      default:
        throw new Error(`compileLayout: ${f.type} is not fixed-size`);
    }
    at += f.type === 'bytes' ? Number(f.length) : SCALAR_WIDTH[f.type];
  }
  const parse = (view: Uint8Array): LayoutValue => {
    const buf = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    const out = p.parse(buf) as LayoutValue; // binary-parser returns an untyped object
    // binary-parser hands back Buffers sharing memory with the input: detach them.
    for (const f of layout) {
      const v = out[f.name];
      if (v instanceof Uint8Array) out[f.name] = new Uint8Array(v);
    }
    return out;
  };
  // the fields with an `expect`, and where each sits: the only ones `read` has to look at
  const checked = layout.flatMap((f, i) => (f.expect === undefined ? [] : [{ f, at: offsets[i] ?? 0 }]));
  const compiled: CompiledLayout<LayoutValue> = {
    size,
    parse,
    read(r: StreamReader, what: string): LayoutValue {
      const start = r.offset;
      const out = parse(r.bytes(size, what));
      for (const { f, at } of checked) {
        if (out[f.name] === f.expect) continue;
        const bad = expectMismatch(f, `${what} ${f.name}`, out[f.name]);
        if (bad) throw r.error(bad.code, bad.expected, bad.found, start + at);
      }
      return out;
    },
  };
  cache.set(layout, compiled);
  return compiled;
}
