/**
 * What changed in the migration format between two streams (or two vmdescriptions): the
 * question asked of every QEMU or driver patch ("does this change what goes on the wire?").
 *
 * The format is what a destination must agree on: the machine type, the sections (idstr,
 * instance id, version), and each device's VMState layout as its vmdescription gives it
 * (fields with type and size, nested structs, subsections). Field values and guest pages are
 * compared too, but they are the machine's state, not its format.
 */
import type { DeviceDescription, FieldDescription, VmDescription, VmsdDescription } from '../vmstate/vmdesc.js';

/** What one side tells about its format. */
export interface FormatFacts {
  machineType?: string;
  /** configuration subsections sent (name and version) */
  configurationSubsections?: { name: string; version: number }[];
  /** sections by idstr and instance id, with their version (streams only) */
  sections?: { idstr: string; instanceId: number; versionId: number }[];
  vmdesc?: VmDescription;
}

/** A field of a device layout as the format sees it: type, size, array length. */
export interface FieldShape {
  type: string;
  size: number;
  arrayLen?: number;
}

/** One way a device layout changed between two streams: a field added, removed or resized, a subsection added or removed. */
export type LayoutChange =
  | { kind: 'field-added'; path: string; field: FieldShape }
  | { kind: 'field-removed'; path: string; field: FieldShape }
  | { kind: 'field-changed'; path: string; a: FieldShape; b: FieldShape }
  | { kind: 'subsection-added'; path: string; version?: number }
  | { kind: 'subsection-removed'; path: string; version?: number }
  | { kind: 'version-changed'; path: string; a: number | undefined; b: number | undefined };

/** A device section by idstr and instance id. */
export interface DeviceRef {
  idstr: string;
  instanceId: number;
}

/** How the migration formats of two streams (or two vmdescriptions) differ. */
export interface FormatDiff {
  machineType?: { a: string | undefined; b: string | undefined };
  configurationSubsections?: {
    added: string[];
    removed: string[];
    versionChanged: { name: string; a: number; b: number }[];
  };
  devicesAdded: DeviceRef[];
  devicesRemoved: DeviceRef[];
  sectionVersions: (DeviceRef & { a: number; b: number })[];
  /** per device present on both sides: how its layout changed */
  layouts: (DeviceRef & { changes: LayoutChange[] })[];
  /** true when no part of the format differs */
  same: boolean;
}

const key = (d: DeviceRef): string => `${d.idstr}\u0000${d.instanceId}`;

function shape(f: FieldDescription): FieldShape {
  return { type: f.type, size: f.size, ...(f.array_len === undefined ? {} : { arrayLen: f.array_len }) };
}

/** Fields by name, a repeated name numbered by its occurrence ("tx_fifo", "tx_fifo#2"). */
function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  const out = new Map<string, T>();
  const seen = new Map<string, number>();
  for (const f of items) {
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    out.set(n === 1 ? f.name : `${f.name}#${n}`, f);
  }
  return out;
}

function join(path: string, part: string): string {
  return path ? `${path} > ${part}` : part;
}

