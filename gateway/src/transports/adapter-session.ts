/**
 * A connection served on a bare `ws` WebSocket and registered with socket.io's adapter the way a socket is: in
 * `nsp.sockets`, its rooms in the adapter's `rooms`/`sids`. Broadcasts, fleet-wide fan-out through the Redis
 * Streams adapter, recovery offsets and member counts treat it like any socket, but it carries none of a
 * socket.io Socket's, Client's and Engine.IO connection's state: that is what makes an idle connection cheap.
 *
 * Two transports build on it: /ws with seed 000's JSON frames (ws-json.ts) and socket.io clients that open with
 * a WebSocket (socketio-ws.ts). They differ in framing, in the handshake and in the keep-alive; the rest (the
 * registration, how a session ends and what recovery keeps of it) is here, once.
 *
 * The adapter delivers a broadcast by calling `socket.client.writeToEngine(encodedPackets, options)` on each
 * member with the same encoding, so each transport frames a broadcast once and writes the same bytes to every
 * member's TCP socket.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Server } from 'socket.io';
import type { WebSocket } from 'ws';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import { CLOSE_REASONS, type CloseCodeValue } from '../protocol/codes.ts';
import { closeCodeOf, type Admission, type AdmissionRequest, type ClientConnection, type SessionData, type Sessions, type TransportName } from '../session/session.ts';
import type { MessageRateLimiter } from '../limits/rate-limit.ts';
import { MemorySessionStore } from '../fanout/memory-store.ts';
import type { BroadcastOptions } from './broadcast-packets.ts';
import { originAllowed, requestIp } from './socketio.ts';

/** A session kept for recovery (socket.io's adapter format, shared by every transport). */
export interface StoredSession {
  sid: string;
  pid: string;
  rooms: string[];
  data: SessionData;
  missedPackets?: unknown[][];
}

/** The parts of socket.io's adapter (in-memory or Redis Streams) a session on a bare WebSocket uses. */
export interface RoomAdapter {
  readonly sids: Map<string, Set<string>>;
  addAll(id: string, rooms: Set<string>): void;
  del(id: string, room: string): void;
  delAll(id: string): void;
  persistSession(session: StoredSession): void;
  restoreSession(pid: string, offset: string): Promise<StoredSession | null> | StoredSession | null;
  broadcast(packet: { type: number; nsp: string; data: unknown[] }, options: { rooms: Set<string>; except: Set<string>; flags: Record<string, boolean> }): void;
}

/** What a transport on a bare WebSocket needs from the gateway besides the sessions. */
export interface WebSocketTransportDeps {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly accepting: () => boolean;
  /** A restored session is connected (or was refused): the fleet stops holding deliveries for it. */
  readonly resumed?: (sid: string) => void;
  /** Drops the fleet's copy of a session that ended on purpose. */
  readonly forgetSession?: (pid: string) => void;
}

export interface SessionContext {
  readonly adapter: RoomAdapter;
  /** A session that ended deliberately may not be resumed: drop any copy the fleet keeps (redis-fleet.ts). */
  readonly forgetSession: ((pid: string) => void) | undefined;
  readonly sockets: Map<string, unknown>;
  readonly sessions: Sessions;
  readonly metrics: GatewayMetrics;
  readonly maxMessageBytes: number;
  readonly recovery: boolean;
}

/** What the ws listeners call: a session, or (socket.io) the connection before its CONNECT packet. */
export interface FrameHandler {
  onFrame(data: Buffer, isBinary: boolean): void;
  onPong(): void;
  onClose(code: number): void;
  onError(): void;
}

const HANDLER = Symbol('frameHandler');
const EMPTY_ROOMS: ReadonlySet<string> = new Set();

// ws listeners shared by every connection (`this` is the WebSocket): no closures per connection.
function handlerOf(ws: WebSocket): FrameHandler {
  return (ws as unknown as Record<symbol, FrameHandler>)[HANDLER]!;
}
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  handlerOf(this).onFrame(data, isBinary);
}
function onPong(this: WebSocket): void {
  handlerOf(this).onPong();
}
function onClose(this: WebSocket, code: number): void {
  handlerOf(this).onClose(code);
}
function onError(this: WebSocket): void {
  handlerOf(this).onError();
}

