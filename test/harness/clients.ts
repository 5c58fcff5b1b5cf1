/** Real clients for tests: a raw `ws` JSON client and socket.io-client, each with a message inbox. */
import WebSocket from 'ws';
import { io, type Socket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import { waitFor } from './process.ts';

export type Json = Record<string, any>;

/** Messages received, in order, with a way to wait for the next that matches. */
export class Inbox {
  readonly messages: Json[] = [];
  private cursor = 0;

  push(message: Json): void {
    this.messages.push(message);
  }

  /** The next message (after those already taken) that matches; fails after `timeoutMs`. */
  async next(match: ((m: Json) => boolean) | string, timeoutMs = 5000): Promise<Json> {
    const predicate = typeof match === 'string' ? (m: Json) => m['type'] === match : match;
    return waitFor(`a message matching ${typeof match === 'string' ? match : 'the predicate'} (got ${JSON.stringify(this.messages.slice(-5))})`, () => {
      for (let i = this.cursor; i < this.messages.length; i++) {
        if (predicate(this.messages[i]!)) {
          this.cursor = i + 1;
          return this.messages[i];
        }
      }
      return undefined;
    }, timeoutMs, 10);
  }

  /** All messages of a type received so far. */
  ofType(type: string): Json[] {
    return this.messages.filter((m) => m['type'] === type);
  }
}

export interface WsClient {
  readonly ws: WebSocket;
  readonly inbox: Inbox;
  readonly closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
  sendRaw(data: string | Buffer): void;
  /** Sends a message and waits for the next message of `replyType`. */
  request(message: Json, replyType: string, timeoutMs?: number): Promise<Json>;
  close(): void;
}

export function wsClient(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  const ws = new WebSocket(url, { headers });
  const inbox = new Inbox();
  ws.on('message', (data) => {
    try {
      inbox.push(JSON.parse(data.toString()));
    } catch {
      inbox.push({ type: '__unparseable__', raw: data.toString() });
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const client: WsClient = {
    ws,
    inbox,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    sendRaw: (data) => ws.send(data),
    async request(message, replyType, timeoutMs) {
      ws.send(JSON.stringify(message));
      return inbox.next(replyType, timeoutMs);
    },
    close: () => ws.close(),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** A raw client that expects to be refused: resolves with the close code and reason. */
export async function wsRefusal(url: string, headers: Record<string, string> = {}): Promise<{ code: number; reason: string }> {
  const client = await wsClient(url, headers);
  return client.closed;
}

export interface SioClient {
  readonly socket: Socket;
  readonly inbox: Inbox;
  /** Emits with an acknowledgement and resolves with its argument. */
  request(event: string, payload?: unknown, timeoutMs?: number): Promise<any>;
  close(): void;
}

export function sioClient(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): SioClient {
  const socket = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], ...options });
  const inbox = new Inbox();
  socket.onAny((event: string, payload: unknown) => {
    inbox.push(typeof payload === 'object' && payload !== null ? { ...(payload as Json), __event: event } : { type: event, data: payload, __event: event });
  });
  return {
    socket,
    inbox,
    request: (event, payload, timeoutMs = 5000) => socket.timeout(timeoutMs).emitWithAck(event, payload),
    close: () => socket.close(),
  };
}

/** Connects and resolves with the `connected` welcome, or rejects with the connect_error. */
export async function sioConnected(client: SioClient, timeoutMs = 5000): Promise<Json> {
  const refused = new Promise<never>((_, reject) => client.socket.once('connect_error', (error) => reject(error)));
  return Promise.race([client.inbox.next('connected', timeoutMs), refused]);
}

/** Resolves with the connect_error's data ({code, reason}). */
export function sioRefusal(client: SioClient, timeoutMs = 5000): Promise<{ message: string; data: any }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect_error')), timeoutMs);
    client.socket.once('connect_error', (error: Error & { data?: unknown }) => {
      clearTimeout(timer);
      resolve({ message: error.message, data: error.data });
    });
    client.socket.once('connect', () => {
      clearTimeout(timer);
      reject(new Error('connected, but a refusal was expected'));
    });
  });
}

/**
 * A raw /ws client that resumes like a well-behaved seed-000 client: it remembers the session id from the
 * welcome and the id of the last event, and on an unexpected close reconnects (to `url`, e.g. the load
 * balancer) with ?session_id=&last_event_id= after the advised or a short delay.
 */
export class ResumingWsClient {
  readonly inbox = new Inbox();
  readonly closes: number[] = [];
  recovered = 0;
  private sessionId: string | undefined;
  private lastEventId: string | undefined;
  private current: WebSocket | undefined;
  private stopped = false;
  private readonly url: string;
  private readonly headers: Record<string, string>;

  constructor(url: string, headers: Record<string, string>) {
    this.url = url;
    this.headers = headers;
  }

  async connect(): Promise<void> {
    const params = this.sessionId && this.lastEventId ? `&session_id=${encodeURIComponent(this.sessionId)}&last_event_id=${encodeURIComponent(this.lastEventId)}` : '';
    const ws = new WebSocket(`${this.url}${params}`, { headers: this.headers });
    this.current = ws;
    let advisedDelay = 100;
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Json;
      if (typeof message['id'] === 'string') this.lastEventId = message['id'];
      if (message['type'] === 'connected') {
        this.sessionId = message['session_id'] ?? this.sessionId;
        if (message['recovered']) this.recovered += 1;
      }
      if (typeof message['reconnect_after_ms'] === 'number') advisedDelay = message['reconnect_after_ms'];
      this.inbox.push(message);
    });
    ws.on('close', (code) => {
      this.closes.push(code);
      if (!this.stopped) setTimeout(() => void this.connect().catch(() => this.retry()), advisedDelay);
    });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', () => reject(new Error('refused')));
      ws.once('error', reject);
    });
  }

  private retry(): void {
    if (!this.stopped) setTimeout(() => void this.connect().catch(() => this.retry()), 200);
  }

  send(message: Json): void {
    this.current?.send(JSON.stringify(message));
  }

  close(): void {
    this.stopped = true;
    this.current?.close();
  }
}
