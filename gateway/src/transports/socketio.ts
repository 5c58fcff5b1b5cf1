/**
 * The socket.io transport (default path /socket.io/): the Server, its origin check, and the glue from socket.io
 * sockets to the session (session/session.ts). Clients that open with a WebSocket are taken from engine.io and
 * served in socketio-ws.ts; this serves the ones that start with long-polling, until they upgrade to a
 * WebSocket and socketio-ws.ts takes them over too. Upgrades that bypass engine.io have their origins checked
 * the same way (adapter-session.ts).
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type Socket, type ServerOptions } from 'socket.io';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import { CloseCode, type CloseCodeValue } from '../protocol/codes.ts';
import { closeCodeOf, type Ack, type ClientConnection, type SessionData, type Sessions } from '../session/session.ts';
import type { MessageRateLimiter } from '../limits/rate-limit.ts';
import { MemorySessionStore } from '../fanout/memory-store.ts';
import type { CarriedOver, TakeOverRefusal } from './socketio-ws.ts';

/** Frames above this close the connection (1009 on /ws); frames between maxMessageBytes and this get an error reply. */
export const HARD_FRAME_LIMIT_BYTES = 1_048_576;

export function originAllowed(allowed: GatewayConfig['allowedOrigins'], origin: string | undefined): boolean {
  // Browsers always send Origin on WebSocket and cross-origin requests; other clients (wscat, services,
  // mobile apps) have no origin to check.
  if (origin === undefined) return true;
  return allowed === '*' || allowed.includes(origin);
}

export function forwardedIp(headers: IncomingMessage['headers']): string | undefined {
  const forwarded = headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first || undefined;
}

/** The client's address for limits and the audit log (X-Forwarded-For only when trusted). */
export function requestIp(config: GatewayConfig, headers: IncomingMessage['headers'], remoteAddress: string | undefined): string {
  return (config.trustProxy ? forwardedIp(headers) : undefined) ?? remoteAddress ?? '';
}

type GatewaySocket = Socket<Record<string, never>, Record<string, (...args: any[]) => void>, Record<string, never>, SessionData>;

