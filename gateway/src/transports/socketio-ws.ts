/**
 * socket.io clients that open with a WebSocket (`transports: ['websocket']`, what mobile and server clients
 * use), served on a bare `ws` WebSocket without engine.io's and socket.io's per-connection objects: an idle
 * connection costs what a /ws one costs (adapter-session.ts). Clients that start with HTTP long-polling, and the
 * upgrades from it, start with engine.io (socketio.ts); once such a connection has upgraded to a WebSocket, it
 * is taken from engine.io and served here too (`takeOver`), so it ends up as cheap. Both kinds are the same to
 * the session, the adapter and the fleet.
 *
 * The wire protocol is what socket.io 4 speaks over a WebSocket (Engine.IO v4, socket.io v5), on the main
 * namespace, text only:
 *
 *   server: 0{"sid","upgrades":[],"pingInterval","pingTimeout","maxPayload"}   Engine.IO open
 *   client: 40{auth}            CONNECT with the auth object (token; pid and offset when it recovers)
 *   server: 40{"sid","pid"}     connected (missed events follow when recovered), or 44{"message","data"} refused
 *   both:   42[event, payload, offset?], 42<id>[...] with an ack, 43<id>[reply]
 *   server: 2 every pingInterval; client: 3 (pong) or it is dropped ("ping timeout")
 *   either: 41 ends the session (server: after a closing notice, or disconnectSockets)
 *
 * A client that sends what socket.io's own decoder refuses (binary attachments, packets that do not parse, a
 * ping) is dropped with "parse error", as socket.io drops it.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import type { Server, Socket } from 'socket.io';
import { WebSocket, WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config.ts';
import { CloseCode } from '../protocol/codes.ts';
import type { MessageRateLimiter } from '../limits/rate-limit.ts';
import { closeCodeOf, type AdmissionRequest, type SessionData, type Sessions } from '../session/session.ts';
import {
  AdapterSession, admitAndRestore, everySession, handleFrames, ignoreError, keepResumable, newId, register, sessionContext, sessionInit,
  upgradeAllowed, writeFrame, type FrameHandler, type WebSocketTransportDeps,
} from './adapter-session.ts';
import { HARD_FRAME_LIMIT_BYTES } from './socketio.ts';
import { broadcastPacket, engineIoFrame, type BroadcastOptions } from './broadcast-packets.ts';

/** A socket.io packet as the client sent it (socket.io-parser's format, text packets only). */
export interface SioPacket {
  readonly type: number;
  readonly nsp: string;
  readonly id?: number;
  readonly data?: unknown;
}

const CONNECT = 0;
const DISCONNECT = 1;
const EVENT = 2;
const ACK = 3;
/** CONNECT packets refused on one connection before it is dropped. */
const MAX_CONNECT_ATTEMPTS = 3;
/** Event names socket.io keeps for itself: its decoder refuses them from a client. */
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

/**
 * Decodes a socket.io packet (the part after the Engine.IO "4"), as socket.io-parser does for text: type,
 * optional namespace ("/name,"), optional ack id, optional JSON. undefined when socket.io would refuse it.
 */
export function parseSioPacket(text: string): SioPacket | undefined {
  const type = text.charCodeAt(0) - 48;
  if (!(type >= CONNECT && type <= ACK)) return undefined;
  let i = 1;
  let nsp = '/';
  if (text[i] === '/') {
    const comma = text.indexOf(',', i);
    nsp = comma < 0 ? text.slice(i) : text.slice(i, comma);
    i = comma < 0 ? text.length : comma + 1;
  }
  let id: number | undefined;
  const digitsStart = i;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  if (i > digitsStart) id = Number(text.slice(digitsStart, i));
  let data: unknown;
  if (i < text.length) {
    try {
      data = JSON.parse(text.slice(i));
    } catch {
      return undefined;
    }
  }
  switch (type) {
    case CONNECT:
      if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) return undefined;
      break;
    case DISCONNECT:
      if (data !== undefined) return undefined;
      break;
    case EVENT:
      if (!Array.isArray(data) || !(typeof data[0] === 'string' || typeof data[0] === 'number') || RESERVED_EVENTS.has(data[0] as string)) return undefined;
      break;
    case ACK:
      if (!Array.isArray(data) || id === undefined) return undefined;
      break;
  }
  return { type, nsp, ...(id !== undefined ? { id } : {}), ...(data !== undefined ? { data } : {}) };
}

