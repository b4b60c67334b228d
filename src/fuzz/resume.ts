/**
 * A seed judged once, with checkpoints kept along the way, so that a mutant is judged from the
 * last checkpoint before the first byte it changes: up to there its bytes are the seed's, and
 * so are the decoder's and the loader's states. A fuzzer's mutant differs from its seed in a
 * few bytes somewhere; reading it from the start spent most of each run on bytes already read.
 *
 * The device sections before a checkpoint were read with the seed's vmdescription, found from
 * the stream's end: a mutant resumes from those checkpoints only when it ends in the same
 * vmdescription bytes. One that has none (a truncation, a broken length) resumes from a second
 * set, taken on the seed read without a vmdescription, made the first time it is needed; one
 * with a different vmdescription is read from the start.
 */
import { MainChannelDecoder, type DecoderCheckpoint } from '../codec/decode.js';
import { openMainStream, ownVmdescription } from '../codec/open.js';
import { firstDifference } from '../io/bytes.js';
import { StreamReader } from '../io/reader.js';
import { BufferSource } from '../io/source.js';
import { ReferenceLoader, type LoadOptions } from '../loader/load.js';
import { conclude, judgeRecords, validateMain, type ValidationResult } from '../loader/validate.js';
import type { MainRecord } from '../model/records.js';
import type { VmDescription } from '../vmstate/vmdesc.js';
import { VmstateCache } from '../vmstate/cache.js';

/** Inside a RAM section, a checkpoint is kept after this many records, or this many bytes, past the last one. */
const RECORDS_BETWEEN = 64;
const BYTES_BETWEEN = 64 << 10;
/** At most about this many checkpoints along a seed: each holds a copy of the loader's state. */
const MAX_CHECKPOINTS = 4096;

/** The part of a verdict the fuzzer looks at (a resumed run has no decode warnings from before its checkpoint). */
export type Verdict = Pick<ValidationResult, 'valid' | 'diagnostics'>;

interface Checkpoint {
  decoder: DecoderCheckpoint;
  /** the loader after the records before `decoder.offset`; forked for each run, never fed */
  loader: ReferenceLoader;
}

/** Checkpoints along the seed read with one vmdescription (or none), in stream order. */
class CheckpointedRun {
  readonly checkpoints: Checkpoint[] = [];
  /** the seed's device payloads and their trees: a mutant's are mostly the same bytes */
  private readonly vmstateCache = new VmstateCache();

  constructor(
    seed: Uint8Array,
    readonly vmdesc: VmDescription | undefined,
    private readonly load: LoadOptions,
  ) {
    const s = openMainStream(new BufferSource(seed), {
      vmdesc,
      noLocate: true,
      capabilities: load.capabilities,
      vmstateCache: this.vmstateCache,
    });
    const loader = new ReferenceLoader(load);
    let records = 0;
    let lastOffset = 0;
    // a large seed's checkpoints are spread out: their number stays bounded
    const minSpacing = seed.length / MAX_CHECKPOINTS;
    const take = (rec: MainRecord): void => {
      loader.add(rec);
      records++;
      // every place between sections; inside a RAM section's pages, one in so many
      const place = s.decoder.checkpointPlace;
      const since = s.reader.offset - lastOffset;
      if (!place || since < minSpacing || (place === 'ram' && records < RECORDS_BETWEEN && since < BYTES_BETWEEN))
        return;
      const cp = s.decoder.checkpoint()!;
      this.checkpoints.push({ decoder: cp, loader: loader.fork() });
      records = 0;
      lastOffset = cp.offset;
    };
    judgeRecords(loader, () => s.decoder.eachRecord(take));
  }

  /** The last checkpoint whose records depend only on bytes before `offset` (decidedBy never decreases along the stream). */
  before(offset: number): Checkpoint | undefined {
    let lo = 0;
    let hi = this.checkpoints.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.checkpoints[mid]!.decoder.decidedBy <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? this.checkpoints[lo - 1] : undefined;
  }

  /** Judge `bytes` (equal to the seed before `cp.decoder.offset`) from the checkpoint on. */
  judgeFrom(bytes: Uint8Array, name: string, cp: Checkpoint): Verdict {
    const reader =
      StreamReader.inMemory(bytes, name, cp.decoder.offset) ??
      new StreamReader(new BufferSource(bytes, name), undefined, cp.decoder.offset);
    const decoder = new MainChannelDecoder(reader, {
      vmdesc: this.vmdesc,
      capabilities: this.load.capabilities,
      vmstateCache: this.vmstateCache,
    });
    const loader = cp.loader.fork();
    judgeRecords(loader, (take) => decoder.eachRecord(take, cp.decoder));
    const { valid, diagnostics } = conclude(loader, this.load, {}, {}, []);
    return { valid, diagnostics };
  }
}

/** A fuzz seed and its checkpoints: mutants of it judged as validateMain judges them, from where they differ. */
export class ResumableSeed {
  /** the bytes from the EOF byte before the vmdescription to the end, when the seed has one of its own */
  private readonly vmdescTail: Uint8Array | undefined;
  private readonly withOwn: CheckpointedRun;
  private withNone: CheckpointedRun | undefined;
  /** mutants read from a checkpoint, and from the start (none before their first change, or another vmdescription) */
  readonly counts = { resumed: 0, fromStart: 0 };

  constructor(
    readonly bytes: Uint8Array,
    readonly name: string,
    private readonly load: LoadOptions,
  ) {
    const fixed = load.profile?.vmdescription;
    const own = fixed ? undefined : ownVmdescription(new BufferSource(bytes, name));
    this.vmdescTail = own ? bytes.subarray(Math.max(0, own.at.offset - 1)) : undefined;
    this.withOwn = new CheckpointedRun(bytes, fixed ?? own?.vmdesc, load);
    if (!fixed && !own?.vmdesc) this.withNone = this.withOwn;
  }

  /** How many places a mutant can be read from (the seed read with its own vmdescription). */
  get checkpointCount(): number {
    return this.withOwn.checkpoints.length;
  }

  /** The verdict validateMain gives `mutant`, read from the last checkpoint before its first change. */
  judge(mutant: Uint8Array): Verdict {
    const at = firstDifference(this.bytes, mutant);
    const run = this.runFor(mutant);
    const cp = run?.before(at < 0 ? mutant.length : at);
    if (!run || !cp) {
      this.counts.fromStart++;
      // with the vmdescription already known to be the run's, it is not looked for and parsed again
      const open = run ? { vmdesc: run.vmdesc, noLocate: true } : {};
      const { valid, diagnostics } = validateMain(new BufferSource(mutant, this.name), this.load, open);
      return { valid, diagnostics };
    }
    this.counts.resumed++;
    return run.judgeFrom(mutant, this.name, cp);
  }

  /** The checkpoints read with the vmdescription the mutant's decoder will use; none when it is another one. */
  private runFor(mutant: Uint8Array): CheckpointedRun | undefined {
    if (this.load.profile?.vmdescription) return this.withOwn;
    const tail = this.vmdescTail;
    // the same last bytes: the search from the end finds the same vmdescription at the same distance from it
    if (tail && mutant.length >= tail.length && firstDifference(tail, mutant.subarray(mutant.length - tail.length)) < 0)
      return this.withOwn;
    if (ownVmdescription(new BufferSource(mutant, this.name))?.vmdesc) return undefined;
    return (this.withNone ??= new CheckpointedRun(this.bytes, undefined, this.load));
  }
}
