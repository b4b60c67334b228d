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
import { freshMutants, MUTATORS, Prng } from '../src/fuzz/mutators.js';
import { BufferSource, readAt } from '../src/io/source.js';
import { profileFromStream } from '../src/loader/profile.js';
import { validateMain, type ValidationResult } from '../src/loader/validate.js';
import { validateFile } from '../src/app/validate.js';
import { Qcow2Image } from '../src/qcow2/image.js';
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

/**
 * What mutants are made of and judged on: a stream, QEMU's verdict on a mutant of it (undefined
 * when the mutant cannot be put where QEMU reads it), and migstream's.
 */
interface Subject {
  name: string;
  bytes: Uint8Array;
  qemu(mutant: Uint8Array, index: number): QemuVerdict | undefined;
  migstream(mutant: Uint8Array, index: number): ValidationResult;
}

/** `perCase` mutants of a subject, the mutators taken in turn, each judged by QEMU and by migstream. */
function compareSubject(subject: Subject, perCase: number, seed: number): Comparison[] {
  const records: MainRecord[] = [...openMainStream(new BufferSource(subject.bytes), { copyData: true }).records()];
  const rng = new Prng(seed);
  const out: Comparison[] = [];
  for (let i = 0; out.length < perCase && i < perCase * 4; i++) {
    const mutator = MUTATORS[i % MUTATORS.length];
    if (!mutator) continue;
    const m = mutator.fn(subject.bytes, records, rng, freshMutants);
    if (!m) continue;
    const qemu = subject.qemu(m.bytes, out.length);
    if (!qemu) continue;
    const r = subject.migstream(m.bytes, out.length);
    const first = r.diagnostics.find((d) => d.severity === 'error');
    out.push({
      recording: subject.name,
      mutator: mutator.name,
      what: m.what,
      qemu,
      migstream: { valid: r.valid, first: first && `[${first.rule}] ${first.message}` },
    });
  }
  return out;
}

/** `perCase` mutants of one recording, loaded by QEMU with -incoming and judged by `validate --profile RECORDING`. */
export function compareMutants(
  mig: string,
  perCase: number,
  seed: number,
  dir: string,
  withProfile = true,
): Comparison[] {
  const bytes = new Uint8Array(readFileSync(mig));
  const dst = destinationOf(mig);
  const profile = profileFromStream(new BufferSource(bytes), mig);
  const sendConfiguration = !dst.args.includes('migration.send-configuration=off');
  const sectionFooters = !dst.args.includes('migration.send-section-footer=off');
  const qemuVersion = qemuRelease();
  const subject = fileSubject(
    mig,
    bytes,
    dir,
    (file) => qemuLoads(file, dst),
    (_file, mutant) =>
      validateMain(new BufferSource(mutant), {
        qemuVersion,
        capabilities: dst.capabilities,
        sendConfiguration,
        sectionFooters,
        profile: withProfile ? profile : undefined,
      }),
  );
  return compareSubject(subject, perCase, seed);
}

/** A subject whose mutants are each written to a file: QEMU loads the file, migstream judges it, then it is removed. */
function fileSubject(
  mig: string,
  bytes: Uint8Array,
  dir: string,
  qemu: (file: string) => QemuVerdict,
  migstream: (file: string, mutant: Uint8Array) => ValidationResult,
): Subject {
  const file = (i: number): string => join(dir, `${basename(mig, '.mig')}-${i}.mig`);
  return {
    name: mig,
    bytes,
    qemu: (mutant, i) => {
      writeFileSync(file(i), mutant);
      return qemu(file(i));
    },
    migstream: (mutant, i) => {
      try {
        return migstream(file(i), mutant);
      } finally {
        rmSync(file(i));
      }
    },
  };
}

/** The QEMU a recording ran (`key` of its meta.json: `run`, `source`): its arguments without the disk, the monitor and -S. */
function machineArgsOf(meta: string, key: 'run' | 'source'): string[] {
  const run = (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, { argv: string[] } | undefined>)[key];
  if (!run) throw new Error(`${meta} has no ${key}.argv`);
  const argv = run.argv.slice(1);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '-drive' || a === '-qmp') i++;
    else if (a !== '-S') args.push(a);
  }
  return args;
}

