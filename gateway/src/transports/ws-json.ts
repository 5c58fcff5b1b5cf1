/**
 * The plain JSON WebSocket transport (/ws, seed 000's protocol).
 *
 * A raw connection is a `RawSession`: a `ws` WebSocket plus the session's few fields, nothing else. It is
 * registered with socket.io's adapter the way a socket is (in `nsp.sockets`, its rooms in the adapter's
 * `rooms`/`sids`), so broadcasts, fleet-wide fan-out through the Redis Streams adapter, recovery offsets and
 * member counts treat both transports alike; but it carries none of a socket.io Socket's, Client's and
 * Engine.IO connection's state, which is what makes an idle /ws connection cheap (docs/reference/protocol.md).
 *
 * The adapter delivers a broadcast by calling `socket.client.writeToEngine(encodedPackets)` on each member.
 * Every member gets the same encoded string, so it is translated to a JSON frame and framed as a WebSocket
 * message once per broadcast, and the same bytes are written to every member's TCP socket.
 *
 *   socket.io EVENT ["event", {...}, offset?] ->  the payload object, with `id` = the recovery offset
 *   an `error` notice with `close_code`      ->  that notice, then a close frame with the code
 *   a refused handshake                      ->  close frame with its code (4001, 4003, 4029)
 */
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Server } from 'socket.io';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MessageRateLimiter } from '../limits/rate-limit.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import { CLOSE_REASONS, CloseCode, ErrorCode, type CloseCodeValue, type ErrorCodeValue } from '../protocol/codes.ts';
import { MAX_JSON_DEPTH, isClientMessageType, nestedDeeperThan } from '../protocol/client-messages.ts';
import { errorReply } from '../protocol/server-messages.ts';
import { closeCodeOf, type AdmissionRequest, type ClientConnection, type SessionData, type Sessions } from '../session/session.ts';
import { HARD_FRAME_LIMIT_BYTES, originAllowed, requestIp } from './socketio.ts';

/** A session kept for recovery (socket.io's adapter format, shared by both transports). */
interface StoredSession {
  sid: string;
  pid: string;
  rooms: string[];
  data: SessionData;
  missedPackets?: unknown[][];
}

/** The parts of socket.io's adapter (in-memory or Redis Streams) a raw session uses. */
interface RoomAdapter {
  readonly sids: Map<string, Set<string>>;
  addAll(id: string, rooms: Set<string>): void;
  del(id: string, room: string): void;
  delAll(id: string): void;
  persistSession(session: StoredSession): void;
  restoreSession(pid: string, offset: string): Promise<StoredSession | null> | StoredSession | null;
}

interface RawContext {
  readonly adapter: RoomAdapter;
  /** A session that ended deliberately may not be resumed: drop any copy the fleet keeps (redis-fleet.ts). */
  readonly forgetSession: ((pid: string) => void) | undefined;
  readonly sockets: Map<string, unknown>;
  readonly sessions: Sessions;
  readonly metrics: GatewayMetrics;
  readonly maxMessageBytes: number;
  readonly recovery: boolean;
}

/** ws's frame builder (public on the module, untyped in @types/ws); engine.io pre-frames broadcasts with it too. */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] } };
const EMPTY_ROOMS: ReadonlySet<string> = new Set();
const SESSION = Symbol('rawSession');

/** The JSON frame for a message: its payload object (or `{type, data}`), with `id` = its recovery offset. */
export function jsonFrame(event: string, payload: unknown, offset: unknown): string {
  const frame: Record<string, unknown> = typeof payload === 'object' && payload !== null && !Array.isArray(payload)
    ? { ...(payload as Record<string, unknown>) }
    : { type: event, data: payload };
  if (typeof offset === 'string') frame['id'] = offset;
  return JSON.stringify(frame);
}

interface Translated {
  /** The whole WebSocket text frame, header included, written as-is to every member. */
  readonly frame: Buffer;
  readonly closeCode: CloseCodeValue | undefined;
}

/** One-entry cache: a broadcast hands the same encoded string to every member, so it is translated once. */
let lastEncoded: string | undefined;
let lastTranslated: Translated | undefined;

