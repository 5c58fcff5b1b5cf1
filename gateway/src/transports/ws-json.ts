/**
 * The plain JSON WebSocket transport (/ws, seed 000's protocol).
 *
 * A raw connection is a `RawSession`: a `ws` WebSocket plus the session's few fields, registered with socket.io's
 * adapter like a socket (adapter-session.ts). A broadcast is translated to a JSON frame and framed as a WebSocket
 * message once, and the same bytes go to every member.
 *
 *   socket.io EVENT ["event", {...}, offset?] ->  the payload object, with `id` = the recovery offset
 *   an `error` notice with `close_code`      ->  that notice, then a close frame with the code
 *   a refused handshake                      ->  close frame with its code (4001, 4003, 4029)
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Server } from 'socket.io';
import { WebSocket, WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config.ts';
import { CloseCode, ErrorCode, type CloseCodeValue, type ErrorCodeValue } from '../protocol/codes.ts';
import { MAX_JSON_DEPTH, isClientMessageType, nestedDeeperThan } from '../protocol/client-messages.ts';
import { errorReply } from '../protocol/server-messages.ts';
import { closeCodeOf, type AdmissionRequest, type Sessions } from '../session/session.ts';
import {
  AdapterSession, admitAndRestore, everySession, ignoreError, keepResumable, refuseUpgrade, register, sessionContext, sessionInit, upgradeAllowed,
  writeFrame, type WebSocketTransportDeps,
} from './adapter-session.ts';
import { HARD_FRAME_LIMIT_BYTES } from './socketio.ts';
import { broadcastPacket, textFrame, type BroadcastOptions, type BroadcastPacket } from './broadcast-packets.ts';

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

/**
 * jsonFrame(event, payload, offset) cut from socket.io's encoding of the same packet, `2[event,payload(,offset)]`,
 * rather than serialised a second time; undefined unless the payload is a plain object without an `id` of its own
 * and the encoding has exactly that shape.
 */
export function jsonFrameFromEncoding(encoded: string, data: readonly unknown[]): string | undefined {
  const [event, payload, offset] = data;
  if (data.length < 2 || data.length > 3 || typeof payload !== 'object' || payload === null) return undefined;
  if (Object.getPrototypeOf(payload) !== Object.prototype || Object.hasOwn(payload, 'id')) return undefined;
  const head = `2[${JSON.stringify(event)},`;
  const tail = data.length === 3 ? `,${JSON.stringify(offset)}]` : ']';
  if (!encoded.startsWith(head) || !encoded.endsWith(tail)) return undefined;
  const json = encoded.slice(head.length, encoded.length - tail.length);
  if (json[0] !== '{' || json[json.length - 1] !== '}') return undefined;
  if (typeof offset !== 'string') return json;
  return `${json.length === 2 ? '{' : `${json.slice(0, -1)},`}"id":${JSON.stringify(offset)}}`;
}

/** One-entry cache: a broadcast hands the same packet to every member, so it is translated once. */
let lastPacket: BroadcastPacket | undefined;
let lastTranslated: Translated | undefined;

/**
 * A broadcast as a framed JSON message, from its encoding and (when the adapter handed it over) its packet. Only
 * an EVENT on the main namespace that wants no ack, `2[...]`, is one; binary events and the rest are not sent on
 * /ws. The frame is cut from the encoding when the payload allows (jsonFrameFromEncoding); otherwise it is made
 * from the encoding parsed back, which is JSON's view of the payload (a Date as its string, a Buffer as an object).
 */