/** QEMU with `args`, commands given on its QMP stdin: its exit status and the last line it printed to stderr. */
function qemuWithQmp(args: string[], commands: object[]): { status: number | null; stderr: string } {
  const input = [{ execute: 'qmp_capabilities' }, ...commands, { execute: 'quit' }]
    .map((c) => JSON.stringify(c) + '\n')
    .join('');
  const r = spawnSync('qemu-system-x86_64', [...args, '-S', '-qmp', 'stdio'], {
    input,
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr };
}

const lastLine = (text: string): string => text.trim().split('\n').slice(-1)[0] ?? '';

/**
 * Mutants of an internal snapshot's VM state (qcow2), written into a copy of the image where
 * the VM state's bytes are kept, and loaded by QEMU at start-up (`-loadvm NAME`: exit 1 when
 * the load fails). Only mutants of the stream's own length can be written in place, so
 * truncations and duplicated records are not among them. migstream judges the copy as a user
 * would: `validate COPY.qcow2 --snapshot NAME --profile VMSTATE` (the unmutated VM state is
 * the destination's profile).
 */
export function compareSnapshotMutants(
  image: string,
  snapshot: string,
  perCase: number,
  seed: number,
  dir: string,
): Comparison[] {
  const qcow2 = new Qcow2Image(image);
  const snap = qcow2.snapshot(snapshot);
  if (!snap) throw new Error(`${image} has no snapshot ${snapshot}`);
  const vmState = qcow2.vmState(snap);
  const bytes = new Uint8Array(vmState.size);
  readAt(vmState, bytes, bytes.length, 0);
  const profile = join(dir, `${basename(image, '.qcow2')}.${snapshot}.mig`);
  writeFileSync(profile, bytes);
  const machine = machineArgsOf(image.replace(/\.qcow2$/, '.meta.json'), 'run');
  const qemuVersion = qemuRelease();
  const original = readFileSync(image);
  const copy = (i: number): string => join(dir, `${basename(image, '.qcow2')}-${i}.qcow2`);
  try {
    return compareSubject(
      {
        name: `${image} (snapshot ${snapshot})`,
        bytes,
        qemu: (mutant, i) => {
          if (mutant.length !== bytes.length) return undefined;
          const patched = Buffer.from(original);
          for (let at = 0; at < bytes.length; at++) {
            if (mutant[at] === bytes[at]) continue;
            const to = vmState.fileOffset(at);
            if (to === undefined) return undefined; // a byte reading as zeros or compressed: not here
            patched[to] = mutant[at] ?? 0;
          }
          writeFileSync(copy(i), patched);
          const drive = `file=${copy(i)},if=ide,format=qcow2`;
          const r = qemuWithQmp([...machine, '-drive', drive, '-loadvm', snapshot], []);
          return { loads: r.status === 0, why: lastLine(r.stderr) };
        },
        migstream: (_mutant, i) => {
          const r = validateFile(copy(i), { snapshot, qemuVersion, profile });
          rmSync(copy(i));
          return r;
        },
      },
      perCase,
      seed,
    );
  } finally {
    qcow2.close();
  }
}

/**
 * QMP xen-load-devices-state of `file` into the machine a device-state recording was made on
 * (`meta`, its meta.json), with send-configuration off. QEMU 7.2 aborts after every such load
 * (an assertion in its yank cleanup), so the verdict is what it printed first: a load that
 * reached QEMU_VM_EOF warns that no vmdescription follows, a failed one prints its error.
 */
export function deviceStateLoads(file: string, meta: string): QemuVerdict {
  const machine = machineArgsOf(meta, 'source');
  const r = qemuWithQmp(
    [...machine, '-global', 'migration.send-configuration=off'],
    [{ execute: 'xen-load-devices-state', arguments: { filename: file } }],
  );
  const loaded = r.stderr.includes('Expected vmdescription section');
  return { loads: loaded, why: loaded ? '' : (r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`) };
}

/**
 * Mutants of a device-state-only stream (xen-save-devices-state), loaded by QMP
 * xen-load-devices-state (deviceStateLoads). migstream judges as
 * `validate --no-configuration --profile FULL`, the full stream of the same VM giving the
 * devices' layouts.
 */
export function compareDeviceStateMutants(
  mig: string,
  full: string,
  perCase: number,
  seed: number,
  dir: string,
): Comparison[] {
  const bytes = new Uint8Array(readFileSync(mig));
  const qemuVersion = qemuRelease();
  const subject = fileSubject(
    mig,
    bytes,
    dir,
    (file) => deviceStateLoads(file, mig.replace(/\.mig$/, '.meta.json')),
    (file) => validateFile(file, { sendConfiguration: false, qemuVersion, profile: full }),
  );
  return compareSubject(subject, perCase, seed);
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