/** socket.io's encoding of an EVENT on the main namespace ("2" + JSON array) as a framed JSON message. */
export function translateEvent(encoded: string): Translated | undefined {
  if (encoded === lastEncoded) return lastTranslated;
  let translated: Translated | undefined;
  try {
    const data: unknown = encoded[0] === '2' ? JSON.parse(encoded.slice(1)) : undefined;
    if (Array.isArray(data) && typeof data[0] === 'string') {
      const [event, payload, offset] = data as [string, unknown, unknown];
      const frame = Buffer.concat(Sender.frame(Buffer.from(jsonFrame(event, payload, offset)), {
        fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false,
      }));
      translated = { frame, closeCode: closeCodeOf(event, payload) };
    }
  } catch {
    translated = undefined;
  }
  lastEncoded = encoded;
  lastTranslated = translated;
  return translated;
}

/** A base64url id like socket.io's (120 random bits). */
function newId(): string {
  return randomBytes(15).toString('base64url');
}

export class RawSession implements ClientConnection {
  readonly id: string;
  /** Recovery session id (socket.io's `pid`), when recovery is on. */
  readonly pid: string | undefined;
  readonly data: SessionData;
  readonly recovered: boolean;
  readonly rateLimiter: MessageRateLimiter;
  private readonly ws: WebSocket;
  private readonly ctx: RawContext;
  private readonly release: () => void;
  private open = true;
  private alive = true;

  constructor(ws: WebSocket, ctx: RawContext, init: { id: string; pid: string | undefined; data: SessionData; recovered: boolean; release: () => void }) {
    this.ws = ws;
    this.ctx = ctx;
    this.id = init.id;
    this.pid = init.pid;
    this.data = init.data;
    this.recovered = init.recovered;
    this.release = init.release;
    this.rateLimiter = ctx.sessions.rateLimiter();
    (ws as unknown as Record<symbol, RawSession>)[SESSION] = this;
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.on('error', onError);
  }

  get transport(): 'ws' {
    return 'ws';
  }

  get sessionId(): string | undefined {
    return this.pid;
  }

  get connected(): boolean {
    return this.open;
  }

  get rooms(): ReadonlySet<string> {
    return this.ctx.adapter.sids.get(this.id) ?? EMPTY_ROOMS;
  }

  /** The adapter writes broadcasts through `socket.client`; a raw session is its own client. */
  get client(): this {
    return this;
  }

  // What socket.io's adapters read or call on any member of nsp.sockets besides writeToEngine (fetchSockets,
  // disconnectSockets, broadcasts with acks), built on demand: nothing per connection, and no token in it.
  get handshake() {
    return { headers: {}, time: '', address: this.data.ip, xdomain: false, secure: false, issued: this.data.connectedAt, url: '/ws', query: {}, auth: {} };
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

  send(event: string, payload: unknown, offset?: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(jsonFrame(event, payload, offset));
  }

  /** Called by the adapter for every broadcast that reaches this session, with socket.io's encoding of it. */
  writeToEngine(encodedPackets: readonly (string | Buffer)[]): void {
    const encoded = encodedPackets[0];
    if (!this.open || typeof encoded !== 'string') return;
    const translated = translateEvent(encoded);
    if (!translated) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      // The same pre-framed bytes for every member (what socket.io does for its own websocket clients).
      (this.ws as unknown as { _sender: { sendFrame(list: Buffer[]): void } })._sender.sendFrame([translated.frame]);
    }
    // The notice is on the wire; close after the broadcast's loop, not inside it.
    const code = translated.closeCode;
    if (code !== undefined) process.nextTick(() => this.closeWith(code, CLOSE_REASONS[code]));
  }

  /** To this session only, now, a message it missed (recovery): a closing notice among them closes it after. */
  replay(packet: unknown[]): void {
    const [event, payload, offset] = packet as [string, unknown, unknown];
    this.send(event, payload, typeof offset === 'string' ? offset : undefined);
    const code = closeCodeOf(event, payload);
    if (code !== undefined) process.nextTick(() => this.closeWith(code, CLOSE_REASONS[code]));
  }