/** The Engine.IO message carrying a socket.io EVENT. */
export function eventFrame(event: string, payload: unknown, offset?: string): string {
  return `42${JSON.stringify(offset === undefined ? [event, payload] : [event, payload, offset])}`;
}

export class SocketIoWsSession extends AdapterSession {
  readonly transport = 'socketio' as const;
  protected readonly path = '/socket.io/';

  protected frame(event: string, payload: unknown, offset: string | undefined): string {
    return eventFrame(event, payload, offset);
  }

  writeToEngine(encodedPackets: readonly (string | Buffer)[], options?: BroadcastOptions): void {
    const encoded = encodedPackets[0];
    if (!this.open || typeof encoded !== 'string' || encodedPackets.length !== 1) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      // Framed once per broadcast, as engine.io's websocket transport would: the same bytes for everyone.
      writeFrame(this.ws, engineIoFrame(encoded));
    }
    // Only an `error` event can be a closing notice; look no further into anything else.
    if (encoded.startsWith('2["error",')) {
      const data = (broadcastPacket(options) ?? parseSioPacket(encoded))?.data;
      const [event, payload] = Array.isArray(data) ? (data as unknown[]) : [];
      this.closeAfter(closeCodeOf(event, payload));
    }
  }

  /**
   * What socket.io's Socket calls on its Client to write a packet. A socket taken over from engine.io gets this
   * session as its client: the replies to messages it was still handling when it was taken over come out here.
   */
  _packet(packet: { type: number; id?: number; data?: unknown }): void {
    if (this.open && this.ws.readyState === WebSocket.OPEN) this.ws.send(`4${packet.type}${packet.id ?? ''}${packet.data === undefined ? '' : JSON.stringify(packet.data)}`);
  }

  /** Engine.IO v4 keep-alive: the server sends a ping packet, the client answers with a pong packet. */
  protected ping(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send('2');
  }

  /**
   * As the engine.io path does it: on 1012 (draining) a transport close, so the client reconnects by itself and
   * recovers its session elsewhere; otherwise a socket.io DISCONNECT, after which the client stays away.
   */
  closeWith(code: number, _reason: string): void {
    if (!this.open) return;
    const restart = code === CloseCode.serviceRestart;
    if (this.ws.readyState === WebSocket.OPEN) {
      if (restart) this.ws.close(1001, 'Going Away');
      else {
        this.ws.send('41');
        this.ws.close(1000, 'Normal Closure');
      }
    }
    // The reasons engine.io's path reports for the same two closes.
    this.closed(restart ? 'forced close' : 'server namespace disconnect', restart);
  }

  onFrame(data: Buffer, isBinary: boolean): void {
    if (!this.open) return;
    this.alive = true;
    const text = isBinary ? undefined : data.toString('utf8');
    switch (text?.[0]) {
      case '3': // pong
      case '6': // noop (a client that upgraded from polling may still send one)
        return;
      case '4':
        break;
      case '1': // Engine.IO close
        this.ws.terminate();
        return this.closed('transport close', true);
      default:
        return this.dropForParseError();
    }
    const packet = parseSioPacket(text.slice(1));
    if (!packet) return this.dropForParseError();
    if (packet.nsp !== '/') {
      // Other namespaces do not exist here; socket.io answers a CONNECT to one so, and ignores the rest.
      if (packet.type === CONNECT) this.ws.send(`44${packet.nsp},${JSON.stringify({ message: 'Invalid namespace' })}`);
      return;
    }
    switch (packet.type) {
      case EVENT: {
        const [event, payload] = packet.data as [string | number, unknown];
        const ack = packet.id === undefined ? undefined : (reply: unknown) => {
          if (this.open && this.ws.readyState === WebSocket.OPEN) this.ws.send(`43${packet.id}${JSON.stringify([reply])}`);
        };
        this.ctx.sessions.message(this, event, payload, ack);
        return;
      }
      case DISCONNECT:
        this.ws.close(1000, 'Normal Closure');
        return this.closed('client namespace disconnect', false);
      default:
        // A second CONNECT, or an ack for something the server never asked: nothing to do.
        return;
    }
  }

  private dropForParseError(): void {
    this.ws.terminate();
    this.closed('parse error', false);
  }
}

