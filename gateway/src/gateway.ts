/**
 * Wires one gateway from its parts: HTTP server, transports, sessions, fan-out, API, metrics. Given every
 * dependency explicitly (main.ts builds them from the configuration), so tests and the dev server assemble the
 * same thing.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'socket.io';
import { createApiHandler, type Readiness } from './api/http.ts';
import type { ServiceKeys, TicketIssuer, TokenVerifier } from './auth/index.ts';
import type { GatewayConfig } from './config.ts';
import { createFanout, type Fanout } from './fanout/fanout.ts';
import { deliverLocally } from './fanout/local-delivery.ts';
import type { RedisFleet } from './fanout/redis-fleet.ts';
import { ConnectionLimiter } from './limits/connection-limits.ts';
import type { Logger } from './log.ts';
import { recordDeliveries } from './metrics/deliveries.ts';
import { createMetrics, type GatewayMetrics, type GatewaySnapshot } from './metrics/metrics.ts';
import type { PresenceStore } from './presence/presence.ts';
import { CloseCode, ErrorCode } from './protocol/codes.ts';
import { now } from './protocol/server-messages.ts';
import { roomTypeOf } from './rooms/names.ts';
import { closeConnection, createSessions } from './session/session.ts';
import { createSocketIoServer, serveSocketIo } from './transports/socketio.ts';
import { serveRawWebSockets } from './transports/ws-json.ts';
import { serveSocketIoWebSockets } from './transports/socketio-ws.ts';
import { MemorySessionStore } from './fanout/memory-store.ts';

export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly verifier: TokenVerifier;
  readonly ticketIssuer: TicketIssuer;
  readonly serviceKeys: ServiceKeys | undefined;
  readonly presence: PresenceStore;
  readonly version: string;
  /** With REDIS_URL: the Redis Streams adapter and its client; without, this replica is a fleet of one. */
  readonly fleet?: RedisFleet;
  /** NATS_URL is set: the bridge's metrics are exported. */
  readonly nats?: boolean;
  /** Extra readiness checks (NATS): name -> healthy. */
  readonly dependencies?: () => Record<string, boolean>;
}