export function createSocketIoServer(
  httpServer: HttpServer,
  config: GatewayConfig,
  deps: { logger: Logger; metrics: GatewayMetrics; accepting: () => boolean; serverOptions?: Partial<ServerOptions> },
): Server {
  const io = new Server(httpServer, {
    path: '/socket.io/',
    transports: ['polling', 'websocket'],
    pingInterval: config.pingIntervalMs,
    pingTimeout: config.pingTimeoutMs,
    maxHttpBufferSize: HARD_FRAME_LIMIT_BYTES,
    cors: {
      origin: (origin, callback) => callback(null, originAllowed(config.allowedOrigins, origin)),
      credentials: true,
    },
    allowRequest: (request, callback) => {
      if (!deps.accepting()) return callback('draining', false);
      const allowed = originAllowed(config.allowedOrigins, request.headers.origin);
      if (!allowed) {
        deps.metrics.authFailures.inc({ reason: 'origin_not_allowed' });
        deps.logger.warn({ event: 'auth', outcome: 'refused', reason: 'origin_not_allowed', origin: request.headers.origin, ip: requestIp(config, request.headers, request.socket.remoteAddress), transport: 'socketio' }, 'origin not allowed');
      }
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    // Raw /ws upgrades are handled in ws-json.ts; leave other paths' upgrades to their handlers.
    destroyUpgrade: false,
    // With recovery on, one replica without Redis keeps broadcasts in MemorySessionStore (the fleet's adapter,
    // in serverOptions, replaces it).
    ...(config.recoveryWindowSeconds > 0
      ? { connectionStateRecovery: { maxDisconnectionDuration: config.recoveryWindowSeconds * 1000, skipMiddlewares: false }, adapter: MemorySessionStore as never }
      : {}),
    ...deps.serverOptions,
  });
  releaseUpgradeRequests(io);
  return io;
}

/**
 * engine.io wraps each upgrade in a WebSocketResponse (for engine-level middlewares, which we do not use) and
 * ties it to the TCP socket with `socket.once('close', ...)`: that listener keeps the response, and through it the
 * whole HTTP request (headers, raw headers, parser state: about 2 KB), alive for as long as the connection
 * lasts. Take the listener off as soon as engine.io has added it.
 */
function releaseUpgradeRequests(io: Server): void {
  const engine = io.engine as unknown as { handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void };
  const handleUpgrade = engine.handleUpgrade.bind(engine);
  engine.handleUpgrade = (req, socket, head) => {
    const before = socket.rawListeners('close');
    handleUpgrade(req, socket, head);
    for (const listener of socket.rawListeners('close')) {
      if (!before.includes(listener)) socket.removeListener('close', listener as (...args: unknown[]) => void);
    }
  };
}

class ConnectionRefused extends Error {
  readonly data: { code: CloseCodeValue; reason: string };
  constructor(code: CloseCodeValue, reason: string) {
    super(reason);
    this.data = { code, reason };
  }
}

/** A socket.io socket as the session sees it. */
class SocketIoConnection implements ClientConnection {
  readonly transport = 'socketio' as const;
  readonly rateLimiter: MessageRateLimiter;
  private readonly io: Server;
  private readonly socket: GatewaySocket;
  /** Serves the connection since it was taken from engine.io; what still holds this object reaches it. */
  private successor: ClientConnection | undefined;

  constructor(io: Server, socket: GatewaySocket, rateLimiter: MessageRateLimiter) {
    this.io = io;
    this.socket = socket;
    this.rateLimiter = rateLimiter;
  }

  get id() { return this.socket.id; }
  get data() { return this.socket.data; }
  get rooms() { return this.socket.rooms; }
  get recovered() { return this.socket.recovered; }
  /** socket.io's private session id (set when connection-state recovery is on). */
  get sessionId() { return (this.socket as unknown as { pid?: string }).pid; }

  handedOver(successor: ClientConnection): void {
    this.successor = successor;
  }

  join(rooms: readonly string[]): void {
    if (this.successor) this.successor.join(rooms);
    else void this.socket.join([...rooms]);
  }

  leave(room: string): void {
    if (this.successor) this.successor.leave(room);
    else void this.socket.leave(room);
  }

  send(event: string, payload: unknown, offset?: string): void {
    if (this.successor) return this.successor.send(event, payload, offset);
    // With Redis, through the adapter (local only) so the client's recovery offset moves. Otherwise directly: with
    // the in-memory store (MemorySessionStore), socket.emit keeps the message and gives it an offset of its own.
    if (offset !== undefined && !(this.socket.nsp.adapter instanceof MemorySessionStore)) this.io.local.to(this.socket.id).emit(event, payload, offset);
    else this.socket.emit(event, payload);
  }
}

export interface SocketIoDeps {
  /** A restored session is connected (or was refused): the fleet stops holding deliveries for it. */
  readonly resumed?: (sid: string) => void;
  /** Serves an upgraded socket on its bare WebSocket from now on (socketio-ws.ts), or says why not. */
  readonly takeOver?: (socket: Socket, carried: CarriedOver) => ClientConnection | TakeOverRefusal;
}

/** How often, and how many times, a take-over refused because engine.io was writing is tried again. */
const TAKE_OVER_RETRY_MS = 1000;
const TAKE_OVER_TRIES = 10;

/** Authenticates socket.io handshakes and serves each socket's session. */
export function serveSocketIo(io: Server, sessions: Sessions, config: GatewayConfig, deps: SocketIoDeps = {}): void {
  /** Each admitted socket's limits slot, until it connects. */
  const releases = new WeakMap<GatewaySocket, () => void>();
  io.use((socket: GatewaySocket, next) => {
    admitSocket(socket, sessions, config, deps, releases).then(next, (error: unknown) => next(error instanceof Error ? error : new Error(String(error))));
  });

  io.on('connection', (socket: GatewaySocket) => {
    const conn = new SocketIoConnection(io, socket, sessions.rateLimiter());
    const release = releases.get(socket);
    releases.delete(socket);
    const { takeOver } = deps;
    if (takeOver && release) {
      // Once on a WebSocket, the connection needs none of engine.io's and socket.io's objects (socketio-ws.ts).
      const attempt = (triesLeft: number) => {
        const successor = takeOver(socket, { release, rateLimiter: conn.rateLimiter });
        if (successor === 'busy') {
          if (triesLeft > 1) setTimeout(attempt, TAKE_OVER_RETRY_MS, triesLeft - 1).unref();
        } else if (successor !== 'kept') {
          conn.handedOver(successor);
          sessions.handedOver(conn, successor);
        }
      };
      const engineConn = socket.conn as unknown as { upgraded: boolean };
      // After engine.io's own work on the upgrade (it flushes what polling had buffered).
      if (engineConn.upgraded) setImmediate(attempt, TAKE_OVER_TRIES);
      else socket.conn.once('upgrade', () => setImmediate(attempt, TAKE_OVER_TRIES));
    }
    socket.onAnyOutgoing((event: string, payload: unknown) => {
      const closeCode = closeCodeOf(event, payload);
      // The notice is written right after this listener returns; close once it is on the wire. On 1012
      // (draining) a transport close, so the stock client reconnects by itself and recovers its session.
      if (closeCode !== undefined) {
        process.nextTick(() => (closeCode === CloseCode.serviceRestart ? socket.conn.close() : socket.disconnect(true)));
      }
    });
    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = typeof args.at(-1) === 'function' ? (args.pop() as Ack) : undefined;
      sessions.message(conn, event, args[0], ack);
    });
    socket.on('disconnecting', () => sessions.closing(conn));
    socket.on('disconnect', (reason) => sessions.closed(conn, reason));
    // socket.io-client sends pid and offset when it reconnects.
    const auth = socket.handshake.auth as { pid?: unknown } | undefined;
    sessions.opened(conn, typeof auth?.pid === 'string');
  });
}

