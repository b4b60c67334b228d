import { sameBytes } from '../io/bytes.js';
import type { VmstateNode } from '../model/vmstate-nodes.js';
import type { VmsdDescription } from './vmdesc.js';

/** Payloads kept per description: the first one read (a fuzzer's seed's), and the last few others. */
const PER_DESCRIPTION = 4;

/**
 * Device payloads already read by their description, and what they read as. A payload's tree
 * depends on its bytes and its description only, so a reader given the same two again can
 * take the tree it made before. The fuzzer reads thousands of mutants of one seed whose device
 * sections are mostly the seed's own; reading their fields again was half of each run.
 * The trees handed out are shared: nothing that reads records changes them.
 */
export class VmstateCache {
  private readonly byDescription = new WeakMap<VmsdDescription, { bytes: Uint8Array; node: VmstateNode }[]>();

  get(desc: VmsdDescription, bytes: Uint8Array): VmstateNode | undefined {
    const kept = this.byDescription.get(desc);
    if (!kept) return undefined;
    return kept.find((k) => sameBytes(k.bytes, bytes))?.node;
  }

  /** Keep a payload (bytes the caller will not change) and its tree; the first one kept stays, the others make room for the newest. */
  set(desc: VmsdDescription, bytes: Uint8Array, node: VmstateNode): void {
    const kept = this.byDescription.get(desc);
    if (!kept) {
      this.byDescription.set(desc, [{ bytes, node }]);
      return;
    }
    if (kept.length >= PER_DESCRIPTION) kept.pop();
    kept.splice(1, 0, { bytes, node });
  }
}
