/**
 * `tap --mutate SEED`: break records of a live migration on their way to the destination,
 * so that a destination can be tested in its real protocol state (its return path open, its
 * postcopy state set up, its multifd channels running). Each mutation changes one header field
 * to a value QEMU's loader refuses: on the main channel a section type outside
 * QEMU_VM_SECTION_*, a section id no START announced, a MIG_CMD outside the table; on a multifd
 * channel a RAM packet's magic ("multifd: received packet magic ..."). Which records are hit is
 * a pure function of the seed and each channel's bytes: every channel draws from its own
 * generator (the seed and the channel, mutatorSeed), since the channels' bytes arrive in no fixed
 * order; each section, command or packet header is a candidate, hit with probability 1/4 until
 * the channel's count is spent.
 */
import { Prng } from '../model/prng.js';
import { hex } from '../model/errors.js';
import type { LiveNote } from './decode-protocol.js';

/** One byte to change before the bytes are forwarded, and what it means. */
export interface InFlightMutation {
  offset: number;
  value: number;
  what: string;
}

/** A section type byte no QEMU_VM_SECTION_* has ("Unknown savevm section type"). */
const BAD_SECTION_TYPE = 0x7f;
/** The high byte of a be32 section id, making it one no START section announced. */
const BAD_SECTION_ID_HIGH = 0x7f;
/** The high byte of a be16 MIG_CMD, making it one outside the table ("MIG_CMD ... unknown"). */
const BAD_COMMAND_HIGH = 0x7f;
/** The high byte of a multifd packet's be32 magic (MULTIFD_MAGIC is 0x11223344). */
const BAD_MULTIFD_MAGIC_HIGH = 0x7f;

/** The generator seed of a channel: the main channel's is SEED itself, multifd channel id K's is mixed from SEED and K. */
export function mutatorSeed(seed: number, multifdChannel?: number): number {
  return multifdChannel === undefined ? seed : (seed ^ Math.imul(multifdChannel + 1, 0x9e3779b1)) >>> 0;
}

export class InFlightMutator {
  private readonly rng: Prng;
  private left: number;

  constructor(seed: number, count: number) {
    this.rng = new Prng(seed);
    this.left = count;
  }

  /** The mutation for this record, if it is one of those hit. */
  consider(n: LiveNote): InFlightMutation | undefined {
    if (this.left <= 0) return undefined;
    if (n.note === 'multifd-packet' || n.note === 'multifd-sync') {
      if (this.rng.below(4) !== 0) return undefined;
      this.left--;
      // [be32 magic][be32 version][be32 flags]...
      return {
        offset: n.offset,
        value: BAD_MULTIFD_MAGIC_HIGH,
        what: `multifd packet ${n.packetNum} @${hex(n.offset)}: magic -> 0x7f......`,
      };
    }
    if ((n.note !== 'section' && n.note !== 'command') || n.packaged) return undefined;
    if (this.rng.below(4) !== 0) return undefined;
    this.left--;
    if (n.note === 'command')
      // [QEMU_VM_COMMAND][be16 cmd][be16 len]...: the command's high byte
      return { offset: n.offset + 1, value: BAD_COMMAND_HIGH, what: `${n.command} @${hex(n.offset)}: cmd -> 0x7f..` };
    // [type][be32 section id]...: PART and END name a section by id; any section has a type
    if ((n.section === 'PART' || n.section === 'END') && this.rng.below(2) === 0)
      return {
        offset: n.offset + 1,
        value: BAD_SECTION_ID_HIGH,
        what: `section ${n.sectionId} "${n.idstr}" (${n.section}) @${hex(n.offset)}: section id -> 0x7f......`,
      };
    return {
      offset: n.offset,
      value: BAD_SECTION_TYPE,
      what: `section ${n.sectionId} "${n.idstr}" (${n.section}) @${hex(n.offset)}: section type -> 0x7f`,
    };
  }
}
