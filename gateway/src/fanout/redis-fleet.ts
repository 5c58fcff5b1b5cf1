/**
 * The fleet seam: the socket.io Redis Streams adapter on ioredis, with its known pitfalls handled here.
 *
 * - One stream. The adapter routes a namespace to stream `hash(nsp) % streamCount` with a signed hash, so with
 *   streamCount > 1 some namespaces land on a negative index no node reads; and one namespace gains nothing from
 *   several streams anyway. `streamCount` is therefore fixed at 1 (pinned by a unit test).
 * - The stream is the recovery window. A reconnecting client can only recover while its last offset is still in
 *   the stream, so `maxLen` is derived from the window and the publish rate it must hold (config.ts rejects a
 *   REDIS_STREAM_MAXLEN that is too short), not left at the adapter's default.
 * - Sessions survive a replica that dies without closing. The stock adapter persists a session only when the
 *   socket closes gracefully; SIGKILL or OOM would lose it. `keepSessions` persists every live session while it
 *   lives (and refreshes its TTL), so a client of a killed replica recovers on any other.
 * - serverSideEmit, fetchSockets and broadcast-with-ack travel over Pub/Sub and are not durable: they are only
 *   used for queries (member counts) that tolerate a missing answer; state changes (disconnecting a user) go
 *   through the stream.
 * - Every node reads every stream entry: Redis CPU and network grow with replicas x broadcasts (measured in
 *   test/bench).
 */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import type { Server, Socket } from 'socket.io';
import type { Logger } from '../log.ts';
import { orderThroughStream, type StreamAdapter, type StreamOrder } from './stream-order.ts';

export interface RedisFleetOptions {
  readonly url: string;
  readonly streamName: string;
  readonly maxLen: number;
  /** Connection-state recovery window; 0 disables recovery. */
  readonly recoveryWindowMs: number;
  readonly sessionKeyPrefix?: string;
}

export interface RedisFleet {
  readonly redis: Redis;
  /** The `adapter` option for the socket.io Server. */
  readonly adapter: (nsp: unknown) => unknown;
  /** The newest stream entry this replica has read: a recovery starting point for a fresh connection. */
  latestOffset(): string | undefined;
  /** A restored raw /ws session is connected (see StreamOrder.resumed). */
  resumed(sid: string): void;
  /** A raw /ws session ended on purpose: its persisted copy goes (socket.io sockets are handled in keepSessions). */
  forgetSession(pid: string): void;
  healthy(): boolean;
  /** Persists each live session while it lives (see above). Call once the Server exists. */
  keepSessions(io: Server): void;
  close(): Promise<void>;
}

/** socket.io's reasons after which a session may be recovered (socket.io's RECOVERABLE_DISCONNECT_REASONS). */
const RECOVERABLE = new Set(['transport error', 'transport close', 'forced close', 'ping timeout', 'server shutting down', 'forced server close']);

/** The adapter's options, pure (the pitfalls above are pinned against this in test/unit). */
export function adapterOptions(options: RedisFleetOptions) {
  return {
    streamName: options.streamName,
    // Never more: the adapter's signed hash sends some namespaces to a negative stream index nobody reads.
    streamCount: 1,
    maxLen: options.maxLen,
    channelPrefix: options.streamName,
    sessionKeyPrefix: options.sessionKeyPrefix ?? `${options.streamName}:session:`,
    onlyPlaintext: true,
  } as const;
}

