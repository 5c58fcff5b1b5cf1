/**
 * The plain JSON WebSocket transport (/ws, seed 000's protocol).
 *
 * A raw connection is presented to socket.io as if it were an Engine.IO connection: socket.io's Client only
 * needs `write`, `close`, `request`, `readyState`, `protocol` and the `data`/`close` events of its conn. Each
 * raw client thus becomes an ordinary socket.io socket: the same middleware authenticates it, the same handlers
 * serve it, it joins the same adapter rooms, and a broadcast is encoded and shipped across the fleet once,
 * whoever listens. This file is the only place that translates between the two framings.
 *
 *   client JSON {"type":"subscribe",...}  ->  socket.io EVENT ["subscribe", {...}] with an ack id
 *   socket.io EVENT ["event", {...}, offset?] ->  the payload object, with `id` = the recovery offset
 *   socket.io ACK [reply]                  ->  the reply object (nothing for an empty ack)
 *   socket.io CONNECT_ERROR {data:{code}}  ->  close frame with that code (4001, 4003, 4029)
 */
import { isUtf8 } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'socket.io';
import type { WebSocket } from 'ws';
import { CLOSE_REASONS, CloseCode, ErrorCode, type CloseCodeValue, type ErrorCodeValue } from '../protocol/codes.ts';
import { MAX_JSON_DEPTH, isClientMessageType, nestedDeeperThan } from '../protocol/client-messages.ts';
import { errorReply } from '../protocol/server-messages.ts';

export interface RawConnectionOptions {
  /** Frames over this many bytes get an error reply and are dropped; the connection stays. */
  readonly maxMessageBytes: number;
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  readonly onErrorReply?: (code: ErrorCodeValue) => void;
}

const OPEN = 1; // WebSocket.OPEN
const MAX_PENDING_FRAMES = 32;

/** One-entry cache: a broadcast hands the same encoded string to every member, so it is translated once. */
let lastEncoded: string | undefined;
let lastTranslated: string | undefined;

function translateEvent(encoded: string): string | undefined {
  if (encoded === lastEncoded) return lastTranslated;
  let translated: string | undefined;
  try {
    // "2" + JSON array; only the main namespace is used, so there is no "/nsp," prefix.
    const data: unknown = JSON.parse(encoded.slice(1));
    if (Array.isArray(data) && typeof data[0] === 'string') {
      const [name, payload, offset] = data as [string, unknown, unknown];
      const frame: Record<string, unknown> = typeof payload === 'object' && payload !== null && !Array.isArray(payload)
        ? { ...(payload as Record<string, unknown>) }
        : { type: name, data: payload };
      if (typeof offset === 'string') frame['id'] = offset;
      translated = JSON.stringify(frame);
    }
  } catch {
    translated = undefined;
  }
  lastEncoded = encoded;
  lastTranslated = translated;
  return translated;
}

export class RawJsonConnection extends EventEmitter {
  readonly id = randomUUID();
  readonly protocol = 4;
  /**
   * What socket.io reads of the upgrade request (headers, url, TLS), and nothing else: keeping the whole
   * IncomingMessage for the connection's lifetime costs about a kilobyte each.
   */
  readonly request: { readonly headers: IncomingMessage['headers']; readonly url: string; readonly method: string; readonly connection: { readonly encrypted: boolean } };
  readonly remoteAddress: string;
  readonly transport = { name: 'ws-json', writable: true };
  readyState: 'open' | 'closed' = 'open';

  private readonly ws: WebSocket;
  private readonly options: RawConnectionOptions;
  private nextAckId = 0;
  /** Frames that arrive while socket.io is still authenticating wait here (socket.io drops early events). */
  private pending: Array<() => void> | undefined = [];
  private alive = true;

  constructor(ws: WebSocket, request: IncomingMessage, options: RawConnectionOptions) {
    super();
    this.ws = ws;
    this.request = {
      headers: request.headers,
      url: request.url ?? '/',
      method: request.method ?? 'GET',
      connection: { encrypted: Boolean((request.socket as { encrypted?: boolean }).encrypted) },
    };
    this.remoteAddress = request.socket.remoteAddress ?? '';
    this.options = options;

    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('close', () => this.onTransportClose('transport close'));
    ws.on('error', () => this.onTransportClose('transport error'));
  }

