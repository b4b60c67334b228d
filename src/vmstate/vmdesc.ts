import { sameBytes } from '../io/bytes.js';
import { latin1 } from '../io/reader.js';

/**
 * The vmdescription JSON QEMU appends after QEMU_VM_EOF (savevm-main-channel.md §5.5),
 * typed. QEMU's writer is loose about nested infos (tmp, qtailq, gtree put their own keys
 * into the field object), so everything beyond the documented keys is optional.
 */
export interface VmsdDescription {
  vmsd_name?: string;
  version?: number;
  fields?: FieldDescription[];
  subsections?: VmsdDescription[];
}

/** A field of a device as the vmdescription describes it: name, type, size, array length. */
export interface FieldDescription {
  name: string;
  array_len?: number;
  index?: number;
  type: string;
  struct?: VmsdDescription;
  size: number;
  /** nested infos (tmp, vstruct, qtailq, ...) may inline their own vmsd keys */
  vmsd_name?: string;
  fields?: FieldDescription[];
}

/** A device section in the vmdescription: its idstr, instance id and section id, with its fields. */
export interface DeviceDescription extends VmsdDescription {
  name: string;
  instance_id: number;
  /** old-style (save_state) sections: total payload bytes */
  size?: number;
}

/** The JSON vmdescription QEMU writes after QEMU_VM_EOF: every device section's fields and subsections. */
export interface VmDescription {
  configuration?: VmsdDescription;
  page_size?: number;
  devices: DeviceDescription[];
}

/** A parsed vmdescription must at least be an object with a "devices" list. */
export function checkVmDescription(v: unknown): asserts v is VmDescription {
  if (typeof v !== 'object' || v === null || !Array.isArray((v as VmDescription).devices)) {
    throw new Error('vmdescription JSON has no "devices" list');
  }
}

/** A vmdescription's text is kept with its bytes when it is at most this long. */
const KEEP_TEXT_BYTES = 1 << 20;
let lastText: { bytes: Uint8Array; text: string } | undefined;

/**
 * A vmdescription's bytes as text (latin1, one character a byte, so it re-encodes exactly):
 * the same string as last time when the bytes are the same. The fuzzer's mutants mostly end
 * in their seed's 100 KB description; a new string for each was a third of the memory its
 * runs left for the collector, and the same string makes parseVmDescription's lookup an
 * identity check.
 */
export function vmdescriptionText(bytes: Uint8Array): string {
  const kept = lastText;
  if (kept && sameBytes(bytes, kept.bytes)) return kept.text;
  const text = latin1(bytes);
  if (bytes.length <= KEEP_TEXT_BYTES) lastText = { bytes: Buffer.from(bytes), text };
  return text;
}

/**
 * The last two descriptions parsed, kept for the next stream that carries the same text: a
 * fuzzer reads thousands of mutants of one seed, and parsing a vmdescription was a fifth of
 * each. Two: a mutant with a changed description (read three times over: located, decoded,
 * loaded) must not push out its seed's. Frozen, so that no reader can change what the next
 * one gets.
 */
const recentlyParsed: { json: string; desc: VmDescription | Error }[] = [];
const KEEP_PARSED = 2;

/** Parse a vmdescription's JSON; throws (the same Error again for the same text) when it is not one. */
export function parseVmDescription(json: string): VmDescription {
  const i = recentlyParsed.findIndex((p) => p.json === json);
  const hit = i >= 0 ? recentlyParsed.splice(i, 1)[0]! : { json, desc: parseFresh(json) };
  recentlyParsed.unshift(hit);
  if (recentlyParsed.length > KEEP_PARSED) recentlyParsed.pop();
  if (hit.desc instanceof Error) throw hit.desc;
  return hit.desc;
}

function parseFresh(json: string): VmDescription | Error {
  try {
    const v = JSON.parse(json) as unknown;
    checkVmDescription(v);
    return deepFreeze(v);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Device descriptions by (idstr, instance id), in stream order for repeated keys. */
export class DeviceIndex {
  private map = new Map<string, DeviceDescription[]>();
  private used = new Map<string, number>();

  constructor(readonly desc: VmDescription) {
    for (const d of desc.devices) {
      const k = key(d.name, d.instance_id);
      const list = this.map.get(k);
      if (list) list.push(d);
      else this.map.set(k, [d]);
    }
  }

  peek(idstr: string, instanceId: number): DeviceDescription | undefined {
    const k = key(idstr, instanceId);
    const list = this.map.get(k);
    if (!list) return undefined;
    return list[Math.min(this.used.get(k) ?? 0, list.length - 1)];
  }

  /** How many descriptions of each key were taken so far (a decoder checkpoint keeps it). */
  taken(): ReadonlyMap<string, number> {
    return new Map(this.used);
  }

  /** Go back to what `taken()` said. */
  restoreTaken(used: ReadonlyMap<string, number>): void {
    this.used = new Map(used);
  }

  take(idstr: string, instanceId: number): DeviceDescription | undefined {
    const d = this.peek(idstr, instanceId);
    const k = key(idstr, instanceId);
    if (d) this.used.set(k, (this.used.get(k) ?? 0) + 1);
    return d;
  }
}

function key(name: string, instance: number): string {
  return `${name}\u0000${instance}`;
}
