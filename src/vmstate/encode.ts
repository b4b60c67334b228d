import { SectionType } from '../../grammar/savevm.js';
import type { StreamWriter } from '../io/sink.js';
import { SubsectionHeader } from '../../grammar/configuration.js';
import { writeLayout } from '../layout/write.js';
import type { VmstateNode } from '../model/vmstate-nodes.js';

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
