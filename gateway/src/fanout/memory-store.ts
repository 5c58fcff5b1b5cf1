/**
 * The session store of one replica without Redis: the broadcasts of the last recovery window, each with the
 * offset a client resumes from, and the sessions of connections that were cut. The Redis Streams adapter has
 * none; the stream is its store (redis-fleet.ts).
 *
 * It does what socket.io's own SessionAwareAdapter does, but keeps each broadcast as its encoding, in UTF-16, in
 * large buffers outside the JavaScript heap. SessionAwareAdapter keeps the packet itself (its payload objects,
 * the options with their Sets): about 1 KB of heap per broadcast that lives for the whole window, so at 1,000
 * broadcasts a second every major garbage collection walks 120 MB of them. Here the heap holds a few numbers
 * and the target room's name per broadcast (test/bench/memory-store.ts). Missed broadcasts are decoded back
 * only when a client resumes.
 */
import { randomBytes } from 'node:crypto';
import { Adapter, type BroadcastOptions, type Session } from 'socket.io-adapter';

/** What persistSession receives (socket.io's SessionToPersist, not exported by socket.io-adapter). */
type SessionToPersist = Omit<Session, 'missedPackets'>;

interface AdapterPacket {
  type: number;
  nsp?: string;
  id?: number;
  data: unknown[];
}

/** The members of `nsp.sockets` as the adapter writes to them. */
interface Member {
  notifyOutgoingListeners?: (packet: AdapterPacket) => void;
  client: { writeToEngine(encoded: unknown[], options: unknown): void };
}

/** Adapter's methods that its .d.ts marks private (the instance's own, which fanout/local-delivery.ts replaces). */
interface AdapterInternals {
  _encode(packet: AdapterPacket, options: unknown): unknown[];
  apply(options: BroadcastOptions, callback: (socket: unknown) => void): void;
}

/** No session to resume. socket.io-adapter's type says Session, but null is what socket.io checks for. */
const NO_SESSION = null as unknown as Session;

/** A broadcast's targets: one room (most broadcasts) as its name, several as an array, everyone as []. */
type Targets = string | readonly string[];

const EVERYONE: readonly string[] = [];
/** What a dropped entry holds until the arrays are cut. */
const EMPTY_DATA: unknown[] = [];
const EVENT = 2;
/** Encodings are appended to buffers of this size; a larger one gets a buffer of its own. */
const CHUNK_BYTES = 1 << 20;
/** How old a kept broadcast may be and still serve as a new connection's recovery offset. */
const SHARED_OFFSET_MAX_AGE_MS = 1000;
/** Sessions past the window are dropped on this period, and broadcasts too when nothing is broadcast. */
const SWEEP_MS = 60_000;

export class MemorySessionStore extends Adapter {
  readonly #windowMs: number;
  readonly #sessions = new Map<string, SessionToPersist & { disconnectedAt: number }>();
  /** Offsets are this prefix and a sequence number: unique to this process, and found without a search. */
  readonly #offsetPrefix = `${randomBytes(3).toString('base64url')}.`;
  /** socket.io's encoding of an event packet without an ack id: this prefix, then JSON of the packet's data. */
  readonly #encodingPrefix: string;

  // The kept broadcasts, oldest first from index #head, in parallel arrays (numbers, room names, and references
  // to a few large buffers): no object per broadcast. `#storage[i]` is the buffer holding broadcast i's encoding
  // between #start[i] and #end[i], or (for the rare encoding that is not one string: binary attachments) its
  // data array itself.
  #head = 0;
  /** The sequence number of the entry at index 0: entry i is broadcast #firstSeq + i. */
  #firstSeq = 0;
  #emittedAt: number[] = [];
  #targets: Targets[] = [];
  #except: (readonly string[] | undefined)[] = [];
  #storage: (Buffer | unknown[])[] = [];
  #start: number[] = [];
  #end: number[] = [];
  #chunk = Buffer.allocUnsafeSlow(0);
  #used = 0;
  readonly #sweep: NodeJS.Timeout;

