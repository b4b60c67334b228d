/**
 * Which SaveStateEntry handler a section is for, chosen by idstr as QEMU's destination finds
 * it (find_se): the RAM handler, a VFIO device, a builtin iterative section with its own
 * grammar (grammar/sections.ts), the block-migration handler, or else a VMState-described
 * device. One table for every reader of a section (decoder, loader, analyze formatter).
 */
import { RAM_SECTION_IDSTR, RAM_SECTION_VERSION } from './ram.js';
import { BUILTIN_SECTIONS } from './sections.js';
import { isVfioIdstr, VFIO_SECTION_VERSION } from './vfio.js';

export type SectionHandlerKind = 'ram' | 'vfio' | 'builtin' | 'block' | 'vmstate';

export interface SectionHandler {
  readonly kind: SectionHandlerKind;
  /** registered with register_savevm_live: the only handlers that send START/PART/END */
  readonly iterative: boolean;
  /** the highest section version a current destination loads, where the handler fixes one */
  readonly loadsUpTo?: number;
  /** analyze-migration.py reads the section but prints it as an empty string */
  readonly analyzeEmpty?: boolean;
}

const RAM: SectionHandler = { kind: 'ram', iterative: true, loadsUpTo: RAM_SECTION_VERSION };
const VFIO: SectionHandler = { kind: 'vfio', iterative: true, loadsUpTo: VFIO_SECTION_VERSION };
const BLOCK: SectionHandler = { kind: 'block', iterative: true };
const VMSTATE: SectionHandler = { kind: 'vmstate', iterative: false };
/** sections analyze-migration.py reads but prints as an empty string */
const ANALYZE_EMPTY = new Set(['spapr/htab', 's390-storage_attributes']);
const BUILTIN = new Map<string, SectionHandler>(
  BUILTIN_SECTIONS.map((g) => [
    g.idstr,
    { kind: 'builtin', iterative: true, analyzeEmpty: ANALYZE_EMPTY.has(g.idstr) },
  ]),
);

export function sectionHandler(idstr: string): SectionHandler {
  if (idstr === RAM_SECTION_IDSTR) return RAM;
  if (isVfioIdstr(idstr)) return VFIO;
  if (idstr === 'block') return BLOCK;
  return BUILTIN.get(idstr) ?? VMSTATE;
}
