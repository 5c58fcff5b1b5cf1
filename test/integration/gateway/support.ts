/**
 * What the gateway integration tests share: one connection shape for both transports (so every behaviour is
 * pinned on socket.io and raw /ws with the same test), refusals, metrics, log lines, and a record of every
 * secret a test used so the last test of a file can check none of them reached the gateway's output.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Duplex } from 'node:stream';
import assert from 'node:assert/strict';
import type { GatewayProcess } from '../../harness/gateway.ts';
import { Inbox, sioClient, wsClient, type Json } from '../../harness/clients.ts';
import { waitFor } from '../../harness/process.ts';
import { SERVICE_KEY, TEST_SECRET, hsToken, type TokenOptions } from '../../harness/tokens.ts';

export type Transport = 'ws' | 'socketio';
export const TRANSPORTS: readonly Transport[] = ['ws', 'socketio'];

/** Every token and key a test handed to a gateway; none may ever appear in its output. */
const secrets = new Set<string>([TEST_SECRET, SERVICE_KEY]);

export function remember<T extends string>(secret: T): T {
  secrets.add(secret);
  return secret;
}

/** An HS256 test token (see harness/tokens.ts), remembered as a secret. */
export async function token(options: TokenOptions = {}): Promise<string> {
  return remember(await hsToken(options));
}

export function assertNoSecretsIn(output: string): void {
  assert.ok(secrets.size > 2, 'the file used tokens');
  for (const secret of secrets) {
    assert.ok(!output.includes(secret), `the gateway output contains a secret or token (${secret.slice(0, 12)}...)`);
  }
}

/** Where the client puts its token. `auth` (handshake auth.token) exists on socket.io only. */
export type TokenVia = 'header' | 'auth' | 'query';

