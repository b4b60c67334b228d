/**
 * The gen use case: the save engine's stream (and multifd channels) for a scenario, as bytes,
 * and where they are written.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../model/errors.js';
import { applyMutations } from '../generator/mutate.js';
import { save } from '../generator/save.js';
import type { Scenario } from '../generator/scenario.js';
import { checkScenario } from '../generator/schema-check.js';
import { encodeToBytes } from '../codec/open.js';
import { writeAllSync } from '../io/write-all.js';

/** The bytes of a generated migration: the main channel and each multifd channel. */
export interface GeneratedStreams {
  main: Uint8Array;
  multifd: Uint8Array[];
}

/** Save a scenario (a machine model, optionally with VFIO devices and mutations) as QEMU would: the stream bytes. */
export function generate(s: Scenario): GeneratedStreams {
  let saved = save(s);
  if (s.mutations?.length) saved = applyMutations(saved, s.mutations);
  return { main: encodeToBytes(saved.main), multifd: saved.multifd.map((c) => encodeToBytes(c)) };
}

/** Read and check a scenario JSON file against its schema (schemas/migstream-scenario.schema.json). */
export function readScenario(path: string): Scenario {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read scenario ${path}: ${(e as Error).message}`);
  }
  const problems = checkScenario(v);
  if (problems.length)
    throw new UsageError(`${path} is not a valid scenario:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return v as Scenario;
}

/**
 * Write the main stream to `output` (`-` = stdout) and channel N to `<stem>.multifd<N>.bin`
 * in `multifdDir` (default: next to the output). Returns the paths written.
 */
export function writeGenerated(files: GeneratedStreams, output: string, multifdDir?: string): string[] {
  if (files.multifd.length && output === '-' && !multifdDir)
    throw new UsageError('the scenario has multifd channels: with -o - give --multifd-dir DIR for them');
  const written: string[] = [];
  if (output === '-') writeAllSync(1, files.main);
  else {
    writeFileSync(output, files.main);
    written.push(output);
  }
  const stem = output === '-' ? 'stdout' : basename(output).replace(/\.mig$/, '');
  files.multifd.forEach((b, i) => {
    const p = join(multifdDir ?? dirname(output), `${stem}.multifd${i}.bin`);
    writeFileSync(p, b);
    written.push(p);
  });
  return written;
}
