/**
 * The thread that empties a pipe for PipeSource: it reads the pipe as an event-driven socket
 * (so that it can be stopped at any time, which a blocking read cannot) and copies what
 * arrives into the shared ring, blocking while the ring is full: the pipe then fills, and its
 * writer waits, so memory stays bounded by the ring.
 */
import { Socket } from 'node:net';
import { workerData } from 'node:worker_threads';
import { RingWriter, type SharedRing } from './shared-ring.js';

export interface PipeReaderData {
  fd: number;
  ring: SharedRing;
}

const { fd, ring } = workerData as PipeReaderData;
const writer = new RingWriter(ring);
// whatever goes wrong here, the decoding thread must not wait for bytes that will never come
process.on('uncaughtException', () => writer.abort());

const input = new Socket({ fd, readable: true, writable: false });
input.on('data', (chunk: Buffer) => {
  writer.writeBlocking(chunk);
  // the decoder stopped reading (its close()): nothing more is wanted from the pipe
  if (writer.stopped) input.destroy();
});
input.on('end', () => writer.end());
input.on('error', () => writer.abort());
