import { SectionType } from '../../grammar/savevm.js';
import { hex } from '../model/errors.js';
import type { StreamReader } from '../io/reader.js';
import type { StreamWriter } from '../io/sink.js';
import { SubsectionHeader } from '../../grammar/configuration.js';
import { writeLayout } from '../layout/write.js';
import {
  packedVmstateField,
  type VmstateElement,
  type VmstateField,
  type VmstateNode,
  type VmstateSubsection,
} from '../model/vmstate-nodes.js';
import type { FieldDescription, VmsdDescription } from './vmdesc.js';

/** Largest single field we read into memory; bigger ones come from a lying vmdescription. */
const MAX_FIELD_BYTES = 1 << 26;
/** A vmdescription can ask for any number of (even empty) elements, nested any deep: bound both. */
const MAX_ELEMENTS = 1 << 24;
const MAX_DEPTH = 64;

interface Budget {
  elements: number;
  depth: number;
}

/**
 * Reads one VMState payload (fields, then subsections) as its vmdescription entry
 * describes it, the way analyze-migration.py walks it: every element is `size` bytes,
 * except structs (walked recursively) and capabilities (length-prefixed).
 */
export function readVmstate(
  r: StreamReader,
  desc: VmsdDescription,
  budget: Budget = { elements: 0, depth: 0 },
): VmstateNode {
  if (++budget.depth > MAX_DEPTH)
    throw r.error('limit', `structs nested at most ${MAX_DEPTH} deep`, 'a deeper vmdescription');
  const fields: VmstateField[] = [];
  const list = desc.fields ?? [];
  const runs = leadingRunCounts(list);
  for (let i = 0; i < list.length; i++) fields.push(readField(r, list[i]!, budget, runs[i]));
  const subsections: VmstateSubsection[] = [];
  for (const sub of desc.subsections ?? []) {
    const at = r.offset;
    const marker = r.u8('subsection marker');
    if (marker !== SectionType.QEMU_VM_SUBSECTION) {
      throw r.error(
        'bad-vmstate',
        `QEMU_VM_SUBSECTION (0x05) for ${JSON.stringify(sub.vmsd_name)}`,
        `byte ${hex(marker)}`,
        at,
      );
    }
    const name = r.counted('subsection name');
    if (name !== sub.vmsd_name) {
      throw r.error('bad-vmstate', `subsection ${JSON.stringify(sub.vmsd_name)}`, JSON.stringify(name), at + 1);
    }
    const version = r.be32('subsection version');
    r.path.push(`subsection ${name}`);
    const node = readVmstate(r, sub, budget);
    r.path.pop();
    subsections.push({ name, version, node });
  }
  budget.depth--;
  return { fields, subsections };
}

/** leadingRunCount of each field of a list, worked out once per description (a fuzzer reads the same one thousands of times). */
const runCountsOf = new WeakMap<readonly FieldDescription[], (number | undefined)[]>();
function leadingRunCounts(list: readonly FieldDescription[]): (number | undefined)[] {
  let runs = runCountsOf.get(list);
  if (!runs) {
    runs = list.map((_, i) => leadingRunCount(list, i));
    runCountsOf.set(list, runs);
  }
  return runs;
}

/**
 * QEMU 10.0+ splits arrays of pointers at NULL/non-NULL boundaries, but never measures a
 * leading non-NULL run: its entry carries the whole array's length (corrections #16). When
 * later entries of the same name describe the rest, the leading run is what they leave.
 */
function leadingRunCount(list: readonly FieldDescription[], i: number): number | undefined {
  const f = list[i];
  if (f?.array_len === undefined || f.type === 'nullptr') return undefined;
  if (list.slice(0, i).some((g) => g.name === f.name)) return undefined;
  const later = list.slice(i + 1).filter((g) => g.name === f.name);
  if (!later.some((g) => g.type === 'nullptr')) return undefined;
  const rest = later.reduce((n, g) => n + (g.array_len ?? 1), 0);
  return f.array_len > rest ? f.array_len - rest : undefined;
}

function readField(r: StreamReader, f: FieldDescription, budget: Budget, countOverride?: number): VmstateField {
  const count = countOverride ?? f.array_len ?? 1;
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(f.size) || f.size < 0) {
    throw r.error(
      'bad-vmdesc',
      `a sane array_len/size for field ${f.name}`,
      `array_len ${f.array_len}, size ${f.size}`,
    );
  }
  r.path.push(`field ${f.name}`);
  const elements: VmstateElement[] = [];
  budget.elements += count;
  if (budget.elements > MAX_ELEMENTS)
    throw r.error('limit', `at most ${MAX_ELEMENTS} elements in a section`, `array_len ${count} for field ${f.name}`);
  if (count > 1 && isPlainBytes(f) && count * f.size <= r.capacity && r.fill(count * f.size)) {
    // an array of plain elements: one copy for the array, a view for each element (the
    // same bytes and offsets as reading them one by one, which the other branch does, so a
    // truncated array still fails at the element it ends in)
    const all = r.copyBytes(count * f.size, `field ${f.name}`);
    r.path.pop();
    return packedVmstateField(
      { name: f.name, type: f.type, size: f.size, arrayLen: f.array_len, index: f.index },
      all,
      count,
    );
  }
  for (let i = 0; i < count; i++) elements.push(readElement(r, f, budget));
  r.path.pop();
  const out: VmstateField = { name: f.name, type: f.type, size: f.size, elements };
  if (f.array_len !== undefined) out.arrayLen = f.array_len;
  if (f.index !== undefined) out.index = f.index;
  return out;
}

/** A field whose elements are `size` bytes each, read as they are (readElement's last case). */
function isPlainBytes(f: FieldDescription): boolean {
  return f.type !== 'struct' && f.type !== 'capability' && f.size <= MAX_FIELD_BYTES;
}

function readElement(r: StreamReader, f: FieldDescription, budget: Budget): VmstateElement {
  // before 10.0 a NULL element of a struct array is described as a struct without fields,
  // size 1: it is the one-byte NULL marker (corrections #19)
  if (f.type === 'struct' && f.struct && f.struct.fields === undefined && f.size === 1) {
    return { kind: 'bytes', data: r.copyBytes(1, `field ${f.name}`) };
  }
  if (f.type === 'struct' && f.struct) {
    return { kind: 'struct', node: readVmstate(r, f.struct, budget) };
  }
  if (f.type === 'capability') {
    return { kind: 'capability', name: r.counted('capability') };
  }
  if (f.size > MAX_FIELD_BYTES) {
    throw r.error('limit', `a field of at most ${MAX_FIELD_BYTES} bytes`, `size ${f.size} in the vmdescription`);
  }
  return { kind: 'bytes', data: r.copyBytes(f.size, `field ${f.name}`) };
}

// ---- encode ----

/** The mirror of readVmstate: fields, then subsections with their headers. */
export function writeVmstateNode(w: StreamWriter, node: VmstateNode): void {
  for (const f of node.fields) {
    for (const e of f.elements) {
      if (e.kind === 'bytes') w.bytes(e.data);
      else if (e.kind === 'struct') writeVmstateNode(w, e.node);
      else w.counted(e.name);
    }
  }
  for (const s of node.subsections) {
    writeLayout(w, SubsectionHeader, { marker: SectionType.QEMU_VM_SUBSECTION, name: s.name, version: s.version });
    writeVmstateNode(w, s.node);
  }
}
