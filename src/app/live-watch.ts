/**
 * What a live watcher (tap) is told about a main channel, record by record: sections as they
 * start and as they end (with the bytes they took), commands, the end of the device state,
 * VFIO tags, and the rounds of RAM's dirty-page walk with the pages each sent.
 *
 * A round is a pass of QEMU's walk over the dirty bitmap (migration/ram.c: find_dirty_block,
 * `complete_round`): within a pass pages go out in RAMBlock order and, inside a block, by
 * rising offset; the walk starts the next pass from the first block. So on the wire a round
 * ends where a page is not past the one before it. The first round is the bulk stage (every
 * page once); later ones carry the pages dirtied meanwhile. During postcopy the destination's
 * page requests jump the walk: rounds are counted up to MIG_CMD_POSTCOPY_RUN only.
 */
import type { MainRecord } from '../model/records.js';
import type { LiveNote } from './decode-protocol.js';

/** the section open now: where its header began */
interface OpenSection {
  offset: number;
  sectionId: number;
  idstr: string;
  section: string;
  packaged: boolean;
}

/** what most records (RAM pages above all) give: no note, and no array made for it */
const NONE: readonly LiveNote[] = Object.freeze([]);

export class MainChannelWatch {
  private open: OpenSection | undefined;
  /** each RAMBlock's place in the MEM_SIZE list: the walk's order */
  private readonly blocks = new Map<string, number>();
  private lastBlock = -1;
  private lastName: string | undefined;
  private lastAddr = -1;
  private round = 0;
  private roundPages = 0;
  private postcopy = false;

  /** The notes for one record (none for most). */
  notes(rec: MainRecord): readonly LiveNote[] {
    // made only for the records that are noted (not for every page)
    const packaged = () => (rec.depth ? { packaged: true as const } : {});
    switch (rec.kind) {
      case 'section': {
        const out = this.closeSection(rec.offset);
        this.open = {
          offset: rec.offset,
          sectionId: rec.sectionId,
          idstr: rec.idstr,
          section: rec.section,
          packaged: (rec.depth ?? 0) > 0,
        };
        out.push({
          note: 'section',
          offset: rec.offset,
          section: rec.section,
          sectionId: rec.sectionId,
          idstr: rec.idstr,
          ...packaged(),
        });
        return out;
      }
      case 'section_footer':
        return this.closeSection(rec.offset + rec.length);
      case 'ram_block':
        if (!this.blocks.has(rec.idstr)) this.blocks.set(rec.idstr, this.blocks.size);
        return NONE;
      case 'ram':
        // MEM_SIZE, EOS and MULTIFD_FLUSH name no block: they are not pages
        return 'block' in rec ? this.page(rec.block, rec.addr, rec.offset, rec.depth ?? 0) : NONE;
      case 'vfio_tag':
        return [
          {
            note: 'vfio-tag',
            offset: rec.offset,
            tag: rec.tag === null ? `0x${rec.value.toString(16)}` : `VFIO_MIG_FLAG_${rec.tag}`,
            idstr: this.open?.idstr ?? '',
            ...packaged(),
          },
        ];
      case 'command': {
        const out: LiveNote[] = [];
        if (rec.name === 'MIG_CMD_POSTCOPY_RUN' && !this.postcopy) {
          out.push(...this.closeRound(rec.offset));
          this.postcopy = true;
        }
        out.push({ note: 'command', offset: rec.offset, command: rec.name, ...packaged() });
        return out;
      }
      case 'eof': {
        // the device state of MIG_CMD_PACKAGED ends with its own QEMU_VM_EOF: the stream goes on
        const out = this.closeSection(rec.offset);
        if (!rec.depth) out.push(...this.closeRound(rec.offset));
        out.push({ note: 'eof', offset: rec.offset, ...packaged() });
        return out;
      }
      default:
        return NONE;
    }
  }

  /** A page record of any kind: counted in its round, or the first of the next one. */
  private page(block: string, addr: number, offset: number, depth: number): readonly LiveNote[] {
    if (this.postcopy || depth) return NONE;
    // pages come in runs of one block: its name is looked up when it changes
    let index = block === this.lastName ? this.lastBlock : this.blocks.get(block);
    if (index === undefined) this.blocks.set(block, (index = this.blocks.size));
    let out = NONE;
    const onward = index > this.lastBlock || (index === this.lastBlock && addr > this.lastAddr);
    if (!onward || this.round === 0) {
      out = this.closeRound(offset);
      this.round++;
    }
    this.roundPages++;
    this.lastBlock = index;
    this.lastName = block;
    this.lastAddr = addr;
    return out;
  }

  private closeRound(offset: number): readonly LiveNote[] {
    if (this.roundPages === 0) return NONE;
    const note: LiveNote = { note: 'ram-round', offset, round: this.round, pages: this.roundPages };
    this.roundPages = 0;
    return [note];
  }

  /** The open section ends at `end` (its footer's end, or where the next record begins when it has none). */
  private closeSection(end: number): LiveNote[] {
    const s = this.open;
    if (!s) return [];
    this.open = undefined;
    return [
      {
        note: 'section-end',
        offset: s.offset,
        section: s.section,
        sectionId: s.sectionId,
        idstr: s.idstr,
        bytes: end - s.offset,
        ...(s.packaged ? { packaged: true as const } : {}),
      },
    ];
  }
}