/** Routes the WebSocket's events to `handler` (the first call adds the listeners, later ones switch handlers). */
export function handleFrames(ws: WebSocket, handler: FrameHandler): void {
  const slots = ws as unknown as Record<symbol, FrameHandler>;
  const first = slots[HANDLER] === undefined;
  slots[HANDLER] = handler;
  if (!first) return;
  ws.on('message', onMessage);
  ws.on('pong', onPong);
  ws.on('close', onClose);
  ws.on('error', onError);
}

/** A base64url id like socket.io's (120 random bits): session ids and recovery ids. */
export function newId(): string {
  return randomBytes(15).toString('base64url');
}

/** For sockets that get no session (refused): ws emits protocol errors on them too. */
export function ignoreError(): void {}

/**
 * Answers an upgrade with an HTTP error. Node takes its own 'error' listener off a socket before it emits
 * 'upgrade': without one, a client that resets while the answer is written would crash the process.
 */
export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.on('error', ignoreError);
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** ws's frame writer: writes pre-framed bytes (header and payload) as they are. */
export function writeFrame(ws: WebSocket, frame: readonly Buffer[]): void {
  (ws as unknown as { _sender: { sendFrame(list: readonly Buffer[]): void } })._sender.sendFrame(frame);
}

export abstract class AdapterSession implements ClientConnection, FrameHandler {
  abstract readonly transport: TransportName;
  readonly id: string;
  /** Recovery session id (socket.io's `pid`), when recovery is on. */
  readonly pid: string | undefined;
  readonly data: SessionData;
  readonly recovered: boolean;
  readonly rateLimiter: MessageRateLimiter;
  protected readonly ws: WebSocket;
  protected readonly ctx: SessionContext;
  private readonly release: () => void;
  protected open = true;
  /** Heard from since the last keep-alive check. */
  protected alive = true;

  constructor(ws: WebSocket, ctx: SessionContext, init: { id: string; pid: string | undefined; data: SessionData; recovered: boolean; release: () => void; rateLimiter?: MessageRateLimiter }) {
    this.ws = ws;
    this.ctx = ctx;
    this.id = init.id;
    this.pid = init.pid;
    this.data = init.data;
    this.recovered = init.recovered;
    this.release = init.release;
    this.rateLimiter = init.rateLimiter ?? ctx.sessions.rateLimiter();
    handleFrames(ws, this);
  }

  /** The path the client connected on (what fetchSockets reports as the handshake's url). */
  protected abstract readonly path: string;
  /** The transport's text frame for one message to this client, with its recovery offset when it has one. */
  protected abstract frame(event: string, payload: unknown, offset: string | undefined): string;
  /** Called by the adapter for every broadcast that reaches this session. */
  abstract writeToEngine(encodedPackets: readonly (string | Buffer)[], options?: BroadcastOptions): void;
  abstract onFrame(data: Buffer, isBinary: boolean): void;
  /** Server-side close, with the close code a notice asked for. */
  abstract closeWith(code: number, reason: string): void;
  /** The transport's keep-alive probe; the client's answer calls onPong. */
  protected abstract ping(): void;

  get sessionId(): string | undefined {
    return this.pid;
  }

  get connected(): boolean {
    return this.open;
  }

  get rooms(): ReadonlySet<string> {
    return this.ctx.adapter.sids.get(this.id) ?? EMPTY_ROOMS;
  }

  /** The adapter writes broadcasts through `socket.client`; the session is its own client. */
  get client(): this {
    return this;
  }

  // What socket.io's adapters read or call on any member of nsp.sockets besides writeToEngine (fetchSockets,
  // disconnectSockets, broadcasts with acks), built on demand: nothing per connection, and no token in it.
  get handshake() {
    return { headers: {}, time: '', address: this.data.ip, xdomain: false, secure: false, issued: this.data.connectedAt, url: this.path, query: {}, auth: {} };
  }

  get acks(): Map<number, unknown> {
    return new Map();
  }

  disconnect(): this {
    this.closeWith(1000, 'Normal Closure');
    return this;
  }