export function translatePacket(packet: BroadcastPacket | undefined, encoded: string): Translated | undefined {
  if (packet !== undefined && packet === lastPacket) return lastTranslated;
  let translated: Translated | undefined;
  if (encoded.startsWith('2[')) {
    const packetData = packet?.data;
    const cut = packetData !== undefined && typeof packetData[0] === 'string' ? jsonFrameFromEncoding(encoded, packetData) : undefined;
    const data = cut !== undefined ? packetData : parseOrUndefined(encoded.slice(1));
    if (Array.isArray(data) && typeof data[0] === 'string') {
      const [event, payload, offset] = data as [string, unknown, unknown];
      translated = { frame: textFrame(cut ?? jsonFrame(event, payload, offset)), closeCode: closeCodeOf(event, payload) };
    }
  }
  if (packet !== undefined) {
    lastPacket = packet;
    lastTranslated = translated;
  }
  return translated;
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class RawSession extends AdapterSession {
  readonly transport = 'ws' as const;
  protected readonly path = '/ws';

  protected frame(event: string, payload: unknown, offset: string | undefined): string {
    return jsonFrame(event, payload, offset);
  }

  writeToEngine(encodedPackets: readonly (string | Buffer)[], options?: BroadcastOptions): void {
    const encoded = encodedPackets[0];
    if (!this.open || typeof encoded !== 'string') return;
    // Every broadcast comes with its packet (broadcast-packets.ts).
    const translated = translatePacket(broadcastPacket(options), encoded);
    if (!translated) return;
    // The same pre-framed bytes for every member (what socket.io does for its own websocket clients).
    if (this.ws.readyState === WebSocket.OPEN) writeFrame(this.ws, [translated.frame]);
    this.closeAfter(translated.closeCode);
  }

  /** A WebSocket ping: every client library answers it by itself. */
  protected ping(): void {
    this.ws.ping();
  }

  /** Only a restart (1012, draining) leaves the session resumable; the others end it. */
  closeWith(code: number, reason: string): void {
    if (!this.open) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    this.closed('forced close', code === CloseCode.serviceRestart);
  }

  /** A client that says goodbye (1000) ends its session; anything else is a lost connection it may resume. */
  override onClose(code: number): void {
    this.closed('transport close', code !== 1000);
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

/**
 * Serves /ws upgrades: origin, authentication, limits and (with session_id and last_event_id) recovery are all
 * settled before the upgrade completes, so a session exists only once it is admitted; a refusal is a close
 * frame with its code right after the upgrade (what seed 000's clients expect).
 */
export function serveRawWebSockets(httpServer: HttpServer, io: Server, sessions: Sessions, config: GatewayConfig, deps: WebSocketTransportDeps): { close(): void } {
  const ctx = sessionContext(io, sessions, config, deps);
  // skipUTF8Validation: frames are checked in onFrame and invalid UTF-8 gets an error reply, where ws would close
  // the connection (1007). clientTracking off: nsp.sockets is the one registry of sessions.
  const wss = new WebSocketServer({ noServer: true, maxPayload: HARD_FRAME_LIMIT_BYTES, perMessageDeflate: false, skipUTF8Validation: true, clientTracking: false });
  const heartbeat = everySession(ctx, RawSession, config.pingIntervalMs + config.pingTimeoutMs, (session) => session.heartbeat());

  const upgrade = async (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ip = upgradeAllowed(request, socket, config, deps, 'ws');
    if (ip === undefined) return;
    const url = request.url ?? '/';
    const admissionRequest: AdmissionRequest = { headers: request.headers, url, handshakeAuth: undefined, ip, transport: 'ws' };
    const query = new URL(url, 'http://gateway.invalid').searchParams;
    const resumePid = query.get('session_id');
    const resumeOffset = query.get('last_event_id');
    const resumeRequested = Boolean(resumePid && resumeOffset);
    const { admission, restored } = await admitAndRestore(ctx, admissionRequest, resumeRequested ? { pid: resumePid!, offset: resumeOffset! } : undefined);
    const done = () => {
      if (restored) deps.resumed?.(restored.sid);
    };
    /** No session comes of this attempt: free its slot, and keep a restored session resumable elsewhere. */
    const abandon = () => {
      if (admission.ok) admission.release();
      if (restored && admission.ok) keepResumable(ctx, restored);
      done();
    };
    // The client may have gone, or the replica started draining, while the token was being checked.
    if (socket.destroyed || !deps.accepting()) {
      if (!socket.destroyed) refuseUpgrade(socket, 503, 'Service Unavailable');
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
      const session = new RawSession(ws, ctx, sessionInit(ctx, admission.identity, ip, restored, admission.release));
      register(ctx, session, restored?.rooms ?? []);
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
    if (path !== '/ws' && path !== '/ws/') return refuseUpgrade(socket, 404, 'Not Found');
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
  return { close: () => clearInterval(heartbeat) };
}