  constructor(nsp: { name: string; server: { opts: { connectionStateRecovery: { maxDisconnectionDuration: number } } } }) {
    super(nsp);
    this.#windowMs = nsp.server.opts.connectionStateRecovery.maxDisconnectionDuration;
    this.#encodingPrefix = nsp.name === '/' ? `${EVENT}` : `${EVENT}${nsp.name},`;
    this.#sweep = setInterval(() => {
      const now = Date.now();
      this.#expire(now);
      this.#expireSessions(now);
    }, SWEEP_MS).unref();
  }

  /** socket.io's Server.close() closes its adapters: the timer would keep this store and its buffers alive. */
  override close(): void {
    clearInterval(this.#sweep);
    this.#sessions.clear();
    this.#expire(Number.POSITIVE_INFINITY);
    this.#chunk = Buffer.allocUnsafeSlow(0);
    this.#used = 0;
  }

  /** How many broadcasts are kept (for tests and the bench). */
  get keptBroadcasts(): number {
    return this.#emittedAt.length - this.#head;
  }

  override persistSession(session: SessionToPersist): void {
    this.#sessions.set(session.pid, { ...session, disconnectedAt: Date.now() });
  }

  /**
   * The session and the broadcasts it missed, or null. A session is taken once, as the Redis fleet's GETDEL takes
   * it: a resumed connection that is cut again is stored again, and a pid cannot be replayed over and over.
   */
  override async restoreSession(pid: string, offset: string): Promise<Session> {
    const now = Date.now();
    this.#expire(now);
    const session = this.#sessions.get(pid);
    if (!session) return NO_SESSION;
    this.#sessions.delete(pid);
    if (session.disconnectedAt + this.#windowMs < now) return NO_SESSION;
    const index = this.#indexOf(offset);
    if (index === undefined) return NO_SESSION;
    const rooms = new Set(session.rooms);
    const missedPackets: unknown[][] = [];
    for (let i = index + 1; i < this.#emittedAt.length; i += 1) {
      if (reaches(this.#targets[i]!, this.#except[i], rooms)) missedPackets.push(this.#dataAt(i));
    }
    return { ...session, missedPackets };
  }

  /**
   * The newest broadcast kept within the last second, as a recovery offset that costs nothing to hand out. A
   * broadcast leaves the store one window after it was kept, so an older one would shorten a new connection's
   * window; then there is none, and the welcome itself is kept (AdapterSession.keptForRecovery).
   */
  latestOffset(now = Date.now()): string | undefined {
    const last = this.#emittedAt.length - 1;
    if (last < this.#head || this.#emittedAt[last]! < now - SHARED_OFFSET_MAX_AGE_MS) return undefined;
    return this.#offsetOf(this.#firstSeq + last);
  }

  /**
   * Adapter.broadcast (socket.io-adapter 2.5), keeping the broadcast as the encoding it makes, as
   * SessionAwareAdapter keeps the same ones: events without an ack, not volatile. The offset goes at the end of
   * the data, where socket.io clients look for it.
   */
  override broadcast(packet: AdapterPacket, opts: BroadcastOptions): void {
    const flags = opts.flags ?? {};
    const kept = packet.type === EVENT && packet.id === undefined && flags.volatile === undefined;
    const now = Date.now();
    if (kept) {
      this.#expire(now);
      packet.data.push(this.#offsetOf(this.#firstSeq + this.#emittedAt.length));
    }
    const packetOpts = { preEncoded: true, volatile: flags.volatile, compress: flags.compress };
    packet.nsp = this.nsp.name;
    const internals = this as unknown as AdapterInternals;
    const encoded = internals._encode(packet, packetOpts);
    if (kept) this.#keep(now, opts, packet.data, encoded);
    internals.apply(opts, (socket) => {
      const member = socket as Member;
      if (typeof member.notifyOutgoingListeners === 'function') member.notifyOutgoingListeners(packet);
      member.client.writeToEngine(encoded, packetOpts);
    });
  }

  #keep(now: number, opts: BroadcastOptions, data: unknown[], encoded: unknown[]): void {
    this.#emittedAt.push(now);
    this.#targets.push(opts.rooms.size === 0 ? EVERYONE : opts.rooms.size === 1 ? opts.rooms.values().next().value! : [...opts.rooms]);
    this.#except.push(opts.except && opts.except.size > 0 ? [...opts.except] : undefined);
    const [text] = encoded;
    if (encoded.length !== 1 || typeof text !== 'string' || !text.startsWith(this.#encodingPrefix)) {
      this.#storage.push(data);
      this.#start.push(0);
      this.#end.push(0);
      return;
    }
    // Kept in UTF-16: a plain copy of a two-byte string (every seed envelope is one: message_ar), a widening copy
    // of a one-byte one. UTF-8 would take half the bytes for ASCII, but converting a two-byte string to it took
    // about 25 instructions a character: 6,800 a broadcast (callgrind of the store alone).
    const bytes = text.length * 2;
    if (bytes > CHUNK_BYTES / 2) {
      // A large encoding gets a buffer of its own, of its exact size.
      this.#storage.push(Buffer.from(text, 'utf16le'));
      this.#start.push(0);
      this.#end.push(bytes);
      return;
    }
    if (this.#chunk.length - this.#used < bytes) {
      this.#chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.#used = 0;
    }
    this.#chunk.write(text, this.#used, 'utf16le');
    this.#storage.push(this.#chunk);
    this.#start.push(this.#used);
    this.#end.push(this.#used + bytes);
    this.#used += bytes;
  }

  #dataAt(index: number): unknown[] {
    const bytes = this.#storage[index]!;
    if (!Buffer.isBuffer(bytes)) return bytes;
    const text = bytes.toString('utf16le', this.#start[index], this.#end[index]);
    return JSON.parse(text.slice(this.#encodingPrefix.length)) as unknown[];
  }

  #offsetOf(seq: number): string {
    return this.#offsetPrefix + seq.toString(36);
  }

  /** The array index of the broadcast with this offset, if it is still kept. */
  #indexOf(offset: string): number | undefined {
    if (typeof offset !== 'string' || !offset.startsWith(this.#offsetPrefix)) return undefined;
    const digits = offset.slice(this.#offsetPrefix.length);
    if (!/^[0-9a-z]{1,11}$/.test(digits)) return undefined;
    const index = parseInt(digits, 36) - this.#firstSeq;
    return index >= this.#head && index < this.#emittedAt.length ? index : undefined;
  }

  /** Drops the broadcasts older than the window. */
  #expire(now: number): void {
    const threshold = now - this.#windowMs;
    const from = this.#head;
    const length = this.#emittedAt.length;
    let head = from;
    while (head < length && this.#emittedAt[head]! < threshold) head += 1;
    if (head === from) return;
    // Dropped entries are cut off once they are half the arrays, so each entry is moved once on average; until
    // then they let go of their buffers.
    if (head >= 1024 && head * 2 >= length) {
      for (const array of [this.#emittedAt, this.#targets, this.#except, this.#storage, this.#start, this.#end]) array.splice(0, head);
      this.#firstSeq += head;
      this.#head = 0;
    } else {
      this.#storage.fill(EMPTY_DATA, from, head);
      this.#head = head;
    }
  }

  #expireSessions(now: number): void {
    for (const [pid, session] of this.#sessions) if (session.disconnectedAt < now - this.#windowMs) this.#sessions.delete(pid);
  }
}

/** SessionAwareAdapter's rule: a broadcast reached a session in one of its rooms, unless one of them was excluded. */
function reaches(targets: Targets, except: readonly string[] | undefined, rooms: ReadonlySet<string>): boolean {
  const included = typeof targets === 'string' ? rooms.has(targets) : targets.length === 0 || targets.some((room) => rooms.has(room));
  return included && (except === undefined || !except.some((room) => rooms.has(room)));
}
