/**
 * Device state as a person edits it: a decoded VMState payload (VmstateNode) turned into
 * values keyed by field name, and back. Integers become numbers (or decimal strings past
 * 2^53), bool becomes true/false, anything else keeps its bytes as a hex string; arrays are
 * lists, structs nested objects, subsections live under "$subsections". The vmsd (the
 * device's vmdescription entry) gives every type and size, so the way back is exact.
 */
import type { VmstateElement, VmstateField, VmstateNode } from '../model/vmstate-nodes.js';
import type { FieldDescription, VmsdDescription } from '../vmstate/vmdesc.js';
import type { StateObject, StateValue } from './model.js';

export const SUBSECTIONS_KEY = '$subsections';

/** VMStateInfo names whose bytes are a two's-complement or unsigned integer (big-endian unless " le"). */
const SIGNED_TYPES = new Set(['int8', 'int16', 'int32', 'int32 equal', 'int32 le', 'int64', 'int64 equal']);
const UNSIGNED_TYPES = new Set([
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'uint8 equal',
  'uint16 equal',
  'uint32 equal',
  'uint64 equal',
]);

export class StateShapeError extends Error {}

function isInteger(type: string, size: number): boolean {
  return (SIGNED_TYPES.has(type) || UNSIGNED_TYPES.has(type)) && size >= 1 && size <= 8;
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

function leafValue(type: string, data: Uint8Array): StateValue {
  if (type === 'bool' && data.length === 1 && (data[0] === 0 || data[0] === 1)) return data[0] === 1;
  if (isInteger(type, data.length)) {
    const le = type.endsWith(' le');
    let u = 0n;
    for (let i = 0; i < data.length; i++) u = (u << 8n) | BigInt(data[le ? data.length - 1 - i : i] ?? 0);
    let v = u;
    if (SIGNED_TYPES.has(type) && u >> BigInt(data.length * 8 - 1)) v = u - (1n << BigInt(data.length * 8));
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  return toHex(data);
}

function leafBytes(type: string, size: number, v: StateValue, where: string): Uint8Array {
  if (typeof v === 'boolean') {
    if (size !== 1) throw new StateShapeError(`${where}: a boolean for a ${size}-byte field`);
    return Uint8Array.of(v ? 1 : 0);
  }
  if (typeof v === 'number' || (typeof v === 'string' && isInteger(type, size) && /^-?\d+$/.test(v))) {
    if (!isInteger(type, size)) throw new StateShapeError(`${where}: a number for a field of type ${type}`);
    let x = BigInt(v);
    const bits = BigInt(size * 8);
    const signed = SIGNED_TYPES.has(type);
    const lo = signed ? -(1n << (bits - 1n)) : 0n;
    const hi = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
    if (x < lo || x > hi) throw new StateShapeError(`${where}: ${v} does not fit ${type} (${size} bytes)`);
    if (x < 0n) x += 1n << bits;
    const out = new Uint8Array(size);
    for (let i = size - 1; i >= 0; i--) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return type.endsWith(' le') ? out.reverse() : out;
  }
  if (typeof v === 'string' && /^([0-9a-f]{2})*$/i.test(v)) {
    const b = Uint8Array.from(Buffer.from(v, 'hex'));
    if (b.length !== size) throw new StateShapeError(`${where}: ${b.length} bytes of hex for a ${size}-byte field`);
    return b;
  }
  throw new StateShapeError(`${where}: ${JSON.stringify(v)} is not a value of type ${type}`);
}

function elementValue(f: VmstateField, e: VmstateElement): StateValue {
  if (e.kind === 'struct') return stateFromNode(e.node);
  if (e.kind === 'capability') return e.name;
  return leafValue(f.type, e.data);
}

/**
 * The keys of a field list: its names, where a name's second and later entries (QEMU
 * describes an array split at NULL pointers, or struct arrays before 10.0, as several
 * entries of one name) are "name#2", "name#3", ...
 */
export function fieldKeys(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}#${k}`;
  });
}

