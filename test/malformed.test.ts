import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamError } from '../src/model/errors.js';
import { decodeBytes, REAL, ROOT, tempDir } from './helpers.js';

/**
 * Offsets in pc-paused (QEMU 11.1) are those read by hand in
 * ../shared/spec/worked-example.md.
 */
const PAUSED = new Uint8Array(readFileSync(join(REAL, 'qemu-11.1', 'pc-paused.mig')));

function mutate(at: number, ...bytes: number[]): Uint8Array {
  const b = PAUSED.slice();
  b.set(bytes, at);
  return b;
}

function failsWith(bytes: Uint8Array, code: string, offset: number): StreamError {
  const { error } = decodeBytes(bytes);
  expect(error, 'a StreamError').toBeInstanceOf(StreamError);
  expect(error!.code).toBe(code);
  expect(error!.offset).toBe(offset);
  expect(error!.message).toMatch(/^at 0x[0-9a-f]+: /);
  return error!;
}

describe('malformed streams fail with a typed error at the right offset', () => {
  it('bad magic', () => {
    const e = failsWith(mutate(0, 0x51, 0x45, 0x56, 0x4e), 'bad-magic', 0);
    expect(e.expected).toContain('QEVM');
  });

  it('v2 (obsolete) file version', () => {
    failsWith(mutate(4, 0, 0, 0, 2), 'bad-version', 4);
  });

  it('truncation inside a RAM record, with the section path', () => {
    const e = failsWith(PAUSED.slice(0, 0xdd), 'truncated', 0xda);
    expect(e.path).toEqual(['section 1 "ram" (PART)', 'RAM record @0xda']);
  });

  it('truncation inside a page names the page record', () => {
    const page = decodeBytes(PAUSED).records.find((r) => r.kind === 'ram' && r.op === 'page')!;
    const e = failsWith(PAUSED.slice(0, page.offset + 100), 'truncated', page.offset + page.length - 4096);
    expect(e.path[e.path.length - 1]).toBe(`page record @0x${page.offset.toString(16)}`);
  });

  it('truncation before QEMU_VM_EOF', () => {
    const eofAt = 0x467ff; // worked-example.md: QEMU_VM_EOF
    const e = failsWith(PAUSED.slice(0, eofAt), 'truncated', eofAt);
    expect(e.expected).toContain('QEMU_VM_EOF');
  });

  it('unknown top-level section type', () => {
    const e = failsWith(mutate(0xc5, 0x09), 'unknown-section-type', 0xc5);
    expect(e.found).toBe('byte 0x9');
  });

  it('a stray QEMU_VM_SUBSECTION byte at top level', () => {
    failsWith(mutate(0xc5, 0x05), 'unknown-section-type', 0xc5);
  });

  it('footer id mismatch', () => {
    const e = failsWith(mutate(0xc4, 0x02), 'footer-mismatch', 0xc0);
    expect(e.found).toBe('footer for section 2');
  });

  it('missing footer after earlier sections had one', () => {
    const footers = decodeBytes(PAUSED).records.filter((r) => r.kind === 'section_footer');
    const second = footers[1].offset; // the ram PART's footer; the START's (0xc0) had one
    failsWith(mutate(second, 0x04), 'missing-footer', second);
  });

  it('PART for a section id no START opened', () => {
    failsWith(mutate(0xc6, 0, 0, 0, 99), 'unknown-section-id', 0xc6);
  });

  it('unknown RAM flags', () => {
    const e = failsWith(mutate(0xd1, 0x01), 'bad-ram-record', 0xca);
    expect(e.found).toContain('flags 0x1');
  });

  it('CONTINUE on the first page record (no previous block)', () => {
    failsWith(mutate(0xd1, 0x22), 'bad-ram-record', 0xca);
  });

  it('a RAMBlock name MEM_SIZE never announced', () => {
    failsWith(mutate(0xd3, 0x71), 'bad-ram-record', 0xd2);
  });

  it('counted string running past the end of the stream', () => {
    const b = PAUSED.slice(0, 0x30);
    b[0x20] = 0xff; // idstr length of the ram START header
    const e = failsWith(b, 'truncated', 0x21);
    expect(e.expected).toContain('section idstr');
  });

  it('a command with the wrong length for its fixed-size payload', () => {
    const at = findSwitchoverStart(PAUSED);
    failsWith(mutate(at + 3, 0, 1), 'command-length', at + 3);
  });

  it('MEM_SIZE block lengths that overshoot the total', () => {
    failsWith(mutate(0x3b, 0, 0, 0, 0, 0x04, 0, 0, 0), 'bad-ram-record', 0x34);
  });
});

