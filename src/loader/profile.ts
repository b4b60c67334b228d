/**
 * A destination profile: what a QEMU destination knows about itself and checks an incoming
 * stream against (savevm.c configuration_post_load, the uuid subsection's post_load,
 * ram_load's MEM_SIZE entries, find_se and the section version, each device's VMState).
 * It is taken from a stream that destination is known to accept (the same QEMU, machine and
 * devices: `migstream profile REF.mig`), or written by hand; every field is optional, and
 * what is absent is not checked.
 */
import { StreamError, UsageError } from '../model/errors.js';
import type { MainRecord } from '../model/records.js';
import { openMainStream } from '../codec/open.js';
import type { ByteSource } from '../io/source.js';
import { checkVmDescription, type VmDescription } from '../vmstate/vmdesc.js';
import { isReleaseText } from '../../grammar/version.js';

/** The `format` value of a destination profile JSON file. */
export const PROFILE_FORMAT = 'migstream-destination-profile';
export const PROFILE_VERSION = 1;

/** A device section the destination has, and the newest version of it that it loads. */
export interface ProfileDevice {
  idstr: string;
  instanceId: number;
  /** the section version the destination loads up to (its vmsd's version_id) */
  versionId: number;
}

/** What a destination QEMU knows about itself (`migstream profile`): machine type, UUID, RAMBlocks, devices and their layouts. */
export interface DestinationProfile {
  format: typeof PROFILE_FORMAT;
  version: typeof PROFILE_VERSION;
  /** the stream it was taken from, for the reader */
  takenFrom?: string;
  /** "X.Y" */
  qemuVersion?: string;
  /** the destination's machine type (-machine pc-i440fx-7.2) */
  machineType?: string;
  /** the destination's -uuid, canonical text; absent: not set (QEMU then only warns) */
  uuid?: string;
  targetPageBits?: number;
  /** migration property send-configuration: does the destination expect QEMU_VM_CONFIGURATION */
  sendConfiguration?: boolean;
  /** migration property send-section-footer: does it expect QEMU_VM_SECTION_FOOTER after each section */
  sectionFooters?: boolean;
  /** RAMBlocks by idstr with their used_length */
  ramBlocks?: { name: string; usedLength: number }[];
  /** the sections (devices and live handlers) the destination has */
  devices?: ProfileDevice[];
  /** the destination's VMState layouts: device payloads are judged by these, not the stream's own */
  vmdescription?: VmDescription;
}

/** 16 bytes as QEMU prints a UUID (qemu_uuid_unparse): 8-4-4-4-12 lowercase hex. */
export function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuidText(s: string): boolean {
  return UUID_RE.test(s.toLowerCase());
}

/** The release a machine type names (pc-i440fx-7.2, pc-q35-10.0), if it names one. */
export function machineTypeVersion(machineType: string): string | undefined {
  return /-(\d+\.\d+)$/.exec(receivedMachineType(machineType))?.[1];
}

/**
 * The machine type as the destination reads the configuration's name: its `len` bytes compared
 * with strncmp and printed with "%.*s" (savevm.c configuration_post_load), so a NUL ends it.
 */
export function receivedMachineType(name: string): string {
  const nul = name.indexOf('\0');
  return nul < 0 ? name : name.slice(0, nul);
}

/**
 * Whether a destination whose machine type is `local` accepts the configuration's `name`:
 * strncmp(name, local, len) compares no more than the name's own length, so a name that is the
 * local one's beginning (down to none at all) passes, and a NUL in it ends the comparison there.
 */
export function machineTypeAccepted(name: string, local: string): boolean {
  const shown = receivedMachineType(name);
  return shown.length < name.length ? shown === local : local.startsWith(name);
}

/**
 * The profile of the destination that accepts `source` (a stream it loaded). A stream that
 * does not decode to its end is refused: a profile must describe a destination, not a guess.
 */