/** The connection between the WebSocket handshake and the client's CONNECT packet: no session yet. */
class PendingConnection implements FrameHandler {
  private readonly ws: WebSocket;
  private request: IncomingMessage | undefined;
  private readonly ip: string;
  private readonly connectWithin: NodeJS.Timeout;
  private readonly admitted: (auth: Record<string, unknown>, request: IncomingMessage, ip: string) => void;
  private settled = false;
  private refusals = 0;

  /** The open PendingConnections' sockets, for the server's close (no closure per connection: it would keep the request). */
  private readonly pendings: Set<WebSocket>;

  constructor(ws: WebSocket, request: IncomingMessage, ip: string, timeoutMs: number, pendings: Set<WebSocket>, admitted: PendingConnection['admitted']) {
    this.ws = ws;
    this.pendings = pendings;
    pendings.add(ws);
    this.request = request;
    this.ip = ip;
    this.admitted = admitted;
    // socket.io closes a connection that does not CONNECT within its connectTimeout; the client gives up sooner.
    this.connectWithin = setTimeout(() => this.drop(), timeoutMs);
    handleFrames(ws, this);
  }

  onFrame(data: Buffer, isBinary: boolean): void {
    if (this.settled) return;
    const text = isBinary ? undefined : data.toString('utf8');
    if (text === '3' || text === '6') return; // pong, noop
    const packet = text?.[0] === '4' ? parseSioPacket(text.slice(1)) : undefined;
    if (!packet || packet.type !== CONNECT) return this.drop();
    if (packet.nsp !== '/') {
      this.ws.send(`44${packet.nsp},${JSON.stringify({ message: 'Invalid namespace' })}`);
      return;
    }
    this.settled = true;
    // The client's ping timer runs from the open packet; restart it before a possibly slow admission.
    this.ws.send('2');
    this.admitted((packet.data ?? {}) as Record<string, unknown>, this.request!, this.ip);
  }

  /**
   * The admission refused this CONNECT: the client may try again on the same connection, as with socket.io, but
   * not forever (each try costs a token verification).
   */
  refused(): void {
    this.refusals += 1;
    if (this.refusals >= MAX_CONNECT_ATTEMPTS) this.drop();
    else this.settled = false;
  }

  /** A session took over the connection: the request (headers, token) is no longer needed. */
  done(): void {
    clearTimeout(this.connectWithin);
    this.request = undefined;
    this.pendings.delete(this.ws);
  }

  onPong(): void {}

  onClose(): void {
    clearTimeout(this.connectWithin);
    this.settled = true;
    this.request = undefined;
    this.pendings.delete(this.ws);
  }

  onError(): void {
    this.onClose();
  }

  private drop(): void {
    this.onClose();
    this.ws.terminate();
  }
}

/** engine.io's connection and its WebSocket transport, as far as a take-over reads and changes them. */
interface EngineConnection extends EventEmitter {
  readyState: string;
  readonly writeBuffer: readonly unknown[];
  readonly transport: { readonly name: string; readonly writable: boolean; readyState: string; readonly socket?: unknown };
  onClose(reason: string): void;
}

/** socket.io's Client of one engine.io connection: its listeners on that connection. */
interface SocketIoClient {
  readonly sockets: Map<string, unknown>;
  /** Set while a binary packet waits for its attachments. */
  readonly decoder: { reconstructor?: unknown };
  ondata(...args: unknown[]): void;
  onerror(...args: unknown[]): void;
  onclose(...args: unknown[]): void;
}

