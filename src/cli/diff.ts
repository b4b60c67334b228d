import { Option, type Command } from 'commander';
import { diffFiles, type DiffResult } from '../app/diff.js';
import type { FieldShape, LayoutChange } from '../formats/format-diff.js';
import { outColor } from './color.js';
import { streamOptions, withExamples, type StreamCliOptions } from './common.js';
import { EXIT_INVALID, EXIT_OK, type ExitStatus } from './errors.js';
import { printStdout } from './output.js';
import { withReadProgress } from './progress.js';

interface DiffCliOptions extends StreamCliOptions {
  format: 'text' | 'json';
}

export function registerDiff(program: Command, exit: ExitStatus): void {
  const cmd = program
    .command('diff')
    .description(
      'compare the migration format of two streams (or vmdescription JSON files): machine type, devices, section versions, field layouts, subsections; for streams also device values and guest pages (exit 0 same format, 1 it differs)',
    )
    .argument('<a>', 'stream or vmdescription JSON (dump --format desc)')
    .argument('<b>', 'stream or vmdescription JSON')
    .addOption(new Option('--format <format>', 'text or one JSON document').choices(['text', 'json']).default('text'));
  withExamples(cmd, [
    'migstream diff fixtures/real/qemu-10.0/q35-devices-running.mig fixtures/real/qemu-11.1/q35-devices-running.mig   # exit 1: 11.1 adds a subsection',
    'migstream diff fixtures/real/qemu-11.1/pc-paused.mig fixtures/real/qemu-11.1/pc-xbzrle.mig   # exit 1: a running CPU sends the optional subsection cpu/msr_smi_count',
    'migstream dump fixtures/real/qemu-10.0/pc-xbzrle.mig --format desc -o a.json',
    'migstream diff a.json fixtures/real/qemu-11.1/pc-xbzrle.mig --format json > diff.json   # exit 1: 10.0 and 11.1 differ',
  ]);
  streamOptions(cmd).action((a: string, b: string, o: DiffCliOptions) => {
    const r = withReadProgress(false, () => diffFiles(a, b, o));
    printStdout(o.format === 'json' ? JSON.stringify(r, null, 2) + '\n' : diffText(r));
    exit.set(r.same ? EXIT_OK : EXIT_INVALID);
  });
}

function shapeText(f: FieldShape): string {
  return `${f.type}${f.arrayLen === undefined ? '' : `[${f.arrayLen}]`}, ${f.size} bytes`;
}

function changeText(c: LayoutChange): string {
  switch (c.kind) {
    case 'field-added':
      return `${c.path}: field added (${shapeText(c.field)})`;
    case 'field-removed':
      return `${c.path}: field removed (${shapeText(c.field)})`;
    case 'field-changed':
      return `${c.path}: ${shapeText(c.a)} -> ${shapeText(c.b)}`;
    case 'subsection-added':
      return `${c.path}: added${c.version === undefined ? '' : ` (version ${c.version})`}`;
    case 'subsection-removed':
      return `${c.path}: removed${c.version === undefined ? '' : ` (version ${c.version})`}`;
    case 'version-changed':
      return `${c.path}: version ${c.a ?? '?'} -> ${c.b ?? '?'}`;
  }
}

/** One line per difference, format first; the verdict last. */
export function diffText(r: DiffResult): string {
  const c = outColor();
  const lines: string[] = [`--- ${r.a}`, `+++ ${r.b}`];
  const dev = (d: { idstr: string; instanceId: number }): string => `${d.idstr} (${d.instanceId})`;
  if (r.machineType) lines.push(`machine type: ${r.machineType.a ?? '?'} -> ${r.machineType.b ?? '?'}`);
  const cs = r.configurationSubsections;
  if (cs) {
    for (const n of cs.added) lines.push(c.green(`+ configuration subsection ${n}`));
    for (const n of cs.removed) lines.push(c.red(`- configuration subsection ${n}`));
    for (const v of cs.versionChanged) lines.push(`configuration subsection ${v.name}: version ${v.a} -> ${v.b}`);
  }
  for (const d of r.devicesRemoved) lines.push(c.red(`- device ${dev(d)}`));
  for (const d of r.devicesAdded) lines.push(c.green(`+ device ${dev(d)}`));
  for (const v of r.sectionVersions) lines.push(`device ${dev(v)}: section version ${v.a} -> ${v.b}`);
  for (const l of r.layouts) for (const ch of l.changes) lines.push(`device ${dev(l)}: ${changeText(ch)}`);
  if (r.values) {
    lines.push(
      r.values.changed
        ? `values: ${r.values.changed} fields differ in ${r.values.devices} devices${r.values.changed > r.values.first.length ? ` (the first ${r.values.first.length}:)` : ':'}`
        : 'values: the devices present on both sides hold the same values',
    );
    for (const v of r.values.first)
      lines.push(`  ${v.device} (${v.instanceId}) ${v.field}: ${v.a ?? '(absent)'} -> ${v.b ?? '(absent)'}`);
  }
  for (const b of r.ram ?? []) {
    const parts = [`${b.same} same`, `${b.differ} differ`];
    if (b.onlyA) parts.push(`${b.onlyA} only in A`);
    if (b.onlyB) parts.push(`${b.onlyB} only in B`);
    if (b.notCompared) parts.push(`${b.notCompared} not compared (last sent as XBZRLE or compressed)`);
    lines.push(`RAM ${b.block}: ${parts.join(', ')}`);
  }
  for (const e of r.errors) lines.push(c.yellow(`${e.file}: compared up to where it broke: ${e.message}`));
  lines.push(r.same ? c.green('the migration format is the same') : c.red.bold('the migration format differs'));
  return lines.join('\n') + '\n';
}
