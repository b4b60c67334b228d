import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffFiles } from '../src/app/diff.js';
import type { DeviceDescription, VmDescription } from '../src/vmstate/vmdesc.js';
import { decodeFile, REAL, ROOT, tempDir } from './helpers.js';

/**
 * `migstream diff`: the expected differences come from QEMU's own vmdescriptions of the same
 * machine recorded by 10.0 and 11.1 (fixtures/real/<version>/*.desc.json, as
 * analyze-migration.py printed them), read here with nothing but set operations.
 */
const BIN = join(ROOT, 'bin', 'migstream');
const tmp = tempDir('migstream-diff-');
const rec = (v: string, name: string) => join(REAL, `qemu-${v}`, name);
const descOf = (v: string, name: string) =>
  JSON.parse(readFileSync(rec(v, `${name}.desc.json`), 'utf8')) as VmDescription;
const arrayLen = (f: { array_len?: number }) => (f.array_len === undefined ? {} : { arrayLen: f.array_len });
const ids = (d: VmDescription) => new Set(d.devices.map((x) => `${x.name}#${x.instance_id}`));

describe('diff of one machine recorded by QEMU 10.0 and 11.1', () => {
  for (const name of ['q35-devices-running', 'pc-xbzrle']) {
    it(`${name}: devices and machine type as the recordings say; exit 1`, () => {
      const r = diffFiles(rec('10.0', `${name}.mig`), rec('11.1', `${name}.mig`));
      const a = descOf('10.0', name);
      const b = descOf('11.1', name);
      expect(new Set(r.devicesAdded.map((d) => `${d.idstr}#${d.instanceId}`))).toEqual(
        new Set([...ids(b)].filter((x) => !ids(a).has(x))),
      );
      expect(new Set(r.devicesRemoved.map((d) => `${d.idstr}#${d.instanceId}`))).toEqual(
        new Set([...ids(a)].filter((x) => !ids(b).has(x))),
      );
      const machine = /pc-(?:q35|i440fx)-/;
      expect(r.machineType?.a).toMatch(new RegExp(`${machine.source}10\\.0$`));
      expect(r.machineType?.b).toMatch(new RegExp(`${machine.source}11\\.1$`));
      expect(r.same).toBe(false);
      // the devices whose description differs are exactly those whose recorded JSON differs
      // (other than "index", which says which array element a struct is, not how it is sent)
      const strip = (d: DeviceDescription) => JSON.stringify(d, (k, v: unknown) => (k === 'index' ? undefined : v));
      const byId = (d: VmDescription) => new Map(d.devices.map((x) => [`${x.name}#${x.instance_id}`, strip(x)]));
      const ba = byId(a);
      const differing = [...byId(b)].filter(([k, v]) => ba.has(k) && ba.get(k) !== v).map(([k]) => k);
      expect(r.layouts.map((l) => `${l.idstr}#${l.instanceId}`).sort()).toEqual(differing.sort());
    });
  }

  it('q35: ICH9LPC carries CPU hotplug state in 11.1 (a new subsection under pm, which grows by its size)', () => {
    const r = diffFiles(rec('10.0', 'q35-devices-running.mig'), rec('11.1', 'q35-devices-running.mig'));
    const pm = (d: VmDescription) =>
      d.devices.find((x) => x.name === '0000:00:1f.0/ICH9LPC')?.fields?.find((f) => f.name === 'pm');
    const [pa, pb] = [pm(descOf('10.0', 'q35-devices-running')), pm(descOf('11.1', 'q35-devices-running'))];
    const added = (pb?.struct?.subsections ?? []).filter(
      (s) => !(pa?.struct?.subsections ?? []).some((t) => t.vmsd_name === s.vmsd_name),
    );
    expect(added.map((s) => s.vmsd_name)).toEqual(['ich9_pm/cpuhp']);
    expect(r.layouts).toEqual([
      {
        idstr: '0000:00:1f.0/ICH9LPC',
        instanceId: 0,
        changes: [
          {
            kind: 'field-changed',
            path: 'pm',
            a: { type: 'struct', size: pa?.size },
            b: { type: 'struct', size: pb?.size },
          },
          { kind: 'subsection-added', path: 'pm > subsection ich9_pm/cpuhp', version: added[0]?.version },
        ],
      },
    ]);
  });

  it('the two recorded vmdescription files give the same layout changes as the two streams', () => {
    const fromStreams = diffFiles(rec('10.0', 'q35-devices-running.mig'), rec('11.1', 'q35-devices-running.mig'));
    const fromJson = diffFiles(
      rec('10.0', 'q35-devices-running.desc.json'),
      rec('11.1', 'q35-devices-running.desc.json'),
    );
    expect(fromJson.kind).toBe('vmdescriptions');
    expect(fromJson.layouts).toEqual(fromStreams.layouts);
    expect(fromJson.machineType).toBeUndefined();
  });
});

