/** A QEMU release as options and profiles write it: "X.Y". */
export function isReleaseText(v: string): boolean {
  return /^\d+\.\d+$/.test(v);
}

/** Releases already split into their two numbers: the loader asks for every zero page. */
const releaseNumbers = new Map<string, readonly [number, number]>();

/** QEMU release comparisons ("X.Y"): which behaviour a version has. */
export function versionAtLeast(v: string, major: number, minor: number): boolean {
  let n = releaseNumbers.get(v);
  if (!n) {
    const [a = 0, b = 0] = v.split('.').map(Number);
    n = [a, b];
    if (releaseNumbers.size < 64) releaseNumbers.set(v, n);
  }
  return n[0] > major || (n[0] === major && n[1] >= minor);
}