/** The layout changes between two VMState descriptions, in field order of A then B's additions. */
export function compareLayouts(a: VmsdDescription, b: VmsdDescription, path = ''): LayoutChange[] {
  const out: LayoutChange[] = [];
  if (a.version !== b.version)
    out.push({ kind: 'version-changed', path: path || '(device)', a: a.version, b: b.version });
  const fa = byName(a.fields ?? []);
  const fb = byName(b.fields ?? []);
  for (const [name, f] of fa) {
    const g = fb.get(name);
    const here = join(path, name);
    if (!g) {
      out.push({ kind: 'field-removed', path: here, field: shape(f) });
      continue;
    }
    const sa = shape(f);
    const sb = shape(g);
    if (sa.type !== sb.type || sa.size !== sb.size || sa.arrayLen !== sb.arrayLen)
      out.push({ kind: 'field-changed', path: here, a: sa, b: sb });
    // a struct (or an inlined nested description) is compared inside, whatever its size did
    const ia = f.struct ?? (f.fields ? f : undefined);
    const ib = g.struct ?? (g.fields ? g : undefined);
    if (ia && ib) out.push(...compareLayouts(ia, ib, here));
  }
  for (const [name, g] of fb)
    if (!fa.has(name)) out.push({ kind: 'field-added', path: join(path, name), field: shape(g) });
  const subName = (s: VmsdDescription): { name: string } => ({ name: s.vmsd_name ?? '?' });
  const sa = byName((a.subsections ?? []).map((s) => ({ ...subName(s), s })));
  const sb = byName((b.subsections ?? []).map((s) => ({ ...subName(s), s })));
  for (const [name, { s }] of sa) {
    const here = join(path, `subsection ${name}`);
    const t = sb.get(name);
    if (!t) out.push({ kind: 'subsection-removed', path: here, version: s.version });
    else out.push(...compareLayouts(s, t.s, here));
  }
  for (const [name, { s }] of sb)
    if (!sa.has(name))
      out.push({ kind: 'subsection-added', path: join(path, `subsection ${name}`), version: s.version });
  return out;
}

function devicesOf(f: FormatFacts): Map<string, DeviceRef & { desc?: DeviceDescription; versionId?: number }> {
  const out = new Map<string, DeviceRef & { desc?: DeviceDescription; versionId?: number }>();
  for (const s of f.sections ?? [])
    out.set(key(s), { idstr: s.idstr, instanceId: s.instanceId, versionId: s.versionId });
  for (const d of f.vmdesc?.devices ?? []) {
    const ref = { idstr: d.name, instanceId: d.instance_id };
    out.set(key(ref), { ...out.get(key(ref)), ...ref, desc: d });
  }
  return out;
}

/** Compare the formats two streams (or vmdescriptions) describe: devices, section versions, layouts, configuration. */
export function compareFormats(a: FormatFacts, b: FormatFacts): FormatDiff {
  const diff: FormatDiff = { devicesAdded: [], devicesRemoved: [], sectionVersions: [], layouts: [], same: true };
  if (a.machineType !== b.machineType) diff.machineType = { a: a.machineType, b: b.machineType };
  if (a.configurationSubsections || b.configurationSubsections) {
    const ca = new Map((a.configurationSubsections ?? []).map((s) => [s.name, s.version]));
    const cb = new Map((b.configurationSubsections ?? []).map((s) => [s.name, s.version]));
    const added = [...cb.keys()].filter((n) => !ca.has(n));
    const removed = [...ca.keys()].filter((n) => !cb.has(n));
    const versionChanged = [...ca]
      .filter(([n, v]) => cb.has(n) && cb.get(n) !== v)
      .map(([name, v]) => ({ name, a: v, b: cb.get(name) ?? 0 }));
    if (added.length || removed.length || versionChanged.length)
      diff.configurationSubsections = { added, removed, versionChanged };
  }
  const da = devicesOf(a);
  const db = devicesOf(b);
  for (const [k, d] of da) {
    const e = db.get(k);
    const ref = { idstr: d.idstr, instanceId: d.instanceId };
    if (!e) {
      diff.devicesRemoved.push(ref);
      continue;
    }
    if (d.versionId !== undefined && e.versionId !== undefined && d.versionId !== e.versionId)
      diff.sectionVersions.push({ ...ref, a: d.versionId, b: e.versionId });
    if (d.desc && e.desc) {
      const changes = compareLayouts(d.desc, e.desc);
      if (changes.length) diff.layouts.push({ ...ref, changes });
    }
  }
  for (const [k, e] of db) if (!da.has(k)) diff.devicesAdded.push({ idstr: e.idstr, instanceId: e.instanceId });
  diff.same =
    !diff.machineType &&
    !diff.configurationSubsections &&
    !diff.devicesAdded.length &&
    !diff.devicesRemoved.length &&
    !diff.sectionVersions.length &&
    !diff.layouts.length;
  return diff;
}
