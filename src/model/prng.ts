/** xorshift32 (Marsaglia): deterministic and seedable, so generated streams and fuzz runs repeat. */
export class Prng {
  private x: number;
  /** a zero seed would stay zero: `zeroSeed` replaces it */
  constructor(seed: number, zeroSeed = 0x2545f491) {
    this.x = seed >>> 0 || zeroSeed;
  }
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T {
    const x = xs[this.below(xs.length)];
    if (x === undefined) throw new RangeError('Prng.pick of an empty list');
    return x;
  }
}
