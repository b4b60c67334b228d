/**
 * A main stream split into the phases of a precopy migration, by what its records say:
 * - setup: the header, configuration, commands and every iterable section's START;
 * - iteration N: the rounds of PART sections (a round ends when a section id it already holds
 *   comes again: with RAM alone, each PART is a round);
 * - completion: from MIG_CMD_SWITCHOVER_START (10.0+), or else the first END or FULL section,
 *   to the end: what the source sends while the guest is stopped (the downtime part), the
 *   vmdescription included.
 * Every byte of the stream belongs to exactly one phase, so the phases add up to its size.
 */
import { MIG_CMD_SWITCHOVER_START } from '../../grammar/savevm.js';
import type { MainRecord } from '../model/records.js';

/** Bytes and records of one phase of a migration: setup, a precopy iteration, or the part after SWITCHOVER_START. */
export interface PhaseStats {
  phase: string;
  bytes: number;
  records: number;
  /** RAM pages sent in the phase (normal, zero, XBZRLE, compressed, mapped-ram) */
  ramPages: number;
}

export class PhaseTracker {
  private readonly phases: PhaseStats[] = [{ phase: 'setup', bytes: 0, records: 0, ramPages: 0 }];
  private round = new Set<number>();
  private iteration = 0;
  private completing = false;
  private end = 0;

  add(rec: MainRecord): void {
    if (!this.completing) this.advance(rec);
    const p = this.phases[this.phases.length - 1];
    if (!p) return;
    // by position, not record length: bytes no record covers (mapped-ram page slots the
    // bitmap leaves out, read over) go to the phase they sit in
    const end = rec.offset + rec.length;
    p.bytes += Math.max(0, end - this.end);
    this.end = Math.max(this.end, end);
    p.records++;
    if (
      (rec.kind === 'ram' &&
        (rec.op === 'page' || rec.op === 'zero' || rec.op === 'xbzrle' || rec.op === 'compress_page')) ||
      (rec.kind === 'mapped_ram_page' && rec.present)
    )
      p.ramPages++;
  }

  /** The phases in order; `setup` always, then each iteration, then `completion` if reached. */
  result(): PhaseStats[] {
    return this.phases.map((p) => ({ ...p }));
  }

  private advance(rec: MainRecord): void {
    const switchover = rec.kind === 'command' && rec.cmd === MIG_CMD_SWITCHOVER_START;
    const final = rec.kind === 'section' && (rec.section === 'END' || rec.section === 'FULL');
    if (switchover || final) {
      this.completing = true;
      this.phases.push({ phase: 'completion', bytes: 0, records: 0, ramPages: 0 });
      return;
    }
    if (rec.kind !== 'section' || rec.section !== 'PART') return;
    if (this.iteration === 0 || this.round.has(rec.sectionId)) {
      this.iteration++;
      this.round = new Set();
      this.phases.push({ phase: `iteration ${this.iteration}`, bytes: 0, records: 0, ramPages: 0 });
    }
    this.round.add(rec.sectionId);
  }
}