/**
 * Authenticates a socket.io socket (every CONNECT packet, so also a second one on the same Engine.IO connection,
 * whose handshake socket.io builds after the request was let go: headers from the handshake, not the request).
 * Resolves with the refusal to pass to next(), if any.
 */
async function admitSocket(socket: GatewaySocket, sessions: Sessions, config: GatewayConfig, deps: SocketIoDeps, releases: WeakMap<GatewaySocket, () => void>): Promise<ConnectionRefused | undefined> {
  const request = {
    headers: socket.handshake.headers,
    url: socket.handshake.url ?? '/',
    handshakeAuth: socket.handshake.auth,
    ip: requestIp(config, socket.handshake.headers, socket.handshake.address),
    transport: 'socketio' as const,
  };
  /** This socket will not connect: socket.io cleans it up under its session's id. */
  const notConnecting = () => {
    if (socket.recovered) {
      keepLiveHolder(socket);
      // The fleet holds deliveries while a session is restored, until its socket connects: this one will not.
      deps.resumed?.(socket.id);
    }
  };
  const refuse = (refusal: { closeCode: CloseCodeValue; reason: string }) => {
    notConnecting();
    return new ConnectionRefused(refusal.closeCode, refusal.reason);
  };
  const admission = await sessions.admit(request);
  if (!admission.ok) return refuse(admission);
  // A recovered session carries its previous identity: only the same user of the same tenant may take it.
  const refusal = socket.recovered ? sessions.checkRecovered(socket.data, admission.identity, request) : undefined;
  if (refusal && !refusal.ok) {
    admission.release();
    return refuse(refusal);
  }
  // The client went away while the token was being checked: its close has come and gone, and socket.io drops a
  // socket whose connection is closed.
  if (socket.conn.readyState !== 'open') {
    admission.release();
    notConnecting();
    return undefined;
  }
  // Released on whichever comes first; a socket that never finishes connecting only gets the conn close.
  socket.once('disconnect', admission.release);
  socket.conn.once('close', admission.release);
  releases.set(socket, admission.release);
  forgetToken(socket);
  socket.data.identity = admission.identity;
  socket.data.ip = request.ip;
  socket.data.connectedAt ??= Date.now();
  // Recovered while the session was still held by a connection served without engine.io, not yet seen dead:
  // retire that one; the id and its rooms (rejoined by socket.io) are this socket's now.
  const previous = socket.nsp.sockets.get(socket.id) as unknown;
  if (previous !== undefined && previous !== socket) (previous as { superseded?: () => void }).superseded?.();
  return undefined;
}

/**
 * A refused recovered socket is cleaned up by socket.io under its session's id: the id's rooms and its entry in
 * nsp.sockets go. When a live connection served without engine.io still holds that id (the refusal was someone
 * else's, or came before the old connection was seen dead), put it back once socket.io is done.
 */
function keepLiveHolder(socket: GatewaySocket): void {
  const { nsp } = socket;
  const holder = nsp.sockets.get(socket.id) as unknown;
  if (holder === undefined || holder === socket) return;
  const rooms = new Set(nsp.adapter.sids.get(socket.id) ?? []);
  setImmediate(() => {
    if (!(holder as { connected?: boolean }).connected) return;
    (nsp.sockets as Map<string, unknown>).set(socket.id, holder);
    nsp.adapter.addAll(socket.id, rooms);
    // socket.io removed the holder instead of the refused socket from its registry: drop that one too.
    (nsp as unknown as { _preConnectSockets?: Map<string, unknown> })._preConnectSockets?.delete(socket.id);
  });
}

/**
 * The token has done its job: it is not kept in memory for the connection's lifetime, wherever it came from.
 * The handshake gets fresh copies of the headers and query without it (deleting a property would turn those
 * objects into slower, larger dictionaries), and engine.io lets go of the HTTP request, which would otherwise
 * stay reachable, token included, for as long as the connection lives (socket.io's memory-usage advice).
 */
function forgetToken(socket: Socket): void {
  const { handshake } = socket;
  const { authorization: _authorization, ...headers } = handshake.headers;
  handshake.headers = headers;
  if (typeof handshake.auth === 'object' && handshake.auth !== null && 'token' in handshake.auth) {
    const { token: _token, ...auth } = handshake.auth as Record<string, unknown>;
    handshake.auth = auth;
  }
  if ('token' in handshake.query) {
    const { token: _token, ...query } = handshake.query;
    handshake.query = query;
    const url = new URL(handshake.url, 'http://gateway.invalid');
    url.searchParams.delete('token');
    handshake.url = `${url.pathname}${url.search}`;
  }
  // In place of the request, what socket.io reads from it to build the handshake of a later CONNECT on this
  // connection: the same small objects the handshake already holds.
  (socket.conn as unknown as { request: unknown }).request = {
    headers: handshake.headers,
    url: handshake.url,
    _query: handshake.query,
    connection: { encrypted: handshake.secure },
  };
}
