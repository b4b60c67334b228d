/**
 * How far a command has got through its inputs (or, for encode, its output), for a progress
 * display. The use cases open every input through `observed` (openSource does); the command
 * line turns the figures into a bar on a terminal. Nothing is counted while nobody listens.
 */
import type { ByteSource } from '../io/source.js';
import type { ByteSink } from '../io/sink.js';

export interface WorkProgress {
  /** bytes read (or written) so far, over every input of the command */
  done: number;
  /** what they add up to, when every input's size is known */
  total: number | undefined;
  /** the input (or output) last moved */
  label: string;
}

type Listener = (p: WorkProgress) => void;

interface Entry {
  label: string;
  done: number;
  total: number | undefined;
}

let listener: Listener | undefined;
let entries: Entry[] = [];

/** Set (or with undefined, clear) the one listener of this process; the counts start from zero. */
export function onWorkProgress(l: Listener | undefined): void {
  listener = l;
  entries = [];
}

function notify(e: Entry): void {
  if (!listener) return;
  let done = 0;
  let total: number | undefined = 0;
  for (const x of entries) {
    done += x.done;
    total = total === undefined || x.total === undefined ? undefined : total + x.total;
  }
  listener({ done, total, label: e.label });
}

/** `src`, its reads counted (up to its size: a few bytes are read twice). */
export function observed(src: ByteSource): ByteSource {
  if (!listener) return src;
  const e: Entry = { label: src.name, done: 0, total: src.size };
  entries.push(e);
  return {
    name: src.name,
    size: src.size,
    seekable: src.seekable,
    libvirtBodyInflated: src.libvirtBodyInflated,
    read(into, intoOffset, length, at) {
      const n = src.read(into, intoOffset, length, at);
      // bytes read, not the furthest offset: the vmdescription is looked for at the end first
      if (n > 0) {
        e.done = e.total === undefined ? e.done + n : Math.min(e.total, e.done + n);
        notify(e);
      }
      return n;
    },
    close() {
      // what was read is all that will be: a look at a file's first bytes counts as done
      e.total = e.done;
      src.close();
      notify(e);
    },
  };
}

/** `sink`, its writes counted against `expected` bytes (encode: the size of the stream the IR came from). */
export function observedSink(sink: ByteSink, label: string, expected: number | undefined): ByteSink {
  if (!listener) return sink;
  const e: Entry = { label, done: 0, total: expected };
  entries.push(e);
  return {
    write(chunk) {
      sink.write(chunk);
      e.done += chunk.length;
      notify(e);
    },
    close() {
      sink.close();
    },
  };
}
