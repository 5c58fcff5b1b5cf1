/**
 * Exactly once and in order across reconnects: every replica delivers every broadcast in stream order, and a
 * recovered session gets precisely the entries this replica delivered while it was away.
 *
 * The stock adapter has two gaps, both found by killing replicas while events flow:
 * 1. A replica delivers its own broadcasts right after XADD, outside stream order; a session restored meanwhile
 *    can get such an event twice (in its missed packets and live) or never.
 * 2. Restoring reads the missed entries (XRANGE) while the read loop keeps delivering; an entry the loop
 *    delivers between that XRANGE and the moment the restored socket is connected reaches nobody.
 *
 * So: (1) a broadcast is only published; every replica, the publisher included, delivers it when its read
 * loop gives it back. (2) During a restore the read loop's deliveries are held; the missed packets are exactly
 * the entries already delivered (up to the held point); the held ones are delivered once the restored socket
 * is connected.
 */
import { decode } from '@msgpack/msgpack';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';

const BROADCAST = '3';
/** HEARTBEAT: every ClusterAdapter ignores it; published once to learn where the stream stands. */
const PING = 2;
/** A restored socket that never connects (refused by the middleware) releases its hold after this. */
const HOLD_LIMIT_MS = 10_000;
const FIRST_ENTRY_TIMEOUT_MS = 3_000;

interface RawMessage {
  uid: string;
  nsp: string;
  type: string;
  data?: string;
}

interface Session {
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
  missedPackets: unknown[][];
}

interface BroadcastOptions {
  rooms: Set<string>;
  except: Set<string>;
  flags?: { local?: boolean };
}

/** The parts of the Redis Streams adapter instance this module replaces or calls. */
export interface StreamAdapter {
  uid: string;
  nsp: { name: string; on(event: 'connection', listener: (socket: { id: string }) => void): void };
  onRawMessage(message: RawMessage, offset: string): unknown;
  broadcast(packet: unknown, options: BroadcastOptions): Promise<void> | void;
  restoreSession(pid: string, offset: string): Promise<Session>;
  publishAndReturnOffset(message: { type: number; data?: unknown }): Promise<string>;
  constructor: { decode(message: RawMessage): { type: number; nsp: string; data: { packet: { data: unknown[] }; opts: { rooms: string[]; except: string[] } } } };
}

/** socket.io-adapter's rule for whether a stored broadcast was meant for a session's rooms. */
export function includesPacket(sessionRooms: readonly string[], options: { rooms: readonly string[]; except: readonly string[] }): boolean {
  const included = options.rooms.length === 0 || sessionRooms.some((room) => options.rooms.includes(room));
  return included && sessionRooms.every((room) => !options.except.includes(room));
}

function fields(list: string[]): RawMessage {
  const message: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) message[list[i]!] = list[i + 1]!;
  return message as unknown as RawMessage;
}

export interface StreamOrder {
  /** The newest entry delivered here: every later entry reaches a socket connected from now on. */
  latestDelivered(): string | undefined;
  /**
   * A restored session is connected (or was refused): stop holding deliveries for it. socket.io sockets are
   * seen connecting; raw /ws sessions are not socket.io sockets and say so through this.
   */
  resumed(sid: string): void;
}

export function orderThroughStream(
  adapter: StreamAdapter,
  deps: { redis: Redis; streamName: string; sessionKeyPrefix: string; logger: Logger },
): StreamOrder {
  const { redis, streamName, sessionKeyPrefix, logger } = deps;
  const deliver = adapter.onRawMessage.bind(adapter);
  const publishOnly = adapter.broadcast.bind(adapter);
  let latest: string | undefined;
  let holds = 0;
  const held: [RawMessage, string][] = [];
  let firstEntry!: () => void;
  const started = new Promise<void>((resolve) => {
    firstEntry = resolve;
  });
  const pendingConnects = new Map<string, () => void>();

  const deliverNow = (message: RawMessage, offset: string) => {
    latest = offset;
    firstEntry();
    // Our own broadcasts come back too: deliver them like any other replica's (the adapter skips its own uid).
    deliver(message.uid === adapter.uid && message.type === BROADCAST ? { ...message, uid: `${adapter.uid}:self` } : message, offset);
  };

  adapter.onRawMessage = (message, offset) => {
    if (holds > 0) held.push([message, offset]);
    else deliverNow(message, offset);
  };

  const release = () => {
    holds -= 1;
    if (holds > 0) return;
    for (const [message, offset] of held.splice(0)) deliverNow(message, offset);
  };

  adapter.broadcast = async (packet, options) => {
    if (options.flags?.local) return publishOnly(packet, options);
    try {
      await adapter.publishAndReturnOffset({
        type: Number(BROADCAST),
        data: { packet, opts: { rooms: [...options.rooms], except: [...options.except], flags: options.flags } },
      });
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'broadcast could not be published');
    }
  };

  // Learn where the stream stands, so that the first restore has a point to read up to.
  void adapter.publishAndReturnOffset({ type: PING }).catch(() => {});

  const resumed = (sid: string) => {
    const done = pendingConnects.get(sid);
    if (!done) return;
    pendingConnects.delete(sid);
    done();
  };
  // After the connection handlers (the welcome comes first), the held entries reach this socket too.
  adapter.nsp.on('connection', (socket) => process.nextTick(resumed, socket.id));

  adapter.restoreSession = async (pid, offset) => {
    if (!/^[0-9]+-[0-9]+$/.test(offset)) throw new Error('invalid offset');
    await Promise.race([started, new Promise((_, reject) => setTimeout(() => reject(new Error('stream position unknown yet')), FIRST_ENTRY_TIMEOUT_MS).unref())]);
    holds += 1;
    let session: Session | undefined;
    try {
      const upTo = latest!;
      const [raw, known] = await Promise.all([redis.getdel(`${sessionKeyPrefix}${pid}`), redis.xrange(streamName, offset, offset)]);
      if (!raw || known.length === 0) throw new Error('session or offset not found');
      session = decode(Buffer.from(raw, 'base64')) as Session;
      session.missedPackets = [];
      // Empty when the client is already past upTo.
      const entries = await redis.xrange(streamName, `(${offset}`, upTo);
      for (const [id, list] of entries) {
        const message = fields(list);
        if (message.type !== BROADCAST || message.nsp !== adapter.nsp.name) continue;
        const { packet, opts } = adapter.constructor.decode(message).data;
        if (!includesPacket(session.rooms, opts)) continue;
        packet.data.push(id);
        session.missedPackets.push(packet.data);
      }
      return session;
    } finally {
      if (session) {
        const sid = session.sid;
        const timer = setTimeout(() => {
          if (pendingConnects.delete(sid)) release();
        }, HOLD_LIMIT_MS);
        timer.unref();
        pendingConnects.set(sid, () => {
          clearTimeout(timer);
          release();
        });
      } else {
        release();
      }
    }
  };

  return { latestDelivered: () => latest, resumed };
}
