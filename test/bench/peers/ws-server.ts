/**
 * Benchmark peer and floor: plain `ws` with JSON frames, an in-process room map and an HTTP publish endpoint.
 * No fleet, no recovery, no limits: the least a WebSocket fan-out server can do.
 *
 *   PORT=… JWT_SECRET_KEY=… SERVICE_KEY=… node test/bench/peers/ws-server.ts
 *
 * - Upgrade on any path with `Authorization: Bearer <HS256 JWT>` (`sub`, `tenant_id`), checked with jose;
 *   the first frame is `{"type":"connected"}`.
 * - `{"type":"subscribe","topics":[...]}` joins rooms, answered `{"type":"subscribed","topics":[...]}`.
 * - `POST /broadcast` (service key) with `{tenant_id, room, message}` sends the gateway's event envelope
 *   (peers/http.ts) to the room's members, serialised once.
 * - `GET /metrics`: `nodejs_eventloop_lag_seconds`, measured as prom-client does.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { jwtVerify } from 'jose';
import { httpRoutes } from './http.ts';

const port = Number(process.env['PORT'] ?? 0);
const secret = new TextEncoder().encode(process.env['JWT_SECRET_KEY'] ?? '');
const serviceKey = process.env['SERVICE_KEY'] ?? '';

const rooms = new Map<string, Set<WebSocket>>();
const route = httpRoutes(serviceKey, (tenant, room, envelope) => {
  const members = rooms.get(`${tenant}|${room}`);
  if (members) {
    const frame = JSON.stringify(envelope);
    for (const ws of members) ws.send(frame);
  }
  return members?.size ?? 0;
});
const http = createServer((req, res) => void route(req, res));
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

http.on('upgrade', (req, socket, head) => {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  jwtVerify(token ?? '', secret, { algorithms: ['HS256'] }).then(({ payload }) => {
    const tenant = payload['tenant_id'];
    if (typeof payload.sub !== 'string' || typeof tenant !== 'string') throw new Error('claims');
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, tenant, payload.sub!));
  }, () => socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
});

function serve(ws: WebSocket, tenant: string, user: string): void {
  const joined = new Set<string>();
  const join = (room: string) => {
    const key = `${tenant}|${room}`;
    let members = rooms.get(key);
    if (!members) rooms.set(key, (members = new Set()));
    members.add(ws);
    joined.add(key);
  };
  join(`user:${user}`);
  ws.on('message', (data) => {
    let message: { type?: unknown; topics?: unknown };
    try {
      message = JSON.parse(String(data));
    } catch {
      return;
    }
    if (message.type === 'subscribe' && Array.isArray(message.topics)) {
      const topics = message.topics.filter((t): t is string => typeof t === 'string').slice(0, 50);
      for (const topic of topics) join(topic);
      ws.send(JSON.stringify({ type: 'subscribed', topics }));
    } else if (message.type === 'ping') ws.send('{"type":"pong"}');
  });
  ws.on('close', () => {
    for (const key of joined) {
      const members = rooms.get(key);
      members?.delete(ws);
      if (members?.size === 0) rooms.delete(key);
    }
  });
  ws.on('error', () => {});
  ws.send('{"type":"connected"}');
}

http.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
