/**
 * The tap's forwarding path without a copy: a connection's bytes are read from the source
 * socket straight into a shared ring, written on to the destination (and the save file) from
 * there, and read there by the decoder worker. On this thread a byte costs one read and one
 * write, as in a relay that decodes nothing; copying each chunk into the decoder's ring cost
 * more than the relay itself (measured: 0.4 s of CPU per GiB on this machine, the relay's own
 * JavaScript 0.2 s).
 *
 * A byte's place in the ring is reused once the destination and the save file have taken it
 * and the decoder has read it. The source is paused while the destination or the save file
 * is behind by nearly the whole ring (their back-pressure reaches the source); the decoder
 * never holds the relay: when it alone is that far behind it is dropped (`lagged`).
 *
 * Node reads a socket into a buffer of the caller's only when the socket is made with
 * `onread`, which a server's accepted sockets are not: `adopt` moves the accepted socket's
 * handle to a socket made with it (Node's `handle` option, which its own modules use to
 * hand sockets over). Where that is not possible the caller relays as before (`undefined`).
 */
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Writable } from 'node:stream';
import { createSharedRing, RingWriter, type SharedRing } from '../io/shared-ring.js';
import type { RingInput } from './decode.js';

/** the most one read takes: libuv reads as much as the socket holds, up to this */
const READ_BYTES = 1 << 20;
/** the source is paused (or a lagging decoder dropped) once less than this is free */
const LOW_SPACE = 256 << 10;

/** The parts of an accepted socket that `adopt` moves; Node's, not public. */
interface AcceptedSocket {
  _handle: object | null;
}

/** A socket made over a handle another one had (`handle`, `pauseOnCreate`: Node's own options, not in its types), reading into our buffer. */
interface AdoptingOptions extends SocketConstructorOpts {
  handle: object;
  pauseOnCreate: boolean;
  onread: OnReadOpts;
}

export interface ForwardRingEvents {
  /** bytes read from the source (a view of the ring: valid only during the call) */
  bytes(view: Uint8Array, offset: number): void;
  /** the decoder fell behind by the whole ring and was dropped */
  lagged(): void;
}

/** One connection's forward direction, source to destination, read into a ring. */
export class ForwardRing {
  private readonly writer: RingWriter;
  readonly ring: SharedRing;
  /** bytes read from the source */
  received = 0;
  private save: Writable | undefined;
  private saved = 0;
  /** a decoder reads the ring (from offset 0) */
  private decoding = false;
  lagged = false;
  private source: Socket | undefined;
  private waiting = false;
  /** bytes handed to the destination; none until `forward` (the connection's turn to be connected) */
  private forwarded = 0;
  private forwarding = false;

  constructor(
    capacity: number,
    private readonly destination: Socket,
    private readonly events: ForwardRingEvents,
  ) {
    this.ring = createSharedRing(capacity);
    this.writer = new RingWriter(this.ring);
  }

  /**
   * Take over an accepted (paused) socket: the socket returned reads into the ring. The
   * accepted one is left without its handle and closed, so its server counts it gone.
   * Undefined where Node's sockets do not work as expected here (nothing is changed then).
   */
  adopt(accepted: Socket): Socket | undefined {
    const inner = accepted as unknown as AcceptedSocket;
    const handle = inner._handle;
    if (handle === null || typeof handle !== 'object' || !('readStart' in handle) || !('useUserBuffer' in handle))
      return undefined;
    inner._handle = null;
    const options: AdoptingOptions = {
      handle,
      pauseOnCreate: true,
      allowHalfOpen: accepted.allowHalfOpen,
      onread: { buffer: () => this.space(), callback: (n) => this.read(n) },
    };
    const source = new Socket(options);
    accepted.destroy();
    this.source = source;
    return source;
  }

  /**
   * From now on a decoder reads the ring (from offset 0: the caller names the channel from its
   * first bytes, long before the ring comes round). What the decoder takes as its input.
   */
  decode(): { input: RingInput; readonly lagged: boolean; lagBytes: number } {
    this.decoding = true;
    return this;
  }

  get input(): RingInput {
    return { ring: this.ring };
  }

  /** how far behind the decoder is when it is dropped */
  get lagBytes(): number {
    return this.writer.capacity;
  }

  /** The save file gets every byte from now on, those read so far first. */
  saveTo(save: Writable): void {
    this.save = save;
    const first = this.received;
    if (first > 0) {
      // the ring has held the connection's first bytes from its start: they were not overwritten
      const head = new Uint8Array(this.ring.data, 0, first);
      this.saved = first;
      save.write(head);
    }
  }

  /**
   * The destination is connected (or connecting): what was read so far goes to it, and every
   * byte from now on as it is read. Until then the bytes wait in the ring (and the source is
   * paused once it is all but full).
   */
  forward(): void {
    if (this.forwarding) return;
    this.forwarding = true;
    // nothing was reused before the first bytes went on: the ring holds them from its start
    if (this.received > 0) this.destination.write(new Uint8Array(this.ring.data, 0, this.received));
    // a source paused because the ring filled meanwhile resumes on the destination's drain (pauseUntilDrained)
    this.forwarded = this.received;
  }

  /** The source ended: the decoder sees the end after the last byte. */
  end(): void {
    this.writer.end();
  }

  /** how far the slowest reader of the ring is behind the source */
  private behind(withDecoder: boolean): number {
    const destination = this.received - this.forwarded + this.destination.writableLength;
    const save = this.save ? this.save.writableLength + (this.received - this.saved) : 0;
    const decoder = withDecoder && this.decoding && !this.lagged && this.writer.open ? this.writer.unread : 0;
    return Math.max(destination, save, decoder);
  }

  /** Where the next read goes: the free run at the write position (never all of the free space, so one byte stays free). */
  private space(): Uint8Array {
    const free = this.writer.capacity - this.behind(true) - 1;
    return this.writer.space(Math.max(1, Math.min(READ_BYTES, free)));
  }

  /** `n` bytes were read into the last space: on to the destination, the save file and the decoder. */
  private read(n: number): boolean {
    const view = this.writer.space(n);
    const offset = this.received;
    this.received += n;
    this.writer.commit(n);
    // a save file attached while the caller looks at these bytes takes them with the ones before
    const save = this.save;
    this.events.bytes(view, offset);
    if (this.forwarding) {
      this.destination.write(view);
      this.forwarded += n;
    }
    if (save) {
      save.write(view);
      this.saved += n;
    }
    return this.flow();
  }

  /** Whether to go on reading: pause the source while the ring is all but full. */
  private flow(): boolean {
    if (this.writer.capacity - this.behind(true) >= LOW_SPACE) return true;
    if (this.writer.capacity - this.behind(false) >= LOW_SPACE) {
      // the decoder alone is behind: it is dropped, the relay goes on
      this.lagged = true;
      this.writer.abort();
      this.events.lagged();
      return true;
    }
    this.pauseUntilDrained();
    return false;
  }

  private pauseUntilDrained(): void {
    const source = this.source;
    if (!source || this.waiting) return;
    source.pause();
    this.waiting = true;
    const again = () => {
      this.destination.off('drain', again);
      this.save?.off('drain', again);
      this.waiting = false;
      if (source.destroyed) return;
      if (this.flow()) source.resume();
    };
    this.destination.once('drain', again);
    this.save?.once('drain', again);
  }
}