export interface Gateway {
  readonly io: Server;
  readonly http: HttpServer;
  readonly metrics: GatewayMetrics;
  readonly fanout: Fanout;
  listen(): Promise<AddressInfo>;
  /** Turns unready, stops accepting, moves clients away with jitter, then closes. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export function createGateway(deps: GatewayDeps): Gateway {
  const { config, logger } = deps;
  let draining = false;

  const dependencyHealth = (): Record<string, boolean> => ({ ...(deps.fleet ? { redis: deps.fleet.healthy() } : {}), ...deps.dependencies?.() });

  const http = createServer();
  // Kept as things happen rather than counted at each scrape: walking every socket and room blocked the event
  // loop for tens of milliseconds per scrape at 10k connections.
  const connectionsByTransport = new Map<string, number>([['socketio', 0], ['ws', 0]]);
  const connectionsByRoomType = new Map<string, number>();
  let rooms = 0;
  const add = (map: Map<string, number>, key: string, delta: number) => map.set(key, (map.get(key) ?? 0) + delta);
  const snapshot = (): GatewaySnapshot => ({
    ready: !draining && Object.values(dependencyHealth()).every(Boolean),
    redisConnected: deps.fleet?.healthy(),
    connectionsByTransport,
    connectionsByRoomType,
    rooms,
  });
  const metrics = createMetrics(snapshot, { redis: deps.fleet !== undefined, nats: deps.nats });
  const accepting = () => !draining;
  const io = createSocketIoServer(http, config, {
    logger,
    metrics,
    accepting,
    ...(deps.fleet ? { serverOptions: { adapter: deps.fleet.adapter as never } } : {}),
  });
  const nsp = io.of('/');
  // socket.io's own per-socket rooms have no type and are not counted.
  nsp.adapter.on('create-room', (room: string) => {
    if (roomTypeOf(room)) rooms += 1;
  });
  nsp.adapter.on('delete-room', (room: string) => {
    if (roomTypeOf(room)) rooms -= 1;
  });
  nsp.adapter.on('join-room', (room: string) => {
    const type = roomTypeOf(room);
    if (type) add(connectionsByRoomType, type, 1);
  });
  nsp.adapter.on('leave-room', (room: string) => {
    const type = roomTypeOf(room);
    if (type) add(connectionsByRoomType, type, -1);
  });
  deliverLocally(nsp.adapter, recordDeliveries(metrics));
  deps.fleet?.keepSessions(io);
  const fanout = createFanout(io, metrics, { clustered: deps.fleet !== undefined });

  const sessions = createSessions(io, {
    config,
    verifier: deps.verifier,
    metrics,
    logger,
    presence: deps.presence,
    limiter: new ConnectionLimiter({
      maxPerIp: config.limits.maxConnectionsPerIp,
      maxPerUser: config.limits.maxConnectionsPerUser,
      maxPerTenant: config.limits.maxConnectionsPerTenant,
    }),
    connectionCounts: connectionsByTransport,
    // One replica without Redis: the newest broadcast the in-memory store keeps.
    recoveryOffset: deps.fleet ? deps.fleet.latestOffset : () => (nsp.adapter instanceof MemorySessionStore ? nsp.adapter.latestOffset() : undefined),
  });
  const socketIoWebSockets = serveSocketIoWebSockets(io, sessions, config, {
    logger,
    metrics,
    accepting,
    ...(deps.fleet ? { resumed: deps.fleet.resumed, forgetSession: deps.fleet.forgetSession } : {}),
  });
  serveSocketIo(io, sessions, config, { takeOver: socketIoWebSockets.takeOver, ...(deps.fleet ? { resumed: deps.fleet.resumed } : {}) });
  const rawWebSockets = serveRawWebSockets(http, io, sessions, config, {
    logger,
    metrics,
    accepting,
    ...(deps.fleet ? { resumed: deps.fleet.resumed, forgetSession: deps.fleet.forgetSession } : {}),
  });

  const readiness = async (): Promise<Readiness> => {
    const dependencies = dependencyHealth();
    const healthy = Object.values(dependencies).every(Boolean);
    const state = snapshot();
    const total = [...state.connectionsByTransport.values()].reduce((a, b) => a + b, 0);
    return {
      ready: !draining && healthy,
      body: {
        status: draining ? 'draining' : healthy ? 'ok' : 'degraded',
        nats: dependencies['nats'] ?? null,
        redis: dependencies['redis'] ?? null,
        connections: { total_connections: total, total_rooms: state.rooms },
        timestamp: now(),
      },
    };
  };

  const api = createApiHandler({
    version: deps.version,
    logger,
    metrics,
    verifier: deps.verifier,
    ticketIssuer: deps.ticketIssuer,
    serviceKeys: deps.serviceKeys,
    presence: deps.presence,
    fanout,
    readiness,
  });
  // engine.io answers /socket.io/ itself; everything else is the API.
  http.on('request', (req, res) => {
    if (req.url?.startsWith('/socket.io/')) return;
    api(req, res);
  });
  http.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });

  return {
    io,
    http,
    metrics,
    fanout,
    listen: () =>
      new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          resolve(http.address() as AddressInfo);
        });
      }),
    async drain() {
      if (draining) return;
      draining = true;
      const sockets = [...nsp.sockets.values()];
      // Spread the goodbyes over half the drain budget so clients do not reconnect in one wave.
      const spreadMs = Math.min(config.drainSeconds * 500, 10_000);
      logger.info({ event: 'drain', connections: sockets.length, spread_ms: spreadMs }, 'draining');
      await Promise.all(sockets.map(async (socket) => {
        const delay = Math.floor(Math.random() * spreadMs);
        await sleep(delay);
        if (!socket.connected) return;
        // 1012: on socket.io a transport close, so the stock client reconnects by itself (randomised backoff)
        // and recovers its session elsewhere; raw /ws clients get the advised delay in the notice.
        closeConnection(io, socket.id, CloseCode.serviceRestart, ErrorCode.serviceRestart, Math.floor(Math.random() * 1000));
      }));
    },
    async close() {
      io.close();
      socketIoWebSockets.close();
      rawWebSockets.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
    },
  };
}