/** Why a socket was not taken over: `busy` may pass (a write in progress), `kept` will not. */
export type TakeOverRefusal = 'busy' | 'kept';

/** What a taken-over socket's session keeps of it besides the socket itself. */
export interface CarriedOver {
  /** Its connection-limits slot. */
  readonly release: () => void;
  readonly rateLimiter: MessageRateLimiter;
}

/** Whether engine.io would see this upgrade as a new Engine.IO v4 connection opening with a WebSocket. */
function opensWithWebSocket(request: IncomingMessage): boolean {
  const query = new URL(request.url ?? '/', 'http://gateway.invalid').searchParams;
  return query.get('EIO') === '4' && query.get('transport') === 'websocket' && !query.has('sid');
}

/**
 * Takes the socket.io upgrades that open with a WebSocket away from engine.io (it keeps the others: polling
 * and the upgrades from it). Origin and draining are checked before the WebSocket handshake, as engine.io does;
 * authentication, limits and recovery when the CONNECT packet comes.
 */
export function serveSocketIoWebSockets(io: Server, sessions: Sessions, config: GatewayConfig, deps: WebSocketTransportDeps): {
  close(): void;
  takeOver(socket: Socket, carried: CarriedOver): SocketIoWsSession | TakeOverRefusal;
} {
  const ctx = sessionContext(io, sessions, config, deps);
  const openPacket = `0${JSON.stringify({ upgrades: [], pingInterval: config.pingIntervalMs, pingTimeout: config.pingTimeoutMs, maxPayload: HARD_FRAME_LIMIT_BYTES })}`;
  const wss = new WebSocketServer({ noServer: true, maxPayload: HARD_FRAME_LIMIT_BYTES, perMessageDeflate: false, clientTracking: false });
  const heartbeat = everySession(ctx, SocketIoWsSession, config.pingIntervalMs, (session) => session.heartbeat());
  /** Connections without a session yet: io.close() does not know them. */
  const pendings = new Set<WebSocket>();

  const connect = async (pending: PendingConnection, ws: WebSocket, auth: Record<string, unknown>, request: IncomingMessage, ip: string) => {
    const admissionRequest: AdmissionRequest = { headers: request.headers, url: request.url ?? '/', handshakeAuth: auth, ip, transport: 'socketio' };
    const resumeRequested = typeof auth['pid'] === 'string';
    const resume = resumeRequested && typeof auth['offset'] === 'string' ? { pid: auth['pid'] as string, offset: auth['offset'] } : undefined;
    const { admission, restored } = await admitAndRestore(ctx, admissionRequest, resume);
    let taken = false;
    try {
      if (!admission.ok) {
        if (ws.readyState === WebSocket.OPEN) ws.send(`44${JSON.stringify({ message: admission.reason, data: { code: admission.closeCode, reason: admission.reason } })}`);
        pending.refused();
        return;
      }
      // The client went away, or the replica started draining, while the token was being checked: no session
      // here (a draining replica's client reconnects elsewhere), and a restored one stays resumable.
      if (ws.readyState !== WebSocket.OPEN || !deps.accepting()) {
        if (ws.readyState === WebSocket.OPEN) ws.close(1001, 'Going Away');
        if (restored) keepResumable(ctx, restored);
        return;
      }
      pending.done();
      const session = new SocketIoWsSession(ws, ctx, sessionInit(ctx, admission.identity, ip, restored, admission.release));
      taken = true;
      register(ctx, session, restored?.rooms ?? []);
      ws.send(`40${JSON.stringify({ sid: session.id, pid: session.pid })}`);
      // The client's ping timer has run since the open packet, through the admission: restart it.
      ws.send('2');
      // What the client missed comes first, in order, then the welcome, then whatever the fleet held meanwhile.
      for (const packet of restored?.missedPackets ?? []) session.replay(packet);
      sessions.opened(session, resumeRequested);
    } finally {
      if (admission.ok && !taken) admission.release();
      if (restored) deps.resumed?.(restored.sid);
    }
  };

  const upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ip = upgradeAllowed(request, socket, config, deps, 'socketio');
    if (ip === undefined) return;
    wss.handleUpgrade(request, socket, head, (ws) => {
      if (ws.readyState !== WebSocket.OPEN) {
        ws.on('error', ignoreError);
        return;
      }
      // The Engine.IO id only names the connection to engine.io's polling; nothing here uses it.
      ws.send(openPacket.replace('{', `{"sid":"${newId()}",`));
      const pending: PendingConnection = new PendingConnection(ws, request, ip, config.pingIntervalMs + config.pingTimeoutMs, pendings, (auth, req, from) => {
        connect(pending, ws, auth, req, from).catch((error: unknown) => {
          deps.logger.error({ err: error }, 'socket.io connect failed');
          ws.terminate();
        });
      });
    });
  };

  /**
   * A socket.io socket whose engine.io connection has upgraded from long-polling to a WebSocket becomes a session
   * on that WebSocket, under the same id, rooms, identity and limits slot: engine.io and socket.io let go of the
   * connection without closing it, so nothing is announced, counted or persisted, and the client notices
   * nothing. Refused while engine.io is writing (`busy`: try again later) and for what a session does not
   * serve (`kept`: another namespace on the same connection, acks the server waits for, a binary packet half
   * received, a compressed WebSocket: pre-framed broadcasts would overtake its queued replies).
   */
  const takeOver = (socket: Socket, { release, rateLimiter }: CarriedOver): SocketIoWsSession | TakeOverRefusal => {
    const conn = socket.conn as unknown as EngineConnection;
    const client = socket.client as unknown as SocketIoClient;
    const { transport } = conn;
    // engine.io's own copy of `ws` (its version range may differ from ours): the same WebSocket class otherwise.
    const ws = transport.socket as WebSocket | undefined;
    if (!socket.connected || conn.readyState !== 'open' || transport.name !== 'websocket' || ws?.readyState !== WebSocket.OPEN) return 'kept';
    if (client.sockets.size !== 1 || (socket as unknown as { acks: Map<number, unknown> }).acks.size > 0 || ctx.sockets.get(socket.id) !== socket) return 'kept';
    if (client.decoder.reconstructor !== undefined || ws.extensions !== '') return 'kept';
    if (!transport.writable || conn.writeBuffer.length > 0) return 'busy';
    // engine.io's transport stops listening to the WebSocket, and is marked closed so that engine.io's clean-up
    // does not close it.
    ws.removeAllListeners('message').removeAllListeners('close').removeAllListeners('error');
    transport.readyState = 'closed';
    // socket.io must not see the engine.io connection close (it would end the socket: leave the rooms, announce,
    // persist); nor may the limits slot be released.
    conn.removeListener('data', client.ondata).removeListener('error', client.onerror).removeListener('close', client.onclose);
    conn.removeListener('close', release);
    socket.removeListener('disconnect', release);
    // Nor may the socket's own listeners act on it any more (its closing-notice handler would close it).
    socket.offAny().offAnyOutgoing();
    // Its timers stop and engine.io's server forgets it.
    conn.onClose('transport close');
    const pid = (socket as unknown as { pid?: string }).pid;
    const session = new SocketIoWsSession(ws, ctx, { id: socket.id, pid, data: socket.data as SessionData, recovered: socket.recovered, release, rateLimiter });
    ctx.sockets.set(socket.id, session);
    (socket as unknown as { client: unknown }).client = session;
    // The client's ping timer runs from engine.io's last ping: restart it before this transport's first one.
    ws.send('2');
    return session;
  };

  const engine = io.engine as unknown as { handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void };
  const engineUpgrade = engine.handleUpgrade.bind(engine);
  engine.handleUpgrade = (request, socket, head) => (opensWithWebSocket(request) ? upgrade(request, socket, head) : engineUpgrade(request, socket, head));
  return {
    takeOver,
    close() {
      clearInterval(heartbeat);
      for (const ws of pendings) ws.terminate();
      pendings.clear();
    },
  };
}
