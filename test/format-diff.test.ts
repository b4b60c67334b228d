import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffFiles } from '../src/app/diff.js';
import { compareFormats, compareLayouts } from '../src/formats/format-diff.js';
import type { DeviceDescription, FieldDescription, VmDescription } from '../src/vmstate/vmdesc.js';
import { REAL, ROOT } from './helpers.js';

/**
 * compareFormats and compareLayouts in process: real recordings and real device descriptions
 * (QEMU 11.1's q35-devices-running vmdescription, as analyze-migration.py printed it), each
 * edited in one known way, so the expected change is the edit itself.
 */
const q35 = (): VmDescription =>
  JSON.parse(readFileSync(join(REAL, 'qemu-11.1', 'q35-devices-running.desc.json'), 'utf8')) as VmDescription;
const device = (d: VmDescription, name: string): DeviceDescription => {
  const found = d.devices.find((x) => x.name === name);
  if (!found) throw new Error(`no ${name} in the recording`);
  return found;
};
const field = (fields: FieldDescription[] | undefined, name: string, nth = 1): FieldDescription => {
  const found = (fields ?? []).filter((f) => f.name === name)[nth - 1];
  if (!found) throw new Error(`no ${name} #${nth}`);
  return found;
};

describe('configuration subsections between two QEMU 7.2 recordings', () => {
  const paused = join(REAL, 'qemu-7.2', 'pc-paused.mig');
  // recorded with capability validate-uuid (fixtures/recorded-7.2/pc-validate-uuid.meta.json):
  // QEMU then sends the configuration/uuid subsection
  const uuid = join(ROOT, 'fixtures', 'recorded-7.2', 'pc-validate-uuid.mig');
  it('validate-uuid adds configuration/uuid, and only that', () => {
    const r = diffFiles(paused, uuid);
    expect(r.configurationSubsections).toEqual({ added: ['configuration/uuid'], removed: [], versionChanged: [] });
    expect(r.machineType).toBeUndefined();
    expect([r.devicesAdded, r.devicesRemoved, r.sectionVersions, r.layouts]).toEqual([[], [], [], []]);
    expect(r.same).toBe(false);
  });
  it('the other way round it is removed', () => {
    expect(diffFiles(uuid, paused).configurationSubsections).toEqual({
      added: [],
      removed: ['configuration/uuid'],
      versionChanged: [],
    });
  });
  it('a recording against itself: the same format, no configuration entry', () => {
    const r = diffFiles(uuid, uuid);
    expect(r.configurationSubsections).toBeUndefined();
    expect(r.same).toBe(true);
  });
});

describe('compareFormats, one difference at a time', () => {
  const base = { machineType: 'pc-i440fx-7.2', configurationSubsections: [{ name: 'configuration/uuid', version: 1 }] };
  it('a configuration subsection whose version changed', () => {
    const r = compareFormats(base, { ...base, configurationSubsections: [{ name: 'configuration/uuid', version: 2 }] });
    expect(r.configurationSubsections).toEqual({
      added: [],
      removed: [],
      versionChanged: [{ name: 'configuration/uuid', a: 1, b: 2 }],
    });
    expect(r.same).toBe(false);
  });
  it('the same configuration on both sides is no difference', () => {
    const r = compareFormats(base, { ...base });
    expect(r.configurationSubsections).toBeUndefined();
    expect(r.same).toBe(true);
  });
  it('each kind of difference alone makes the formats differ', () => {
    const s = (versionId: number, idstr = 'timer') => [{ idstr, instanceId: 0, versionId }];
    const cases = [
      compareFormats({ machineType: 'a' }, { machineType: 'b' }),
      compareFormats({ sections: s(2) }, { sections: [...s(2), ...s(1, 'dma')] }),
      compareFormats({ sections: [...s(2), ...s(1, 'dma')] }, { sections: s(2) }),
      compareFormats({ sections: s(2) }, { sections: s(3) }),
    ];
    expect(cases.map((c) => c.same)).toEqual([false, false, false, false]);
    expect(cases[1]?.devicesAdded).toEqual([{ idstr: 'dma', instanceId: 0 }]);
    expect(cases[2]?.devicesRemoved).toEqual([{ idstr: 'dma', instanceId: 0 }]);
    expect(cases[3]?.sectionVersions).toEqual([{ idstr: 'timer', instanceId: 0, a: 2, b: 3 }]);
    expect(compareFormats({ sections: s(2) }, { sections: s(2) }).same).toBe(true);
  });
});

describe('compareLayouts on real device descriptions, edited', () => {
  it('a repeated field name (ich9_ahci sends ahci.dev six times) is told apart by its occurrence', () => {
    const a = device(q35(), '0000:00:1f.2/ich9_ahci');
    const b = structuredClone(a);
    const ahci = field(b.fields, 'ahci').struct;
    const third = field(ahci?.fields, 'dev', 3);
    const inner = third.struct?.fields?.[0];
    if (!inner) throw new Error('ahci.dev has no fields');
    inner.size += 4;
    const changes = compareLayouts(a, b);
    expect(changes).toEqual([expect.objectContaining({ kind: 'field-changed', path: `ahci > dev#3 > ${inner.name}` })]);
  });
  it("an array's length (apic lvt, 6 entries)", () => {
    const a = device(q35(), 'apic');
    const b = structuredClone(a);
    field(b.fields, 'lvt').array_len = 7;
    expect(compareLayouts(a, b)).toEqual([
      {
        kind: 'field-changed',
        path: 'lvt',
        a: { type: 'uint32', size: 4, arrayLen: 6 },
        b: { type: 'uint32', size: 4, arrayLen: 7 },
      },
    ]);
  });
  it("a field's type alone", () => {
    const a = device(q35(), 'apic');
    const b = structuredClone(a);
    field(b.fields, 'lvt').type = 'int32';
    expect(compareLayouts(a, b).map((c) => c.kind)).toEqual(['field-changed']);
  });
  it('inside a subsection both sides send, and a subsection one side lacks', () => {
    const d = q35();
    const withSub = d.devices.find((x) => (x.subsections ?? []).some((s) => (s.fields ?? []).length > 0));
    if (!withSub) throw new Error('no device with a subsection in the recording');
    const sub = (withSub.subsections ?? []).find((s) => (s.fields ?? []).length > 0);
    const f = sub?.fields?.[0];
    if (!sub || !f) throw new Error('no subsection field');
    const b = structuredClone(withSub);
    const bsub = (b.subsections ?? []).find((s) => s.vmsd_name === sub.vmsd_name);
    if (!bsub?.fields?.[0]) throw new Error('clone lost the subsection');
    bsub.fields[0].size += 1;
    expect(compareLayouts(withSub, b)).toEqual([
      expect.objectContaining({ kind: 'field-changed', path: `subsection ${sub.vmsd_name} > ${f.name}` }),
    ]);
    const c = structuredClone(withSub);
    c.subsections = (c.subsections ?? []).filter((s) => s.vmsd_name !== sub.vmsd_name);
    expect(compareLayouts(withSub, c)).toEqual([
      { kind: 'subsection-removed', path: `subsection ${sub.vmsd_name}`, version: sub.version },
    ]);
  });
});