/** The values of a decoded payload. Throws StateShapeError when they cannot be keyed (the payload is then kept as bytes). */
export function stateFromNode(node: VmstateNode): StateObject {
  const out: StateObject = {};
  const keys = fieldKeys(node.fields.map((f) => f.name));
  node.fields.forEach((f, i) => {
    const key = keys[i] ?? f.name;
    if (Object.hasOwn(out, key) || key === SUBSECTIONS_KEY)
      throw new StateShapeError(`field key ${JSON.stringify(key)} repeats`);
    const vals = f.elements.map((e) => elementValue(f, e));
    if (f.arrayLen === undefined && vals.length !== 1)
      throw new StateShapeError(`field ${f.name}: ${vals.length} elements without array_len`);
    out[key] = f.arrayLen === undefined ? (vals[0] as StateValue) : vals;
  });
  if (node.subsections.length) {
    const subs: StateObject = {};
    for (const s of node.subsections) {
      if (Object.hasOwn(subs, s.name)) throw new StateShapeError(`subsection ${s.name} repeats`);
      subs[s.name] = stateFromNode(s.node);
    }
    out[SUBSECTIONS_KEY] = subs;
  }
  return out;
}

function isObject(v: StateValue | undefined): v is StateObject {
  return typeof v === 'object' && !Array.isArray(v);
}

function fieldFromState(f: FieldDescription, v: StateValue | undefined, where: string): VmstateField {
  if (v === undefined) throw new StateShapeError(`${where}: no value for field ${f.name}`);
  const list = f.array_len === undefined ? [v] : v;
  if (!Array.isArray(list))
    throw new StateShapeError(`${where}: field ${f.name} is an array (array_len ${f.array_len})`);
  const elements: VmstateElement[] = list.map((x, i) => {
    const at = `${where}.${f.name}${f.array_len === undefined ? '' : `[${i}]`}`;
    if (f.type === 'struct' && f.struct && !(f.struct.fields === undefined && f.size === 1)) {
      if (!isObject(x)) throw new StateShapeError(`${at}: a struct needs an object`);
      return { kind: 'struct', node: nodeFromState(f.struct, x, at) };
    }
    if (f.type === 'capability') {
      if (typeof x !== 'string') throw new StateShapeError(`${at}: a capability needs its name`);
      return { kind: 'capability', name: x };
    }
    return { kind: 'bytes', data: leafBytes(f.type, f.size, x, at) };
  });
  const out: VmstateField = { name: f.name, type: f.type, size: f.size, elements };
  if (f.array_len !== undefined) out.arrayLen = f.array_len;
  if (f.index !== undefined) out.index = f.index;
  return out;
}

/** The payload tree of `state` laid out by `vmsd`: the inverse of stateFromNode. */
export function nodeFromState(vmsd: VmsdDescription, state: StateObject, where = 'state'): VmstateNode {
  const list = vmsd.fields ?? [];
  const keys = fieldKeys(list.map((f) => f.name));
  const known = new Set(keys);
  for (const k of Object.keys(state))
    if (k !== SUBSECTIONS_KEY && !known.has(k))
      throw new StateShapeError(`${where}: ${JSON.stringify(k)} is not a field of ${vmsd.vmsd_name ?? 'this vmsd'}`);
  const fields = list.map((f, i) => fieldFromState(f, state[keys[i] ?? f.name], where));
  const subsState = state[SUBSECTIONS_KEY];
  const subsections = (vmsd.subsections ?? []).map((s) => {
    const name = s.vmsd_name ?? '';
    const v = isObject(subsState) ? subsState[name] : undefined;
    if (!isObject(v)) throw new StateShapeError(`${where}: no values for subsection ${name}`);
    return { name, version: s.version ?? 0, node: nodeFromState(s, v, `${where}.${name}`) };
  });
  return { fields, subsections };
}