  /** Protocol-level keep-alive on one timer for all raw sessions: a peer that missed the previous ping is dropped. */
  heartbeat(): void {
    if (!this.open) return;
    if (!this.alive) {
      this.ws.terminate();
      this.closed('ping timeout', true);
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /** Server-side close. Only a restart (1012, draining) leaves the session resumable; the others end it. */
  closeWith(code: number, reason: string): void {
    if (!this.open) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    this.closed('forced close', code === CloseCode.serviceRestart);
  }

  /** The client resumed this session on a new connection before this one was noticed dead. */
  superseded(): void {
    if (!this.open) return;
    this.ws.terminate();
    this.closed('forced close', false);
  }

  /** socket.io's Server.close() calls this on every member of `nsp.sockets`. */
  _onclose(reason: string): void {
    if (!this.open) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1001, 'Going Away');
    this.closed(reason, true);
  }

  /**
   * Every way a session ends comes here once: presence, recovery, rooms, counts, limits. `resumable`: the
   * connection was lost or the replica restarts (the client may resume within the window), rather than ended
   * on purpose by the client (a normal close) or by the server (4001, 4004, 4008...).
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

  onPong(): void {
    this.alive = true;
  }

  onFrame(data: Buffer, isBinary: boolean): void {
    if (!this.open) return;
    if (isBinary) return this.reply(ErrorCode.invalidMessage, 'frames must be JSON text');
    if (data.length > this.ctx.maxMessageBytes) {
      return this.reply(ErrorCode.messageTooLarge, `the frame is ${data.length} bytes; the limit is ${this.ctx.maxMessageBytes}`);
    }
    // The server skips ws's own UTF-8 check (it would close with 1007): invalid text gets an error reply instead.
    if (!isUtf8(data)) return this.reply(ErrorCode.invalidJson, 'the frame is not valid UTF-8');
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return this.reply(ErrorCode.invalidJson, 'the frame is not valid JSON');
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return this.reply(ErrorCode.invalidMessage, 'a message must be a JSON object with a "type"');
    }
    // Replies are re-encoded with JSON.stringify, which recurses: a deep enough frame would overflow the stack.
    if (nestedDeeperThan(message, MAX_JSON_DEPTH)) {
      return this.reply(ErrorCode.invalidMessage, `the message is nested more than ${MAX_JSON_DEPTH} levels deep`);
    }
    const { type, ...body } = message as Record<string, unknown>;
    if (typeof type !== 'string') return this.reply(ErrorCode.invalidMessage, 'a message needs "type", a string');
    if (!isClientMessageType(type)) return this.reply(ErrorCode.unknownType, `unknown message type "${type.slice(0, 64)}"`, type.slice(0, 64));
    this.ctx.sessions.message(this, type, body, (reply) => this.sendReply(reply));
  }

  /** Every reply goes back as its own frame; an empty one sends nothing. */
  private sendReply(reply: unknown): void {
    if (reply !== undefined && reply !== null && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(reply));
  }

  private reply(code: ErrorCodeValue, message: string, requestType?: string): void {
    this.ctx.metrics.errorReplies.inc({ code });
    this.sendReply(errorReply(code, message, requestType));
  }
}

// ws listeners shared by every session (`this` is the WebSocket): no closures per connection.
function sessionOf(ws: WebSocket): RawSession {
  return (ws as unknown as Record<symbol, RawSession>)[SESSION]!;
}
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  sessionOf(this).onFrame(data, isBinary);
}
function onPong(this: WebSocket): void {
  sessionOf(this).onPong();
}
function onClose(this: WebSocket, code: number): void {
  // A client that says goodbye (1000) ends its session; anything else is a lost connection it may resume.
  sessionOf(this).closed('transport close', code !== 1000);
}
function onError(this: WebSocket): void {
  sessionOf(this).closed('transport error', true);
}
/** For sockets that get no session (refused): ws emits protocol errors on them too. */
function ignoreError(): void {}

/**
 * Serves /ws upgrades: origin, authentication, limits and (with session_id and last_event_id) recovery are all
 * settled before the upgrade completes, so a session exists only once it is admitted; a refusal is a close
 * frame with its code right after the upgrade (what seed 000's clients expect).
 */
