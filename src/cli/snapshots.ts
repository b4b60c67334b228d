import { Option, type Command } from 'commander';
import { listSnapshots } from '../app/snapshots.js';
import { withExamples } from './common.js';
import { printStdout } from './output.js';

export function registerSnapshots(program: Command): void {
  const cmd = program
    .command('snapshots')
    .description("list a qcow2 image's internal snapshots and the size of the VM state each holds")
    .argument('<image>', 'a qcow2 image (savevm, virsh snapshot-create with internal snapshots)')
    .addOption(new Option('--format <format>', 'a table or JSON').choices(['text', 'json']).default('text'));
  withExamples(cmd, [
    'migstream snapshots fixtures/recorded-7.2/pc-snapshots.qcow2',
    'migstream validate --snapshot first fixtures/recorded-7.2/pc-snapshots.qcow2',
  ]).action((image: string, o: { format: 'text' | 'json' }) => {
    const list = listSnapshots(image);
    if (o.format === 'json') {
      const snapshots = list.snapshots.map((s) => ({
        id: s.id,
        name: s.name,
        vmStateSize: s.vmStateSize,
        diskSize: s.diskSize,
        date: s.date.toISOString(),
        vmClockNsec: s.vmClockNsec.toString(),
      }));
      printStdout(JSON.stringify({ ...list, snapshots }, null, 2) + '\n');
      return;
    }
    const rows = [['ID', 'TAG', 'VM STATE BYTES', 'DATE', 'VM CLOCK']];
    for (const s of list.snapshots)
      rows.push([s.id, s.name, String(s.vmStateSize), s.date.toISOString(), vmClock(s.vmClockNsec)]);
    const width = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
    printStdout(
      rows
        .map((r) =>
          r
            .map((v, i) => v.padEnd(width[i] ?? 0))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') + '\n',
    );
  });
}

/** hh:mm:ss.mmm, as qemu-img shows the guest clock */
function vmClock(nsec: bigint): string {
  const ms = Number(nsec / 1_000_000n);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}.${pad(ms % 1000, 3)}`;
}