describe('diff of a stream against itself and against an edited copy', () => {
  const paused = rec('11.1', 'pc-paused.mig');

  it('itself: the same format, no value and no page differs, exit 0', () => {
    const r = diffFiles(paused, paused);
    expect(r.same).toBe(true);
    expect(r.values?.changed).toBe(0);
    // every page sent, once per address: the census of the recording's RAM records (fixtures/real/index.json)
    const pages = decodeFile(paused).records.filter((x) => x.kind === 'ram' && (x.op === 'page' || x.op === 'zero'));
    expect(r.ram?.reduce((n, b) => n + b.same, 0)).toBe(pages.length);
    expect(r.ram?.every((b) => b.differ === 0 && b.onlyA === 0 && b.onlyB === 0)).toBe(true);
    const cli = spawnSync(process.execPath, [BIN, 'diff', paused, paused], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    expect(cli.stdout.trim().split('\n').at(-1)).toBe('the migration format is the same');
  });

  it('one byte of one page flipped: that page differs, the format does not (exit 0)', () => {
    const records = decodeFile(paused).records;
    const page = records.find((x) => x.kind === 'ram' && x.op === 'page');
    if (page?.kind !== 'ram' || page.op !== 'page') throw new Error('no page');
    const bytes = new Uint8Array(readFileSync(paused));
    bytes[page.offset + page.length - 1] ^= 0xff;
    const f = join(tmp, 'flipped.mig');
    writeFileSync(f, bytes);
    const r = diffFiles(paused, f);
    expect(r.same).toBe(true);
    expect(r.ram?.filter((b) => b.differ).map((b) => [b.block, b.differ])).toEqual([[page.block, 1]]);
  });

  it('a vmdescription edited four ways: each change named at its path', () => {
    const a = descOf('11.1', 'q35-devices-running');
    const b = JSON.parse(JSON.stringify(a)) as VmDescription;
    const cpu = b.devices.find((d) => d.name === 'cpu');
    const fields = cpu?.fields ?? [];
    const removed = fields.splice(1, 1)[0];
    const resized = fields[0];
    if (!cpu || !removed || !resized) throw new Error('cpu has fewer than two fields');
    const before = { ...resized };
    resized.size += 4;
    fields.push({ name: 'new_field', type: 'uint32', size: 4 });
    cpu.version = (cpu.version ?? 0) + 1;
    const lost = b.devices.pop();
    const fa = join(tmp, 'a.json');
    const fb = join(tmp, 'b.json');
    writeFileSync(fa, JSON.stringify(a));
    writeFileSync(fb, JSON.stringify(b));
    const r = diffFiles(fa, fb);
    expect(r.devicesRemoved).toEqual([{ idstr: lost?.name, instanceId: lost?.instance_id }]);
    expect(r.layouts.find((l) => l.idstr === 'cpu')?.changes).toEqual([
      { kind: 'version-changed', path: '(device)', a: (cpu.version ?? 0) - 1, b: cpu.version },
      {
        kind: 'field-changed',
        path: before.name,
        a: { type: before.type, size: before.size, ...arrayLen(before) },
        b: { type: before.type, size: before.size + 4, ...arrayLen(before) },
      },
      {
        kind: 'field-removed',
        path: removed.name,
        field: { type: removed.type, size: removed.size, ...arrayLen(removed) },
      },
      { kind: 'field-added', path: 'new_field', field: { type: 'uint32', size: 4 } },
    ]);
    const cli = spawnSync(process.execPath, [BIN, 'diff', fa, fb, '--format', 'json'], { encoding: 'utf8' });
    expect(cli.status).toBe(1);
    expect((JSON.parse(cli.stdout) as { same: boolean }).same).toBe(false);
  });
});
