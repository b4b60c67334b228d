/**
 * The Node options a worker thread of ours is started with: the process's own, but for
 * --input-type (a program given with -e), which makes a worker refuse its file.
 */
export function workerExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--input-type'));
}
