import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LoadOptions } from '../src/loader/load.js';
import { validateMain } from '../src/loader/validate.js';
import { BufferSource, FileSource } from '../src/io/source.js';
import { REAL } from './helpers.js';

/**
 * Real multifd and return-path captures (QEMU loaded them: fixtures/real/README.md), then the
 * same bytes with one field changed; offsets and rules from vfio-and-multifd.md §8 and
 * savevm-main-channel.md §4.3.
 */
const capture = (v: string, c: string, suffix: string): string => join(REAL, `qemu-${v}`, `${c}.${suffix}`);

function run(v: string, c: string, opts: LoadOptions, channels: (Uint8Array | string)[], rp?: Uint8Array | string) {
  const src = (x: Uint8Array | string, name: string) => ({
    name,
    source: typeof x === 'string' ? new FileSource(x) : new BufferSource(x, name),
  });
  return validateMain(
    new FileSource(capture(v, c, 'mig')),
    { qemuVersion: v, ...opts },
    {},
    {
      multifd: channels.map((x, i) => src(x, `channel${i}`)),
      returnPath: rp ? src(rp, 'return-path') : undefined,
    },
  );
}

const rules = (r: ReturnType<typeof run>, severity = 'error') =>
  [...new Set(r.diagnostics.filter((d) => d.severity === severity).map((d) => d.rule))].sort();

describe('real multifd sets validate together', () => {
  for (const [v, c] of [
    ['7.2', 'pc-multifd-tcp'],
    ['7.2', 'pc-multifd-zstd-tcp'],
    ['10.0', 'pc-multifd-tcp'],
    ['11.1', 'pc-multifd-zstd-tcp'],
  ]) {
    it(`${v} ${c}: both channels, given in either order`, () => {
      const ch = [capture(v, c, 'multifd1.bin'), capture(v, c, 'multifd0.bin')];
      const r = run(v, c, { capabilities: ['multifd'] }, ch);
      expect(rules(r)).toEqual([]);
      expect(r.valid).toBe(true);
    });
  }
});

describe('one changed field, one diagnostic', () => {
  const v = '10.0';
  const c = 'pc-multifd-tcp';
  const ch0 = new Uint8Array(readFileSync(capture(v, c, 'multifd0.bin')));
  const ch1 = new Uint8Array(readFileSync(capture(v, c, 'multifd1.bin')));
  // the first RAM packet with normal pages on channel 0 (packets are 1344 bytes + payload, §8.4)
  const firstPages = (b: Uint8Array): number => {
    let at = 64;
    for (;;) {
      const dv = new DataView(b.buffer, b.byteOffset);
      const normal = dv.getUint32(at + 16);
      if (normal > 0) return at;
      at += 1344 + normal * 4096;
    }
  };
  const patched = (b: Uint8Array, at: number, bytes: number[]): Uint8Array => {
    const out = b.slice();
    out.set(bytes, at);
    return out;
  };
  const p = firstPages(ch0);
  const cases: [string, Uint8Array, string][] = [
    ['MultiFDInit version (§8.2)', patched(ch0, 4, [0, 0, 0, 2]), 'multifd/init-version'],
    ['channel id above the channel count (§8.2)', patched(ch0, 24, [7]), 'multifd/init-id'],
    ['pages_alloc above page_count (§8.4)', patched(ch0, p + 12, [0, 0, 1, 0]), 'multifd/pages-alloc'],
    ['normal_pages above pages_alloc (§8.4)', patched(ch0, p + 12, [0, 0, 0, 0]), 'multifd/normal-pages'],
    ['an unknown RAMBlock (§8.4)', patched(ch0, p + 64, [0x71]), 'multifd/unknown-ramblock'],
    ['an offset past the block (§8.4)', patched(ch0, p + 320, [0, 0, 0, 1, 0, 0, 0, 0]), 'multifd/offset'],
    ["a compression method other than the channel's (§8.3)", patched(ch0, p + 8, [0, 0, 0, 4]), 'multifd/compression'],
    [
      'a SYNC flag cleared: SYNC rounds no longer match MULTIFD_FLUSH (§8.6)',
      patched(ch0, 64 + 8, [0, 0, 0, 0]),
      'multifd/sync-count',
    ],
  ];
  for (const [what, bytes, rule] of cases) {
    it(what, () => {
      const r = run(v, c, { capabilities: ['multifd'] }, [bytes, ch1]);
      expect(rules(r)).toContain(rule);
      const d = r.diagnostics.find((x) => x.rule === rule)!;
      expect(d.channel).toBe('channel0');
    });
  }

  it('uuid differs between channels (§8.2): the later channel is the odd one', () => {
    const r = run(v, c, { capabilities: ['multifd'] }, [ch1, patched(ch0, 8, [1])]);
    expect(r.diagnostics.filter((d) => d.rule === 'multifd/init-uuid').map((d) => d.channel)).toEqual(['channel1']);
  });

  it('a channel given twice: duplicate id (§8.2)', () => {
    expect(rules(run(v, c, { capabilities: ['multifd'] }, [ch0, ch0]))).toContain('multifd/init-id-duplicate');
  });

  it('a repeated packet_num is a warning: QEMU only traces it', () => {
    const r = run(v, c, { capabilities: ['multifd'] }, [ch0, ch0.slice()]);
    expect(rules(r, 'warning')).toContain('multifd/packet-num');
  });
});

