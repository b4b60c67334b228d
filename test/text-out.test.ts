import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextOut } from '../src/cli/output.js';
import { tempDir } from './helpers.js';

describe('TextOut', () => {
  it('writes exactly the UTF-8 of what it is given, in order, whatever the sizes of the pieces', () => {
    const dir = tempDir('text-out-');
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: 'grapheme', maxLength: 40 }),
            // pieces around the 1 MiB buffer and the 64 KiB pieces a dump hands over
            fc.integer({ min: 60_000, max: 400_000 }).map((k) => 'é0123456789abcdef'.repeat(k / 16)),
            fc.constant('\u{1f600}'.repeat(200_000)),
          ),
          { maxLength: 12 },
        ),
        (pieces) => {
          const file = join(dir, `out-${n++}.txt`);
          const out = new TextOut(file);
          for (const p of pieces) out.write(p);
          out.close();
          expect(readFileSync(file).equals(Buffer.from(pieces.join(''), 'utf8'))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });
});