export interface ConnectOptions {
  readonly token?: string | undefined;
  readonly via?: TokenVia;
  /** `tenant_id` query parameter. */
  readonly tenant?: string;
  readonly headers?: Record<string, string>;
  /** socket.io only; default ['websocket']. */
  readonly sioTransports?: ('polling' | 'websocket')[];
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** An open, authenticated connection on either transport. */
export interface Conn {
  readonly transport: Transport;
  /** Everything the server pushed (on socket.io: events, with `__event`; acks are returned by `request`). */
  readonly inbox: Inbox;
  readonly welcome: Json;
  /**
   * Sends a client message and resolves with its reply: the ack on socket.io, the reply frame on /ws. Messages
   * that only answer errors (broadcast, typing, read) resolve with null on success.
   */
  request(type: string, body?: Json): Promise<Json | null>;
  /** Sends a client message and waits for nothing. */
  send(type: string, body?: Json): void;
  /** The server closed the connection: the close frame on /ws; on socket.io the `error` notice's close_code, then the disconnect. */
  readonly closed: Promise<Closed>;
  readonly isOpen: () => boolean;
  close(): void;
}

const REPLY_TYPES: Readonly<Record<string, string>> = {
  subscribe: 'subscribed', unsubscribe: 'unsubscribed', join_room: 'room_joined', leave_room: 'room_left', ping: 'pong', refresh: 'token_refreshed',
};

function wsQuery(options: ConnectOptions): Record<string, string> {
  return {
    ...(options.tenant !== undefined ? { tenant_id: options.tenant } : {}),
    ...(options.token !== undefined && options.via === 'query' ? { token: options.token } : {}),
  };
}

function wsHeaders(options: ConnectOptions): Record<string, string> {
  const viaHeader = options.token !== undefined && (options.via ?? 'header') === 'header';
  return { ...(viaHeader ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
}

function sioOptions(options: ConnectOptions) {
  const via = options.via ?? 'auth';
  const query: Record<string, string> = {
    ...(options.tenant !== undefined ? { tenant_id: options.tenant } : {}),
    ...(options.token !== undefined && via === 'query' ? { token: options.token } : {}),
  };
  const headers: Record<string, string> = {
    ...(options.token !== undefined && via === 'header' ? { authorization: `Bearer ${options.token}` } : {}),
    ...options.headers,
  };
  return {
    transports: options.sioTransports ?? ['websocket'],
    query,
    auth: options.token !== undefined && via === 'auth' ? { token: options.token } : {},
    extraHeaders: headers,
  };
}

/** Opens a connection and waits for the `connected` welcome; rejects when refused. */
export async function connect(gateway: GatewayProcess, transport: Transport, options: ConnectOptions = {}): Promise<Conn> {
  if (transport === 'ws') {
    assert.notEqual(options.via, 'auth', 'raw /ws has no handshake auth');
    const client = await wsClient(gateway.wsUrl(wsQuery(options)), wsHeaders(options));
    const welcome = await Promise.race([
      client.inbox.next('connected'),
      client.closed.then((closed) => Promise.reject(new Error(`closed ${closed.code} ${closed.reason}`))),
    ]);
    let open = true;
    void client.closed.then(() => {
      open = false;
    });
    return {
      transport,
      inbox: client.inbox,
      welcome,
      async request(type, body = {}) {
        const replyType = REPLY_TYPES[type];
        client.send({ ...body, type });
        if (replyType) return client.inbox.next((m) => m['type'] === replyType || m['type'] === 'error');
        // No reply on success: a ping behind it tells whether an error came first (replies keep their order).
        client.send({ type: 'ping' });
        const reply = await client.inbox.next((m) => m['type'] === 'pong' || m['type'] === 'error');
        if (reply['type'] === 'error') await client.inbox.next('pong');
        return reply['type'] === 'error' ? reply : null;
      },
      send: (type, body = {}) => client.send({ ...body, type }),
      closed: client.closed,
      isOpen: () => open,
      close: () => client.close(),
    };
  }
  const client = sioClient(gateway.httpUrl, sioOptions(options));
  const closed = new Promise<Closed>((resolve) => {
    let notice: Json | undefined;
    client.socket.on('error' as never, (payload: Json) => {
      notice = payload;
    });
    client.socket.on('disconnect', (reason) => resolve({ code: notice?.['close_code'] ?? 1005, reason: notice?.['message'] ?? reason }));
  });
  const welcome = await Promise.race([
    client.inbox.next('connected'),
    new Promise<never>((_, reject) => client.socket.once('connect_error', (error) => reject(error))),
  ]).catch((error: unknown) => {
    client.close();
    throw error;
  });
  return {
    transport,
    inbox: client.inbox,
    welcome,
    async request(type, body) {
      return (await client.request(type, body)) ?? null;
    },
    send: (type, body) => {
      client.socket.emit(type, body);
    },
    closed,
    isOpen: () => client.socket.connected,
    close: () => client.close(),
  };
}

/** A connection attempt that must be refused: the close code and reason (/ws), or connect_error.data (socket.io). */
export async function refusal(gateway: GatewayProcess, transport: Transport, options: ConnectOptions = {}): Promise<Closed> {
  if (transport === 'ws') {
    const client = await wsClient(gateway.wsUrl(wsQuery(options)), wsHeaders(options));
    const closed = await client.closed;
    assert.equal(client.inbox.ofType('connected').length, 0, 'a refused /ws connection is never welcomed');
    return closed;
  }
  const client = sioClient(gateway.httpUrl, sioOptions(options));
  try {
    const error = await new Promise<Error & { data?: Json }>((resolve, reject) => {
      client.socket.once('connect_error', resolve);
      client.socket.once('connect', () => reject(new Error('connected, but a refusal was expected')));
    });
    assert.ok(error.data, `connect_error carries data (got "${error.message}")`);
    return { code: error.data['code'], reason: error.data['reason'] };
  } finally {
    client.close();
  }
}

/** Both transports, in parallel where the test allows it. */
export function both<T>(run: (transport: Transport) => Promise<T>): Promise<T[]> {
  return Promise.all(TRANSPORTS.map(run));
}

/** The value of one Prometheus sample (0 when absent), e.g. metric(g, 'rtgw_auth_failures_total', {reason: 'expired'}). */
export async function metric(gateway: GatewayProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { status, body } = await gateway.api('/metrics', { serviceKey: null });
  assert.equal(status, 200);
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of String(body).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(',').filter((pair) => pair !== '');
    if (wanted.every((pair) => present.includes(pair)) && present.length === wanted.length) return Number(match[3]);
  }
  return 0;
}

/** The gateway's JSON log lines so far. */
export function logLines(gateway: GatewayProcess): Json[] {
  const lines: Json[] = [];
  for (const line of gateway.process.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      // a line cut by the bounded output buffer
    }
  }
  return lines;
}

/** Waits until `conn` has received a room delivery (`event` or `message`) whose payload matches. */
export function delivered(conn: Conn, match: (m: Json) => boolean, what = 'a delivery'): Promise<Json> {
  return waitFor(`${conn.transport} to receive ${what}`, () => deliveries(conn).find(match), 5000, 10);
}

/** Room deliveries received so far: HTTP/NATS events and client broadcasts. */
export function deliveries(conn: Conn): Json[] {
  return conn.inbox.messages.filter((m) => m['type'] === 'event' || m['type'] === 'message');
}

/** The marker carried in a delivery: `data.marker` for events, `message.marker` for client broadcasts. */
export function markerOf(delivery: Json): unknown {
  return delivery['type'] === 'event' ? delivery['data']?.['marker'] : delivery['message']?.['marker'];
}

export function closeAll(conns: readonly Conn[]): void {
  for (const conn of conns) conn.close();
}

/**
 * A hand-made /ws upgrade (no WebSocket library), for what real clients never do: resolves with the HTTP status
 * and, after a 101, the raw TCP socket (unmasked frames, odd versions).
 */
export function rawUpgrade(gateway: GatewayProcess, headers: Record<string, string>): Promise<{ status: number; socket?: Duplex }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(new URL('/ws', gateway.httpUrl), {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-version': '13', ...headers },
    });
    request.once('upgrade', (response, socket) => resolve({ status: response.statusCode ?? 0, socket }));
    request.once('response', (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0 });
    });
    request.once('error', reject);
    request.end();
  });
}