export function serveRawWebSockets(
  httpServer: HttpServer,
  io: Server,
  sessions: Sessions,
  config: GatewayConfig,
  deps: {
    logger: Logger;
    metrics: GatewayMetrics;
    accepting: () => boolean;
    /** A restored session is connected (or was refused): the fleet stops holding deliveries for it. */
    resumed?: (sid: string) => void;
    /** Drops the fleet's copy of a session that ended on purpose. */
    forgetSession?: (pid: string) => void;
  },
): void {
  const nsp = io.of('/');
  const ctx: RawContext = {
    adapter: nsp.adapter as unknown as RoomAdapter,
    forgetSession: deps.forgetSession,
    sockets: nsp.sockets as unknown as Map<string, unknown>,
    sessions,
    metrics: deps.metrics,
    maxMessageBytes: config.limits.maxMessageBytes,
    recovery: config.recoveryWindowSeconds > 0,
  };
  // skipUTF8Validation: frames are checked in onFrame and invalid UTF-8 gets an error reply, where ws would close
  // the connection (1007). clientTracking off: nsp.sockets is the one registry of sessions.
  const wss = new WebSocketServer({ noServer: true, maxPayload: HARD_FRAME_LIMIT_BYTES, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false });
  const heartbeat = setInterval(() => {
    for (const socket of ctx.sockets.values()) if (socket instanceof RawSession) socket.heartbeat();
  }, config.pingIntervalMs + config.pingTimeoutMs);
  heartbeat.unref();

  const upgrade = async (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const ip = requestIp(config, request.headers, request.socket.remoteAddress);
    if (!deps.accepting()) return refuse(503, 'Service Unavailable');
    if (!originAllowed(config.allowedOrigins, request.headers.origin)) {
      deps.metrics.authFailures.inc({ reason: 'origin_not_allowed' });
      deps.logger.warn({ event: 'auth', outcome: 'refused', reason: 'origin_not_allowed', origin: request.headers.origin, ip, transport: 'ws' }, 'origin not allowed');
      return refuse(403, 'Forbidden');
    }
    const url = request.url ?? '/';
    const admissionRequest: AdmissionRequest = { headers: request.headers, url, handshakeAuth: undefined, ip, transport: 'ws' };
    const query = new URL(url, 'http://gateway.invalid').searchParams;
    const resumePid = query.get('session_id');
    const resumeOffset = query.get('last_event_id');
    const resumeRequested = Boolean(resumePid && resumeOffset);

    let admission = await sessions.admit(admissionRequest);
    let restored: StoredSession | null = null;
    if (admission.ok && resumeRequested && ctx.recovery) {
      restored = await Promise.resolve(ctx.adapter.restoreSession(resumePid!, resumeOffset!)).catch(() => null);
      const refusal = restored ? sessions.checkRecovered(restored.data, admission.identity, admissionRequest) : undefined;
      if (refusal) {
        admission.release();
        admission = refusal;
      }
    }
    const done = () => {
      if (restored) deps.resumed?.(restored.sid);
    };
    /** No session comes of this attempt: free its slot, and keep a restored session resumable elsewhere. */
    const abandon = () => {
      if (admission.ok) admission.release();
      if (restored && admission.ok) {
        ctx.adapter.persistSession({ sid: restored.sid, pid: restored.pid, rooms: restored.rooms, data: restored.data });
      }
      done();
    };
    // The client may have gone, or the replica started draining, while the token was being checked.
    if (socket.destroyed || !deps.accepting()) {
      if (!socket.destroyed) refuse(503, 'Service Unavailable');
      return abandon();
    }
    let handed = false;
    wss.handleUpgrade(request, socket, head, (ws) => {
      handed = true;
      if (!admission.ok) {
        ws.on('error', ignoreError);
        ws.close(admission.closeCode, admission.reason);
        return done();
      }
      if (ws.readyState !== WebSocket.OPEN) {
        ws.on('error', ignoreError);
        return abandon();
      }
      const session = new RawSession(ws, ctx, {
        id: restored?.sid ?? newId(),
        pid: ctx.recovery ? (restored?.pid ?? newId()) : undefined,
        data: { identity: admission.identity, ip, connectedAt: restored?.data.connectedAt ?? Date.now() },
        recovered: restored !== null,
        release: admission.release,
      });
      const previous = ctx.sockets.get(session.id);
      if (previous instanceof RawSession) previous.superseded();
      ctx.sockets.set(session.id, session);
      ctx.adapter.addAll(session.id, new Set([session.id, ...(restored?.rooms ?? [])]));
      // What the client missed comes first, in order, then the welcome, then whatever the fleet held meanwhile.
      for (const packet of restored?.missedPackets ?? []) session.replay(packet);
      sessions.opened(session, resumeRequested);
      done();
    });
    // ws refused the handshake itself (bad Sec-WebSocket-* headers, half-closed socket) and answered it.
    if (!handed) abandon();
  };

  httpServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path?.startsWith('/socket.io')) return; // engine.io's own listener
    if (path !== '/ws' && path !== '/ws/') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Until ws takes the socket over, a reset during authentication must not be an unhandled 'error'.
    const onSocketError = () => socket.destroy();
    socket.on('error', onSocketError);
    upgrade(request, socket, head)
      .catch((error: unknown) => {
        deps.logger.error({ err: error }, 'raw websocket upgrade failed');
        socket.destroy();
      })
      .finally(() => socket.off('error', onSocketError));
  });
}