  join(rooms: readonly string[]): void {
    if (this.open) this.ctx.adapter.addAll(this.id, new Set(rooms));
  }

  leave(room: string): void {
    this.ctx.adapter.del(this.id, room);
  }

  /** To this client only, now. */
  send(event: string, payload: unknown, offset?: string): void {
    if (this.keptForRecovery(event, payload, offset)) return;
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(this.frame(event, payload, offset));
  }

  /** To this session only, now, a message it missed (recovery): a closing notice among them closes it after. */
  replay(packet: unknown[]): void {
    const [event, payload, offset] = packet as [string, unknown, unknown];
    this.send(event, payload, typeof offset === 'string' ? offset : undefined);
    this.closeAfter(closeCodeOf(event, payload));
  }

  /**
   * The welcome without a recovery offset, on one replica with the in-memory store (MemorySessionStore): handed to the
   * adapter, which keeps it and gives it an offset (what socket.io does with socket.emit), so the client has a
   * recovery point before its first broadcast. Only the welcome: replies and notices are not replayed. True when
   * the adapter took it.
   */
  private keptForRecovery(event: string, payload: unknown, offset: string | undefined): boolean {
    const { ctx } = this;
    if (event !== 'connected' || offset !== undefined || !ctx.recovery || !(ctx.adapter instanceof MemorySessionStore)) return false;
    if (!this.open || ctx.sockets.get(this.id) !== this) return true;
    ctx.adapter.broadcast({ type: 2, nsp: '/', data: [event, payload] }, { rooms: new Set([this.id]), except: new Set(), flags: {} });
    return true;
  }

  /** A notice that ends the connection is on the wire: close after the current broadcast's loop, not inside it. */
  protected closeAfter(code: CloseCodeValue | undefined): void {
    if (code !== undefined) process.nextTick(() => this.closeWith(code, CLOSE_REASONS[code]));
  }

  /**
   * The client resumed this session on a new connection before this one was noticed dead. The id and its rooms
   * now belong to the new connection (either transport): this one leaves them alone.
   */
  superseded(): void {
    if (!this.open) return;
    if (this.ctx.sockets.get(this.id) === this) this.ctx.sockets.delete(this.id);
    this.ws.terminate();
    this.closed('forced close', false);
  }

  /** socket.io's Server.close() calls this on every member of `nsp.sockets`. */
  _onclose(reason: string): void {
    if (!this.open) return;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1001, 'Going Away');
    this.closed(reason, true);
  }

  /**
   * Every way a session ends comes here once: presence, recovery, rooms, counts, limits. `resumable`: the
   * connection was lost or the replica restarts (the client may resume within the window), rather than ended
   * on purpose by the client or by the server (4001, 4004, 4008...).
   */
  closed(reason: string, resumable: boolean): void {
    if (!this.open) return;
    const { ctx } = this;
    ctx.sessions.closing(this);
    if (ctx.recovery && this.pid) {
      if (resumable) ctx.adapter.persistSession({ sid: this.id, pid: this.pid, rooms: [...this.rooms], data: this.data });
      else ctx.forgetSession?.(this.pid);
    }
    this.open = false;
    // A session resumed on a new connection has taken this id over: leave its registration alone.
    if (ctx.sockets.get(this.id) === this) {
      ctx.sockets.delete(this.id);
      ctx.adapter.delAll(this.id);
    }
    ctx.sessions.closed(this, reason);
    this.release();
  }

  /** One keep-alive check, from a timer shared by all sessions of the transport: silent since the last one, dropped. */
  heartbeat(): void {
    if (!this.open) return;
    if (!this.alive) {
      this.ws.terminate();
      this.closed('ping timeout', true);
      return;
    }
    this.alive = false;
    this.ping();
  }

  onPong(): void {
    this.alive = true;
  }

  onClose(_code: number): void {
    this.closed('transport close', true);
  }

  onError(): void {
    this.closed('transport error', true);
  }
}

/**
 * Makes `session` the live holder of its id. A resumed id may still be held by a connection not yet seen dead,
 * on either transport: that one is retired first, and the id keeps its live rooms as well as the restored ones.
 */
