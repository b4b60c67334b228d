import { Parser } from 'binary-parser';
import { fixedSize, type Layout } from '../../grammar/layout.js';
import type { LayoutValue } from './types.js';

/**
 * binary-parser decoders compiled from grammar/ layouts, for fixed-size records that are
 * parsed from a buffered view (multifd packet headers, MappedRamHeader, ...). The
 * streaming reader (read.ts) and writer (write.ts) walk the same tables.
 */
export interface CompiledLayout {
  readonly size: number;
  parse(view: Uint8Array): LayoutValue;
}

const cache = new WeakMap<Layout, CompiledLayout>();

export function compileLayout(layout: Layout): CompiledLayout {
  const hit = cache.get(layout);
  if (hit) return hit;
  const size = fixedSize(layout);
  if (size === undefined) throw new Error('compileLayout: layout is not fixed-size');
  let p = new Parser().endianness('big');
  for (const f of layout) {
    switch (f.type) {
      case 'u8': p = p.uint8(f.name); break;
      case 'be16': p = p.uint16be(f.name); break;
      case 'be32': p = p.uint32be(f.name); break;
      case 'be64': p = p.uint64be(f.name); break;
      case 'be64n': p = p.uint64be(f.name, { formatter: (v: unknown) => Number(v as bigint) }); break;
      case 'le64': p = p.uint64le(f.name); break;
      case 'bytes': p = p.buffer(f.name, { length: f.length as number }); break;
      default: throw new Error(`compileLayout: ${f.type} is not fixed-size`);
    }
  }
  const compiled: CompiledLayout = {
    size,
    parse(view: Uint8Array): LayoutValue {
      const buf = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
      const out = p.parse(buf) as LayoutValue;
      // binary-parser hands back Buffers sharing memory with the input: detach them.
      for (const f of layout) if (f.type === 'bytes') out[f.name] = new Uint8Array(out[f.name] as Uint8Array);
      return out;
    },
  };
  cache.set(layout, compiled);
  return compiled;
}
