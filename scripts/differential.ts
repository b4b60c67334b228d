/**
 * The reference loader against a real QEMU destination: mutants of QEMU 7.2 recordings
 * (every mutator of the fuzzer, byte flips included, taken in turn) are loaded into
 * qemu-system-x86_64 through bin/qemu-load and judged by `validate --profile` with the
 * unmutated recording as the destination's profile. Prints the agreement and each
 * disagreement. Usage:
 *   node dist/scripts/differential.js [--per-case N] [--seed S] [--no-profile] [--json] [CASE.mig ...]
 * (--no-profile: judged as plain `validate` is, without the destination's profile)
 * default: every 7.2 recording listed in DIFFERENTIAL_CASES, 40 mutants each.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMainStream } from '../src/codec/open.js';
import { MUTATORS, Prng } from '../src/fuzz/mutators.js';
import { BufferSource } from '../src/io/source.js';
import { profileFromStream } from '../src/loader/profile.js';
import { validateMain } from '../src/loader/validate.js';
import type { MainRecord } from '../src/model/records.js';

// scripts/ when run from the sources (tests), dist/scripts/ when compiled
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = existsSync(join(HERE, '..', 'package.json')) ? join(HERE, '..') : join(HERE, '..', '..');
const QEMU_LOAD = join(ROOT, 'bin', 'qemu-load');
const DIRTIER_ROM = join(ROOT, 'fixtures', 'real', 'tools', 'dirtier.rom');

/** 7.2 recordings whose destination is a plain `-incoming defer` QEMU (no multifd, no live peer). */
export const DIFFERENTIAL_CASES = [
  'fixtures/real/qemu-7.2/pc-paused.mig',
  'fixtures/real/qemu-7.2/pc-old-format.mig',
  'fixtures/real/qemu-7.2/pc-compress-7.2.mig',
  'fixtures/real/qemu-7.2/pc-postcopy-ram.mig',
  'fixtures/recorded-7.2/q35-devices-running.mig',
  'fixtures/recorded-7.2/pc-validate-uuid.mig',
  'fixtures/recorded-7.2/pc-xbzrle.mig',
];

interface Meta {
  caps: Record<string, boolean>;
  load: { dst_argv: string[] };
}

export interface Destination {
  /** QEMU's argv without QMP and -incoming (qemu-load adds its own) */
  args: string[];
  capabilities: string[];
}

/** The destination a recording was loaded into, from its meta.json. */
export function destinationOf(mig: string): Destination {
  const meta = JSON.parse(readFileSync(mig.replace(/\.mig$/, '.meta.json'), 'utf8')) as Meta;
  const argv = meta.load.dst_argv.slice(1);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '-incoming' || a === '-qmp') i++;
    else args.push(a.endsWith('/dirtier.rom') ? DIRTIER_ROM : a);
  }
  const capabilities = Object.entries(meta.caps)
    .filter(([, on]) => on)
    .map(([c]) => c);
  return { args, capabilities };
}

/** The destination's release, "X.Y", from `qemu-system-x86_64 --version` (a stream without a configuration does not say). */
export function qemuRelease(): string | undefined {
  const r = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  return /version (\d+\.\d+)\./.exec(r.stdout)?.[1];
}

export interface QemuVerdict {
  loads: boolean;
  why: string;
}

export function qemuLoads(file: string, dst: Destination): QemuVerdict {
  const r = spawnSync(
    process.execPath,
    [QEMU_LOAD, ...dst.capabilities.flatMap((c) => ['--capability', c]), '--', ...dst.args, file],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return { loads: r.status === 0, why: r.stderr.trim().split('\n').slice(-1)[0] ?? '' };
}

export interface Comparison {
  recording: string;
  mutator: string;
  what: string;
  qemu: QemuVerdict;
  migstream: { valid: boolean; first?: string };
}

/** `perCase` mutants of one recording, the mutators taken in turn, each judged by QEMU and by migstream. */
export function compareMutants(
  mig: string,
  perCase: number,
  seed: number,
  dir: string,
  withProfile = true,
): Comparison[] {
  const bytes = new Uint8Array(readFileSync(mig));
  const records: MainRecord[] = [...openMainStream(new BufferSource(bytes), { copyData: true }).records()];
  const dst = destinationOf(mig);
  const profile = profileFromStream(new BufferSource(bytes), mig);
  const sendConfiguration = !dst.args.includes('migration.send-configuration=off');
  const sectionFooters = !dst.args.includes('migration.send-section-footer=off');
  const qemuVersion = qemuRelease();
  const rng = new Prng(seed);
  const out: Comparison[] = [];
  for (let i = 0; out.length < perCase && i < perCase * 4; i++) {
    const mutator = MUTATORS[i % MUTATORS.length];
    if (!mutator) continue;
    const m = mutator.fn(bytes, records, rng);
    if (!m) continue;
    const file = join(dir, `${basename(mig, '.mig')}-${out.length}.mig`);
    writeFileSync(file, m.bytes);
    const qemu = qemuLoads(file, dst);
    const r = validateMain(new BufferSource(m.bytes), {
      qemuVersion,
      capabilities: dst.capabilities,
      sendConfiguration,
      sectionFooters,
      profile: withProfile ? profile : undefined,
    });
    const first = r.diagnostics.find((d) => d.severity === 'error');
    out.push({
      recording: mig,
      mutator: mutator.name,
      what: m.what,
      qemu,
      migstream: { valid: r.valid, first: first && `[${first.rule}] ${first.message}` },
    });
    rmSync(file);
  }
  return out;
}

function main(): void {
  const args = process.argv.slice(2);
  let perCase = 40;
  let seed = 2026;
  let json = false;
  let withProfile = true;
  const cases: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--per-case') perCase = Number(args[++i]);
    else if (a === '--seed') seed = Number(args[++i]);
    else if (a === '--json') json = true;
    else if (a === '--no-profile') withProfile = false;
    else if (a !== undefined) cases.push(a);
  }
  const dir = mkdtempSync(join(tmpdir(), 'migstream-differential-'));
  const all: Comparison[] = [];
  const t0 = Date.now();
  try {
    for (const c of cases.length ? cases : DIFFERENTIAL_CASES.map((p) => join(ROOT, p)))
      all.push(...compareMutants(c, perCase, seed, dir, withProfile));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const agree = all.filter((c) => c.qemu.loads === c.migstream.valid);
  const refused = all.filter((c) => !c.qemu.loads).length;
  if (json) {
    process.stdout.write(
      JSON.stringify({ total: all.length, agree: agree.length, refused, comparisons: all }, null, 2) + '\n',
    );
    return;
  }
  for (const c of all.filter((x) => x.qemu.loads !== x.migstream.valid))
    process.stdout.write(
      `${basename(c.recording)}: ${c.mutator}: ${c.what}: QEMU ${c.qemu.loads ? 'loads it' : `refuses it (${c.qemu.why})`}; migstream ${c.migstream.valid ? 'valid' : c.migstream.first}\n`,
    );
  const byMutator = new Map<string, [number, number]>();
  for (const c of all) {
    const e = byMutator.get(c.mutator) ?? [0, 0];
    e[0] += c.qemu.loads === c.migstream.valid ? 1 : 0;
    e[1]++;
    byMutator.set(c.mutator, e);
  }
  process.stdout.write(
    `${agree.length} of ${all.length} agree (${((100 * agree.length) / all.length).toFixed(1)}%), QEMU refused ${refused}; ` +
      [...byMutator].map(([m, [a, n]]) => `${m} ${a}/${n}`).join(', ') +
      `; ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