export function register(ctx: SessionContext, session: AdapterSession, restoredRooms: readonly string[]): void {
  // The live holder's rooms are the newest (the in-memory store only saves a session when it closes).
  const rooms = new Set([session.id, ...restoredRooms, ...(ctx.adapter.sids.get(session.id) ?? [])]);
  const previous = ctx.sockets.get(session.id);
  if (previous instanceof AdapterSession) previous.superseded();
  else if (previous) (previous as { disconnect(close: boolean): void }).disconnect(true);
  ctx.adapter.delAll(session.id);
  ctx.sockets.set(session.id, session);
  ctx.adapter.addAll(session.id, rooms);
}

/** Runs `tick` on every live session of one kind, on one timer for all of them. */
export function everySession<T extends AdapterSession>(ctx: SessionContext, kind: abstract new (...args: never[]) => T, periodMs: number, tick: (session: T) => void): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const socket of ctx.sockets.values()) if (socket instanceof kind) tick(socket);
  }, periodMs);
  return timer.unref();
}

export function sessionContext(io: Server, sessions: Sessions, config: GatewayConfig, deps: WebSocketTransportDeps): SessionContext {
  const nsp = io.of('/');
  return {
    adapter: nsp.adapter as unknown as RoomAdapter,
    forgetSession: deps.forgetSession,
    sockets: nsp.sockets as unknown as Map<string, unknown>,
    sessions,
    metrics: deps.metrics,
    maxMessageBytes: config.limits.maxMessageBytes,
    recovery: config.recoveryWindowSeconds > 0,
  };
}

/**
 * The checks before a WebSocket handshake: the replica accepts connections, and the Origin is allowed. Answers
 * the refusals with their HTTP status; the client's address when the upgrade may go on.
 */
export function upgradeAllowed(request: IncomingMessage, socket: Duplex, config: GatewayConfig, deps: WebSocketTransportDeps, transport: TransportName): string | undefined {
  const ip = requestIp(config, request.headers, request.socket.remoteAddress);
  if (!deps.accepting()) return void refuseUpgrade(socket, 503, 'Service Unavailable');
  if (!originAllowed(config.allowedOrigins, request.headers.origin)) {
    deps.metrics.authFailures.inc({ reason: 'origin_not_allowed' });
    deps.logger.warn({ event: 'auth', outcome: 'refused', reason: 'origin_not_allowed', origin: request.headers.origin, ip, transport }, 'origin not allowed');
    return void refuseUpgrade(socket, 403, 'Forbidden');
  }
  return ip;
}

/**
 * Admission, and the session to resume when the client asked for one: only the identity that owned it may take
 * it over (else the admission becomes that refusal).
 */
export async function admitAndRestore(ctx: SessionContext, request: AdmissionRequest, resume: { pid: string; offset: string } | undefined): Promise<{ admission: Admission; restored: StoredSession | null }> {
  let admission = await ctx.sessions.admit(request);
  let restored: StoredSession | null = null;
  if (admission.ok && resume && ctx.recovery) {
    restored = await Promise.resolve(ctx.adapter.restoreSession(resume.pid, resume.offset)).catch(() => null);
    const refusal = restored ? ctx.sessions.checkRecovered(restored.data, admission.identity, request) : undefined;
    if (refusal) {
      admission.release();
      admission = refusal;
    }
  }
  return { admission, restored };
}

/** A restored session that no connection took (the client left meanwhile): it stays resumable elsewhere. */
export function keepResumable(ctx: SessionContext, restored: StoredSession): void {
  ctx.adapter.persistSession({ sid: restored.sid, pid: restored.pid, rooms: restored.rooms, data: restored.data });
}

/** A new session for an admitted connection, or the restored one it resumes. */
export function sessionInit(ctx: SessionContext, identity: SessionData['identity'], ip: string, restored: StoredSession | null, release: () => void) {
  return {
    id: restored?.sid ?? newId(),
    pid: ctx.recovery ? (restored?.pid ?? newId()) : undefined,
    data: { identity, ip, connectedAt: restored?.data.connectedAt ?? Date.now() },
    recovered: restored !== null,
    release,
  };
}