function findSwitchoverStart(b: Uint8Array): number {
  // QEMU_VM_COMMAND 0x08, be16 MIG_CMD_SWITCHOVER_START (11), be16 len 0, then SECTION_END of ram
  for (let i = 0; i < b.length - 6; i++) {
    if (b[i] === 0x08 && b[i + 1] === 0 && b[i + 2] === 11 && b[i + 3] === 0 && b[i + 4] === 0 && b[i + 5] === 0x03)
      return i;
  }
  throw new Error('no SWITCHOVER_START in the fixture');
}

describe('any damage ends in a StreamError, never another exception', () => {
  it('truncation at any offset', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: PAUSED.length - 1 }), (cut) => {
        const { error } = decodeBytes(PAUSED.subarray(0, cut));
        expect(error).toBeInstanceOf(StreamError);
      }),
      { numRuns: 150 },
    );
  });

  it('random byte changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: PAUSED.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const b = PAUSED.slice();
          for (const [at, v] of edits) b[at] = v;
          // decodeBytes rethrows anything that is not a StreamError
          decodeBytes(b);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('through the CLI: exit 1 and one line with the offset (and its bytes), for each kind of damage', () => {
  const cases: [string, Uint8Array][] = [
    ['bad magic', mutate(0, 0x51, 0x45, 0x56, 0x4e)],
    ['v2 version', mutate(4, 0, 0, 0, 2)],
    ['truncation', PAUSED.slice(0, 0xdd)],
    ['unknown section type', mutate(0xc5, 0x09)],
    ['footer mismatch', mutate(0xc4, 0x02)],
    ['unknown section id', mutate(0xc6, 0, 0, 0, 99)],
    ['bad RAM flags', mutate(0xd1, 0x01)],
    [
      'counted string overrun',
      (() => {
        const b = PAUSED.slice(0, 0x30);
        b[0x20] = 0xff;
        return b;
      })(),
    ],
    ['command length', mutate(findSwitchoverStart(PAUSED) + 3, 0, 1)],
  ];
  const dir = tempDir('migstream-bad-');
  for (const [what, bytes] of cases) {
    it(what, () => {
      const f = join(dir, `${what.replace(/ /g, '-')}.mig`);
      writeFileSync(f, bytes);
      for (const cmd of [['dump'], ['validate'], ['roundtrip'], ['dump', '--format', 'ir']]) {
        const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'migstream'), ...cmd, f], {
          encoding: 'utf8',
          maxBuffer: 1 << 28,
          env: { ...process.env, FORCE_COLOR: '0' },
        });
        expect(r.status, cmd.join(' ')).toBe(1);
        const err =
          cmd[0] === 'validate'
            ? r.stdout
                .trim()
                .split('\n')
                .filter((l) => l.includes('error ['))
            : // one error line, then the bytes around its offset (rows indented by four spaces)
              r.stderr
                .trim()
                .split('\n')
                .filter((l) => !l.startsWith('    '));
        expect(err, cmd.join(' ')).toHaveLength(1);
        if (cmd[0] !== 'validate') expect(r.stderr, cmd.join(' ')).toMatch(/\n {4}[0-9a-f]{8} {2}[0-9a-f]{2} /);
        expect(err[0]).toMatch(/at 0x[0-9a-f]+: /);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
    });
  }
});