  /**
   * Protocol-level keep-alive, like Engine.IO's heartbeat, driven by one timer for all raw connections
   * (transports/socketio.ts): a peer that did not answer the previous ping is dropped.
   */
  heartbeat(): void {
    if (this.readyState !== 'open') return;
    if (!this.alive) {
      this.ws.terminate();
      this.onTransportClose('ping timeout');
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /** Hands the connection to socket.io, asking to resume `sessionId` after `lastEventId` when given. */
  attach(io: Server, resume: { sessionId: string; lastEventId: string } | undefined): void {
    (io as unknown as { onconnection(conn: unknown): void }).onconnection(this);
    const auth = resume ? { pid: resume.sessionId, offset: resume.lastEventId } : {};
    this.emit('data', `0${JSON.stringify(auth)}`);
  }

  /** Called by socket.io's Client with one encoded packet. */
  write(packet: string | Buffer): void {
    if (this.readyState !== 'open' || typeof packet !== 'string') return;
    switch (packet[0]) {
      case '2': {
        const frame = translateEvent(packet);
        if (frame !== undefined) this.send(frame);
        return;
      }
      case '3': {
        const match = /^3\d+(\[.*)$/s.exec(packet);
        if (!match) return;
        const args: unknown = JSON.parse(match[1]!);
        if (Array.isArray(args) && args[0] !== undefined && args[0] !== null) this.send(JSON.stringify(args[0]));
        return;
      }
      case '4': {
        // CONNECT_ERROR: the middleware refused the connection.
        let code: CloseCodeValue = CloseCode.authenticationRequired;
        let reason: string = CLOSE_REASONS[code];
        try {
          const body = JSON.parse(packet.slice(1)) as { data?: { code?: CloseCodeValue; reason?: string } };
          if (body.data?.code) code = body.data.code;
          if (body.data?.reason) reason = body.data.reason;
        } catch {
          // keep 4001
        }
        this.closeWith(code, reason);
        return;
      }
      case '0': {
        // CONNECT ack: socket.io registers the socket right after writing it, so hand over what the client
        // sent meanwhile on the next tick.
        process.nextTick(() => {
          const pending = this.pending ?? [];
          this.pending = undefined;
          for (const deliver of pending) deliver();
        });
        return;
      }
      default:
        // DISCONNECT ("1") has no JSON counterpart: the close frame follows.
        return;
    }
  }

  /** socket.io closes the conn (server-side disconnect). */
  close(): void {
    this.closeWith(1000, 'Normal Closure');
  }

  closeWith(code: number, reason: string): void {
    if (this.readyState !== 'open') return;
    if (this.ws.readyState === OPEN) this.ws.close(code, reason);
    this.onTransportClose('forced close');
  }

  private send(frame: string): void {
    if (this.ws.readyState === OPEN) this.ws.send(frame);
  }

  private reply(code: ErrorCodeValue, message: string, requestType?: string): void {
    this.options.onErrorReply?.(code);
    const frame = JSON.stringify(errorReply(code, message, requestType));
    this.inOrder(() => this.send(frame));
  }

  /** Runs now once connected; before that, after the welcome, in arrival order. */
  private inOrder(action: () => void): void {
    if (this.pending === undefined) action();
    else if (this.pending.length < MAX_PENDING_FRAMES) this.pending.push(action);
    else {
      this.options.onErrorReply?.(ErrorCode.rateLimited);
      this.send(JSON.stringify(errorReply(ErrorCode.rateLimited, 'too many messages before the connection was authenticated')));
    }
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.readyState !== 'open') return;
    if (isBinary) return this.reply(ErrorCode.invalidMessage, 'frames must be JSON text');
    if (data.length > this.options.maxMessageBytes) {
      return this.reply(ErrorCode.messageTooLarge, `the frame is ${data.length} bytes; the limit is ${this.options.maxMessageBytes}`);
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
    // Checked before the re-encoding below: JSON.stringify recurses, and a deep enough frame would overflow the
    // stack and take the whole process down.
    if (nestedDeeperThan(message, MAX_JSON_DEPTH)) {
      return this.reply(ErrorCode.invalidMessage, `the message is nested more than ${MAX_JSON_DEPTH} levels deep`);
    }
    const { type, ...body } = message as Record<string, unknown>;
    if (typeof type !== 'string') return this.reply(ErrorCode.invalidMessage, 'a message needs "type", a string');
    // Unknown names never reach socket.io: its parser treats reserved names (e.g. "disconnect") as a protocol
    // violation and would drop the connection instead of answering with an error.
    if (!isClientMessageType(type)) return this.reply(ErrorCode.unknownType, `unknown message type "${type.slice(0, 64)}"`, type.slice(0, 64));
    const packet = `2${this.nextAckId++}${JSON.stringify([type, body])}`;
    this.inOrder(() => this.emit('data', packet));
  }

  private onTransportClose(reason: string): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.transport.writable = false;
    this.emit('close', reason);
  }
}

export function isRawJsonSocket(socket: Socket): boolean {
  return socket.conn instanceof RawJsonConnection;
}
