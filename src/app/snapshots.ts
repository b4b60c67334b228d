/** `migstream snapshots IMAGE`: a qcow2 image's internal snapshots, as `qemu-img snapshot -l` lists them. */
import { Qcow2Image, type Qcow2Snapshot } from '../qcow2/image.js';
import { StreamError, UsageError } from '../model/errors.js';
import { ioErrorWords } from '../io/io-words.js';

export interface SnapshotList {
  image: string;
  version: number;
  clusterSize: number;
  diskSize: number;
  snapshots: Qcow2Snapshot[];
}

/** The snapshot table of a qcow2 image (UsageError when it cannot be opened, StreamError when it is not a sound qcow2 image). */
export function listSnapshots(image: string): SnapshotList {
  let img: Qcow2Image;
  try {
    img = new Qcow2Image(image);
  } catch (e) {
    if (e instanceof StreamError) throw e;
    if ((e as NodeJS.ErrnoException).code)
      throw new UsageError(`cannot open ${image}: ${ioErrorWords(e as NodeJS.ErrnoException)}`);
    throw e;
  }
  img.close();
  return {
    image,
    version: img.version,
    clusterSize: 2 ** img.clusterBits,
    diskSize: img.diskSize,
    snapshots: img.snapshots,
  };
}