describe('the return path against the main channel', () => {
  const rp = (v: string, c: string) => new Uint8Array(readFileSync(capture(v, c, 'main-return-path.bin')));
  it('real captures: PONG answers PING 1, SWITCHOVER_ACK with switchover-ack, SHUT last', () => {
    expect(
      rules(
        run(
          '10.0',
          'pc-switchover-ack-tcp',
          { capabilities: ['return-path', 'switchover-ack'] },
          [],
          rp('10.0', 'pc-switchover-ack-tcp'),
        ),
      ),
    ).toEqual([]);
    expect(
      rules(
        run(
          '11.1',
          'pc-postcopy-ram-return-path-tcp',
          { capabilities: ['return-path', 'postcopy-ram'] },
          [],
          rp('11.1', 'pc-postcopy-ram-return-path-tcp'),
        ),
      ),
    ).toEqual([]);
  });
  it('SWITCHOVER_ACK without switchover-ack', () => {
    expect(
      rules(
        run(
          '10.0',
          'pc-switchover-ack-tcp',
          { capabilities: ['return-path'] },
          [],
          rp('10.0', 'pc-switchover-ack-tcp'),
        ),
      ),
    ).toEqual(['return-path/switchover-ack-unexpected']);
  });
  it('a PONG that answers no PING, and a PONG with the wrong value', () => {
    const b = rp('11.1', 'pc-postcopy-ram-return-path-tcp'); // PONG(1), SHUT(0)
    const wrong = b.slice();
    wrong[7] = 2;
    expect(
      rules(
        run('11.1', 'pc-postcopy-ram-return-path-tcp', { capabilities: ['return-path', 'postcopy-ram'] }, [], wrong),
      ),
    ).toEqual(['return-path/pong-value']);
    const twice = new Uint8Array([...b.subarray(0, 8), ...b]);
    expect(
      rules(
        run('11.1', 'pc-postcopy-ram-return-path-tcp', { capabilities: ['return-path', 'postcopy-ram'] }, [], twice),
      ),
    ).toEqual(['return-path/pong-without-ping']);
  });
  it('a message after SHUT, and SHUT reporting an error', () => {
    const b = rp('11.1', 'pc-postcopy-ram-return-path-tcp');
    const after = new Uint8Array([...b.subarray(8), ...b.subarray(0, 8)]); // SHUT, then PONG
    expect(
      rules(
        run('11.1', 'pc-postcopy-ram-return-path-tcp', { capabilities: ['return-path', 'postcopy-ram'] }, [], after),
      ),
    ).toEqual(['return-path/shut-not-last']);
    const failed = b.slice();
    failed[15] = 1;
    expect(
      rules(
        run('11.1', 'pc-postcopy-ram-return-path-tcp', { capabilities: ['return-path', 'postcopy-ram'] }, [], failed),
      ),
    ).toEqual(['return-path/shut-error']);
  });
});

describe('a postcopy return path captured by migstream tap (fixtures/recorded-7.2/pc-postcopy-tap.meta.json)', () => {
  const dir = join(REAL, '..', 'recorded-7.2');
  const main = () => new FileSource(join(dir, 'pc-postcopy-tap.mig'));
  const back = readFileSync(join(dir, 'pc-postcopy-tap.return-path.bin'));
  const load = (rp: Uint8Array) =>
    validateMain(
      main(),
      { capabilities: ['postcopy-ram'] },
      {},
      { multifd: [], returnPath: { name: 'return-path', source: new BufferSource(rp, 'return-path') } },
    );
  // MIG_RP_MSG_PONG: be16 type 2, be16 length 4, be32 value. PONGs @0, @8, @0x10, then a
  // REQ_PAGES_ID (type 3, length 19) @0x18, the last PONG @0x2f and SHUT(0) @0x37
  const pongs = (b: Uint8Array) => [0, 8, 16, 47].map((o) => new DataView(b.buffer, b.byteOffset + o).getUint32(4));
  it('QEMU 7.2 answered PING 4 (after the package) before PING 3 (inside it): valid as QEMU sent it', () => {
    expect(pongs(back)).toEqual([1, 2, 4, 3]);
    expect(load(back).diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
  it('a PONG echoing a value no unanswered PING sent, and a PONG after every PING was answered, are still found', () => {
    const wrong = Uint8Array.from(back);
    wrong[54] = 5;
    expect(rules(load(wrong))).toEqual(['return-path/pong-value']);
    const twice = Uint8Array.from(back);
    twice[54] = 4; // PONG 4 again while PING 3 waits
    expect(rules(load(twice))).toEqual(['return-path/pong-value']);
    // the last PONG repeated before SHUT: every PING is answered already
    const extra = new Uint8Array([...back.subarray(0, 55), ...back.subarray(47, 55), ...back.subarray(55)]);
    expect(rules(load(extra))).toEqual(['return-path/pong-without-ping']);
  });
});
