/** A QEMU release as options and profiles write it: "X.Y". */
export function isReleaseText(v: string): boolean {
  return /^\d+\.\d+$/.test(v);
}

/** QEMU release comparisons ("X.Y"): which behaviour a version has. */
export function versionAtLeast(v: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = v.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}