export function createRedisFleet(options: RedisFleetOptions, logger: Logger): RedisFleet {
  const redis = new Redis(options.url, {
    // Commands wait for a reconnect instead of failing fast: the adapter's read loop would otherwise spin.
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    lazyConnect: false,
  });
  let ready = false;
  redis.on('ready', () => {
    if (!ready) logger.info({ event: 'redis', state: 'ready' }, 'redis connected');
    ready = true;
  });
  redis.on('close', () => {
    if (ready) logger.warn({ event: 'redis', state: 'closed' }, 'redis connection lost; reconnecting');
    ready = false;
  });
  redis.on('error', (error: Error) => logger.debug({ event: 'redis', err: error.message }, 'redis error'));

  // The adapter duplicates the client for its stream reader and its Pub/Sub subscriber. Each reconnects on its
  // own schedule after a Redis restart; readiness waits for all of them (else member counts miss replicas).
  const clients: Redis[] = [redis];
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (...args: Parameters<Redis['duplicate']>) => {
    const client = duplicate(...args);
    clients.push(client);
    return client;
  };

  const adapterSettings = adapterOptions(options);
  const { sessionKeyPrefix } = adapterSettings;
  const factory = createAdapter(redis, adapterSettings);
  let order: StreamOrder | undefined;
  // socket.io calls `new adapter(nsp)`: a plain function (not an arrow) that returns the instance.
  const adapter = function (nsp: unknown) {
    const instance = factory(nsp);
    order = orderThroughStream(instance as unknown as StreamAdapter, { redis, streamName: options.streamName, sessionKeyPrefix, logger });
    return instance;
  };

  // A session that ended on purpose may not be resumed: its persisted copy goes.
  const forgetSession = (pid: string) => {
    void redis.del(`${sessionKeyPrefix}${pid}`).catch(() => {});
  };

  let refreshTimer: NodeJS.Timeout | undefined;
  return {
    redis,
    adapter,
    latestOffset: () => order?.latestDelivered(),
    resumed: (sid: string) => order?.resumed(sid),
    forgetSession,
    healthy: () => ready && clients.every((client) => client.status === 'ready'),
    keepSessions(io: Server) {
      if (options.recoveryWindowMs <= 0) return;
      const nsp = io.of('/');
      // Raw /ws sessions sit in nsp.sockets too, with the same id, pid, rooms, data and connected.
      const persist = (socket: Socket) => {
        const pid = (socket as unknown as { pid?: string }).pid;
        if (!pid || !socket.connected) return;
        (nsp.adapter as unknown as { persistSession(session: unknown): void }).persistSession({ sid: socket.id, pid, rooms: [...socket.rooms], data: socket.data });
      };
      const pending = new Set<string>();
      let flush: NodeJS.Immediate | undefined;
      // Room changes come in bursts (subscribe to 50 topics); persist once per socket per tick.
      const changed = (id: string) => {
        pending.add(id);
        flush ??= setImmediate(() => {
          flush = undefined;
          for (const sid of pending) {
            const socket = nsp.sockets.get(sid);
            if (socket) persist(socket);
          }
          pending.clear();
        });
      };
      nsp.on('connection', (socket: Socket) => {
        changed(socket.id);
        socket.on('disconnect', (reason) => {
          pending.delete(socket.id);
          const pid = (socket as unknown as { pid?: string }).pid;
          // A deliberate disconnect ends the session; the stock adapter persists the recoverable ones itself.
          if (pid && !RECOVERABLE.has(reason)) forgetSession(pid);
        });
      });
      nsp.adapter.on('join-room', (_room: string, id: string) => {
        if (nsp.sockets.has(id)) changed(id);
      });
      nsp.adapter.on('leave-room', (_room: string, id: string) => {
        if (nsp.sockets.has(id)) changed(id);
      });
      // The persisted copy expires one window after its last write, so rewrite every live one well before.
      refreshTimer = setInterval(() => {
        for (const socket of nsp.sockets.values()) persist(socket);
      }, Math.max(1000, Math.floor(options.recoveryWindowMs / 3)));
      refreshTimer.unref();
    },
    async close() {
      clearInterval(refreshTimer);
      await redis.quit().catch(() => redis.disconnect());
      // The adapter's reader and subscriber would otherwise reconnect forever once Redis is gone.
      for (const client of clients) client.disconnect(false);
    },
  };
}