export function profileFromStream(source: ByteSource, takenFrom?: string): DestinationProfile {
  const s = openMainStream(source, {});
  const p: DestinationProfile = { format: PROFILE_FORMAT, version: PROFILE_VERSION, takenFrom };
  const ramBlocks: { name: string; usedLength: number }[] = [];
  const devices: ProfileDevice[] = [];
  const seen = new Set<string>();
  let vmdescJson: string | undefined;
  let sections = 0;
  let footers = 0;
  let configuration = false;
  const add = (rec: MainRecord): void => {
    if (rec.depth) return;
    switch (rec.kind) {
      case 'section_footer':
        footers++;
        break;
      case 'configuration':
        configuration = true;
        p.machineType = rec.machineType;
        p.qemuVersion = machineTypeVersion(rec.machineType);
        for (const sub of rec.subsections) {
          if (sub.fields.uuid instanceof Uint8Array) p.uuid = uuidText(sub.fields.uuid);
          if (typeof sub.fields.targetPageBits === 'number') p.targetPageBits = sub.fields.targetPageBits;
        }
        break;
      case 'ram_block':
        ramBlocks.push({ name: rec.idstr, usedLength: rec.usedLength });
        break;
      case 'section':
        sections++;
        if (rec.section === 'START' || rec.section === 'FULL') {
          const key = `${rec.idstr}\0${rec.instanceId}`;
          if (!seen.has(key)) devices.push({ idstr: rec.idstr, instanceId: rec.instanceId, versionId: rec.versionId });
          seen.add(key);
        }
        break;
      case 'vmdescription':
        vmdescJson = rec.json;
        break;
      default:
        break;
    }
  };
  try {
    for (const rec of s.records()) add(rec);
  } catch (e) {
    if (!(e instanceof StreamError)) throw e;
    throw new UsageError(`cannot take a destination profile from a stream that does not decode: ${e.message}`);
  } finally {
    s.close();
  }
  p.sendConfiguration = configuration;
  // a stream that the destination accepts has footers after every section, or none
  if (sections) p.sectionFooters = footers > 0;
  if (ramBlocks.length) p.ramBlocks = ramBlocks;
  if (devices.length) p.devices = devices;
  if (vmdescJson !== undefined) {
    const v: unknown = JSON.parse(vmdescJson);
    checkVmDescription(v);
    p.vmdescription = v;
  }
  return p;
}

/** A profile JSON document, checked field by field (a typo must not silently judge nothing). */
export function parseProfile(json: string, what = 'profile'): DestinationProfile {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new UsageError(`${what}: not JSON: ${(e as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new UsageError(`${what}: ${why}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.format !== PROFILE_FORMAT) bad(`"format" is not "${PROFILE_FORMAT}"`);
  if (o.version !== PROFILE_VERSION) bad(`"version" is not ${PROFILE_VERSION}`);
  const known = new Set([
    'format',
    'version',
    'takenFrom',
    'qemuVersion',
    'machineType',
    'uuid',
    'targetPageBits',
    'sendConfiguration',
    'sectionFooters',
    'ramBlocks',
    'devices',
    'vmdescription',
  ]);
  for (const k of Object.keys(o)) if (!known.has(k)) bad(`unknown key ${JSON.stringify(k)}`);
  const str = (k: string): string | undefined => {
    const x = o[k];
    if (x === undefined) return undefined;
    if (typeof x !== 'string') return bad(`"${k}" is not a string`);
    return x;
  };
  const int = (x: unknown, where: string): number => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      return bad(`${where} is not a non-negative integer`);
    return x;
  };
  const p: DestinationProfile = { format: PROFILE_FORMAT, version: PROFILE_VERSION };
  p.takenFrom = str('takenFrom');
  p.qemuVersion = str('qemuVersion');
  if (p.qemuVersion !== undefined && !isReleaseText(p.qemuVersion)) bad('"qemuVersion" is not X.Y');
  p.machineType = str('machineType');
  p.uuid = str('uuid');
  if (p.uuid !== undefined && !isUuidText(p.uuid)) bad('"uuid" is not a UUID (8-4-4-4-12 hex)');
  if (o.targetPageBits !== undefined) p.targetPageBits = int(o.targetPageBits, '"targetPageBits"');
  for (const k of ['sendConfiguration', 'sectionFooters'] as const) {
    const x = o[k];
    if (x !== undefined && typeof x !== 'boolean') bad(`"${k}" is not true or false`);
    if (typeof x === 'boolean') p[k] = x;
  }
  if (o.ramBlocks !== undefined) {
    if (!Array.isArray(o.ramBlocks)) bad('"ramBlocks" is not a list');
    p.ramBlocks = (o.ramBlocks as unknown[]).map((b, i) => {
      const r = b as Record<string, unknown> | null;
      if (typeof r?.name !== 'string') return bad(`ramBlocks[${i}].name is not a string`);
      return { name: r.name, usedLength: int(r.usedLength, `ramBlocks[${i}].usedLength`) };
    });
  }
  if (o.devices !== undefined) {
    if (!Array.isArray(o.devices)) bad('"devices" is not a list');
    p.devices = (o.devices as unknown[]).map((d, i) => {
      const r = d as Record<string, unknown> | null;
      if (typeof r?.idstr !== 'string') return bad(`devices[${i}].idstr is not a string`);
      return {
        idstr: r.idstr,
        instanceId: int(r.instanceId, `devices[${i}].instanceId`),
        versionId: int(r.versionId, `devices[${i}].versionId`),
      };
    });
  }
  if (o.vmdescription !== undefined) {
    try {
      checkVmDescription(o.vmdescription);
    } catch (e) {
      bad(`"vmdescription": ${(e as Error).message}`);
    }
    p.vmdescription = o.vmdescription as VmDescription;
  }
  return p;
}
