/**
 * Benchmark peer: the socket.io 4.8 server a team would write by hand, with the same Redis Streams adapter
 * as the gateway (when REDIS_URL is set) and socket.io's own connection-state recovery. Not the gateway.
 *
 *   PORT=… JWT_SECRET_KEY=… SERVICE_KEY=… [REDIS_URL=redis://…] node test/bench/peers/socketio-server.ts
 *
 * - Handshake: `auth.token`, an HS256 JWT with `sub` and `tenant_id`, checked with jose.
 * - `subscribe` event with `{topics: [...]}` joins those rooms (tenant-scoped), acknowledged.
 * - `POST /broadcast` with `Authorization: Bearer <SERVICE_KEY>` and `{tenant_id, room, message}` emits
 *   `event` with the gateway's event envelope (peers/http.ts) to the room.
 * - `GET /metrics` exposes `nodejs_eventloop_lag_seconds` measured as prom-client does (a setImmediate's delay).
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { jwtVerify } from 'jose';
import { httpRoutes } from './http.ts';

const port = Number(process.env['PORT'] ?? 0);
const secret = new TextEncoder().encode(process.env['JWT_SECRET_KEY'] ?? '');
const serviceKey = process.env['SERVICE_KEY'] ?? '';
const redisUrl = process.env['REDIS_URL'];

const route = httpRoutes(serviceKey, (tenant, room, envelope) => {
  io.to(`${tenant}|${room}`).emit('event', envelope);
  return undefined;
});
const http = createServer((req, res) => void route(req, res));
const io = new Server(http, {
  transports: ['websocket', 'polling'],
  connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
});

if (redisUrl) {
  const { Redis } = await import('ioredis');
  const { createAdapter } = await import('@socket.io/redis-streams-adapter');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  io.adapter(createAdapter(redis, { streamName: 'peer:sio', maxLen: 100_000 }) as never);
}

io.use(async (socket, next) => {
  try {
    const token = (socket.handshake.auth as { token?: unknown }).token;
    if (typeof token !== 'string') throw new Error('no token');
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || typeof payload['tenant_id'] !== 'string') throw new Error('claims');
    socket.data.tenant = payload['tenant_id'];
    socket.data.user = payload.sub;
    next();
  } catch {
    next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  const tenant = socket.data.tenant as string;
  if (!socket.recovered) void socket.join(`${tenant}|user:${socket.data.user as string}`);
  socket.on('subscribe', (body: { topics?: unknown }, ack?: (reply: unknown) => void) => {
    const topics = Array.isArray(body?.topics) ? body.topics.filter((t): t is string => typeof t === 'string').slice(0, 50) : [];
    void socket.join(topics.map((t) => `${tenant}|${t}`));
    ack?.({ type: 'subscribed', topics });
  });
});

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  io.close();
  process.exit(0);
});
