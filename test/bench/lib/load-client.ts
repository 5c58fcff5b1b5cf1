/**
 * The load generator's connections: raw `ws` clients that speak each target's framing by hand, so the
 * generator spends as little as possible per message (no socket.io-client, no JSON.parse of data frames).
 *
 * - `json`: the gateway's /ws and the plain-ws peer. Welcome `{"type":"connected",…}`, then
 *   `{"type":"subscribe","topics":[…]}` answered by `{"type":"subscribed",…}`. The gateway's events end with
 *   `"id":"<offset>"`; a resuming client reconnects with `?session_id=&last_event_id=`.
 * - `eio`: socket.io v4 over Engine.IO v4 on a WebSocket: `0{…}` open, answer `2` pings with `3`, connect the
 *   namespace with `40{"token":…}` (with `pid`/`offset` first when resuming, as socket.io-client does), events
 *   `42[…]` (the recovery offset as the array's last string), acks `43<id>[…]`, refusals `44{…}`.
 * - `eio-polling`: the same, opened as a browser's socket.io-client opens it: Engine.IO's long-polling handshake
 *   over HTTP (`GET` the open packet, `POST` the CONNECT, `GET` its answer), then the WebSocket upgrade (`2probe`,
 *   `3probe`, `5`) on which it stays. Only for connection cost (idle capacity), not for resume.
 * - `centrifuge`: Centrifuge's JSON protocol at /connection/websocket: `{"id":1,"connect":{"token":…}}`,
 *   one `{"id":n,"subscribe":{"channel":…}}` per room, newline-separated commands and replies, pings `{}`
 *   answered `{}`, publications as `{"push":{"channel":…,"pub":{"data":…}}}`.
 *
 * Every benchmark message carries `"bs":<seq>,"bt":<send time, µs>` as its first two fields; a frame is scanned
 * for them as bytes, which finds them whatever envelope the target wraps around the data.
 */
import WebSocket from 'ws';
import { nowUs } from './latency.ts';

export type Protocol = 'json' | 'eio' | 'eio-polling' | 'centrifuge';

/** Engine.IO v4 separates the packets of one long-polling payload with a record separator. */
const RECORD_SEPARATOR = '\x1e';

/**
 * Engine.IO's long-polling open and socket.io CONNECT over HTTP, as socket.io-client does them before it upgrades:
 * the Engine.IO session id to upgrade, and what the server said to the CONNECT (`40{…}` or `44{…}`).
 */
async function pollingHandshake(wsUrl: string, token: string): Promise<{ sid: string; connect: string }> {
  const base = wsUrl.replace(/^ws/, 'http').replace('transport=websocket', 'transport=polling');
  const text = async (res: Response) => {
    if (!res.ok) throw new Error(`eio-polling: HTTP ${res.status} ${await res.text()}`);
    return res.text();
  };
  const open = await text(await fetch(base));
  const { sid } = JSON.parse(open.slice(1)) as { sid: string };
  const url = `${base}&sid=${encodeURIComponent(sid)}`;
  await text(await fetch(url, { method: 'POST', body: `40${JSON.stringify({ token })}`, headers: { 'content-type': 'text/plain;charset=UTF-8' } }));
  for (let attempt = 0; attempt < 5; attempt++) {
    const packets = (await text(await fetch(url))).split(RECORD_SEPARATOR);
    const connect = packets.find((p) => p.startsWith('40') || p.startsWith('44'));
    if (connect) return { sid, connect };
  }
  throw new Error('eio-polling: no answer to the CONNECT');
}

export interface Endpoint {
  readonly url: string;
  readonly headers?: Record<string, string>;
}

/** Where a client's markers go. */
export interface MarkerSink {
  marker(client: LoadClient, seq: number, sentUs: number, receivedUs: number): void;
}

const BS = Buffer.from('"bs":');
const ID_FIELD = Buffer.from('"id":"');
const CONNECT_TIMEOUT_MS = 30_000;

/** Calls `found` for each `"bs":<int>,"bt":<int>` in the frame. */
export function scanMarkers(frame: Buffer, found: (seq: number, sentUs: number) => void): number {
  let count = 0;
  let at = frame.indexOf(BS);
  while (at !== -1) {
    let i = at + BS.length;
    let seq = 0;
    let c = frame[i];
    while (c !== undefined && c >= 48 && c <= 57) {
      seq = seq * 10 + c - 48;
      c = frame[++i];
    }
    // ,"bt":
    i += 6;
    let sent = 0;
    c = frame[i];
    while (c !== undefined && c >= 48 && c <= 57) {
      sent = sent * 10 + c - 48;
      c = frame[++i];
    }
    found(seq, sent);
    count += 1;
    at = frame.indexOf(BS, i);
  }
  return count;
}

export interface OpenOptions {
  readonly endpoint: Endpoint;
  readonly token: string;
  readonly topics: readonly string[];
  /** Resume the previous session (json: session_id/last_event_id; eio: pid/offset). */
  readonly resume?: boolean;
}

export interface Opened {
  /** Handshake to "may subscribe", µs. */
  readonly connectUs: number;
  /** The server said it restored the session (rooms and missed messages). */
  readonly recovered: boolean;
}

export class LoadClient {
  readonly index: number;
  group: number;
  readonly protocol: Protocol;
  /** Keep the recovery point from every event (costs a little per frame; only the reconnect storm needs it). */
  trackOffsets = false;
  sink: MarkerSink | undefined;
  private ws: WebSocket | undefined;
  private sessionId: string | undefined;
  private lastOffset: string | undefined;
  private nextId = 2;

  constructor(index: number, protocol: Protocol, group = 0) {
    this.index = index;
    this.protocol = protocol;
    this.group = group;
  }

  /** Engine.IO framing on the WebSocket, however the connection was opened. */
  private get speaksEio(): boolean {
    return this.protocol === 'eio' || this.protocol === 'eio-polling';
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Drops the connection without a goodbye (a phone losing its network). */
  drop(): void {
    this.ws?.terminate();
  }

  close(): void {
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners('close');
      ws.terminate();
    }
  }

  /** Opens, authenticates and subscribes; resolves once subscribed. */
  async connect(options: OpenOptions): Promise<Opened> {
    if (this.protocol !== 'eio-polling') return this.open_(options, nowUs(), undefined);
    const started = nowUs();
    const { sid, connect } = await pollingHandshake(options.endpoint.url, options.token);
    if (connect.startsWith('44')) throw new Error(`eio-polling: refused ${connect}`);
    return this.open_({ ...options, endpoint: { ...options.endpoint, url: `${options.endpoint.url}&sid=${encodeURIComponent(sid)}` } }, started, connect);
  }

  /** The WebSocket part of `connect`; `polled`: the CONNECT answer an `eio-polling` client already has. */
  private open_(options: OpenOptions, started: number, polled: string | undefined): Promise<Opened> {
    const resume = options.resume === true && this.sessionId !== undefined;
    let url = options.endpoint.url;
    if (resume && this.protocol === 'json' && this.lastOffset !== undefined) {
      url += `${url.includes('?') ? '&' : '?'}session_id=${encodeURIComponent(this.sessionId!)}&last_event_id=${encodeURIComponent(this.lastOffset)}`;
    }
    // JSON targets take the token as seed 000's clients send it; socket.io and Centrifugo in their connect packet.
    const headers = this.protocol === 'json' ? { ...options.endpoint.headers, authorization: `Bearer ${options.token}` } : options.endpoint.headers;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, skipUTF8Validation: true });
    this.ws = ws;
    return new Promise<Opened>((resolve, reject) => {
      let connectUs = 0;
      let recovered = false;
      let settled = false;
      let subscribeAck = -1;
      let pendingReplies = 0;
      const timer = setTimeout(() => fail(new Error(`${this.protocol}: not subscribed within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ connectUs, recovered });
      };
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(error);
      };
      const connected = (isRecovered: boolean) => {
        connectUs = nowUs() - started;
        recovered = isRecovered;
        // A recovered session still has its rooms.
        if (options.topics.length === 0 || isRecovered) return done();
        if (this.protocol === 'json') {
          ws.send(JSON.stringify({ type: 'subscribe', topics: options.topics }));
        } else if (this.speaksEio) {
          subscribeAck = this.nextId++;
          ws.send(`42${subscribeAck}${JSON.stringify(['subscribe', { topics: options.topics }])}`);
        } else {
          pendingReplies = options.topics.length;
          ws.send(options.topics.map((channel) => JSON.stringify({ id: this.nextId++, subscribe: { channel } })).join('\n'));
        }
      };
      const sink = () => this.sink;
      const onMarker = (seq: number, sentUs: number) => sink()?.marker(this, seq, sentUs, nowUs());

      ws.on('message', (data: Buffer) => {
        const first = data[0];
        if (this.speaksEio) {
          if (polled !== undefined && !settled && data.toString() === '3probe') {
            // Upgraded: the connection is on this WebSocket from now on; it connected over polling.
            ws.send('5');
            const ack = JSON.parse(polled.slice(2)) as { pid?: string };
            if (ack.pid !== undefined) this.sessionId = ack.pid;
            connected(false);
            return;
          }
          if (first === 0x34 /* 4 */) {
            const kind = data[1];
            if (kind === 0x32 /* 2: EVENT */) {
              if (scanMarkers(data, onMarker) > 0) {
                if (this.trackOffsets) this.keepEioOffset(data);
                return;
              }
              const text = data.toString();
              if (text.startsWith('42["connected"')) {
                if (this.trackOffsets) this.keepEioOffset(data);
                if (!settled && text.includes('"recovered":true')) recovered = true;
              }
              return;
            }
            if (kind === 0x33 /* 3: ACK */) {
              if (!settled && data.toString().startsWith(`43${subscribeAck}[`)) done();
              return;
            }
            if (kind === 0x30 /* 0: CONNECT */) {
              const ack = JSON.parse(data.toString().slice(2)) as { pid?: string };
              const isRecovered = resume && ack.pid !== undefined && ack.pid === this.sessionId;
              if (ack.pid !== undefined) this.sessionId = ack.pid;
              connected(isRecovered);
              return;
            }
            if (kind === 0x34 /* 4: CONNECT_ERROR */) return fail(new Error(`eio: refused ${data.toString()}`));
            return;
          }
          if (first === 0x32 /* 2: ping */) {
            ws.send('3');
            return;
          }
          if (first === 0x30 /* 0: open */) {
            const auth = resume && this.lastOffset !== undefined
              ? { pid: this.sessionId, offset: this.lastOffset, token: options.token }
              : { token: options.token };
            ws.send(`40${JSON.stringify(auth)}`);
          }
          return;
        }
        if (scanMarkers(data, onMarker) > 0) {
          if (this.trackOffsets && this.protocol === 'json') this.keepJsonOffset(data);
          return;
        }
        if (this.protocol === 'json') {
          const message = JSON.parse(data.toString()) as { type?: string; session_id?: string; recovered?: boolean; id?: string };
          if (message.type === 'connected') {
            if (message.session_id !== undefined) this.sessionId = message.session_id;
            if (typeof message.id === 'string' && this.trackOffsets) this.lastOffset = message.id;
            connected(message.recovered === true);
          } else if (message.type === 'subscribed') done();
          return;
        }
        // Centrifuge: one or more replies or pushes, newline-separated.
        for (const line of data.toString().split('\n')) {
          if (line === '{}') {
            ws.send('{}');
            continue;
          }
          if (line === '') continue;
          const reply = JSON.parse(line) as { id?: number; connect?: unknown; subscribe?: unknown; error?: { code: number; message: string } };
          if (reply.error) return fail(new Error(`centrifuge: ${reply.error.code} ${reply.error.message}`));
          if (reply.connect !== undefined) connected(false);
          else if (reply.subscribe !== undefined && --pendingReplies === 0) done();
        }
      });
      ws.once('open', () => {
        if (polled !== undefined) ws.send('2probe');
        if (this.protocol === 'centrifuge') ws.send(JSON.stringify({ id: 1, connect: { token: options.token, name: 'bench' } }));
      });
      ws.once('unexpected-response', (_req, res) => fail(new Error(`${this.protocol}: HTTP ${res.statusCode}`)));
      ws.once('error', (error) => fail(error));
      ws.once('close', (code) => fail(new Error(`${this.protocol}: closed with ${code} before subscribing`)));
    });
  }

  private keepJsonOffset(frame: Buffer): void {
    const at = frame.lastIndexOf(ID_FIELD);
    if (at === -1) return;
    const start = at + ID_FIELD.length;
    const end = frame.indexOf(0x22, start);
    if (end !== -1) this.lastOffset = frame.toString('latin1', start, end);
  }

  /** `42["event",{…},"<offset>"]`: the last array element, when it is a string. */
  private keepEioOffset(frame: Buffer): void {
    const end = frame.length - 2;
    if (frame[end + 1] !== 0x5d /* ] */ || frame[end] !== 0x22 /* " */) return;
    const start = frame.lastIndexOf(0x22, end - 1);
    if (start > 0 && frame[start - 1] === 0x2c /* , */) this.lastOffset = frame.toString('latin1', start + 1, end);
  }
}

/**
 * Opens `count` clients with at most `concurrency` handshakes in flight, bounded by `deadlineMs`.
 * Resolves with every connect time (µs) and the failures.
 */
export async function openMany(
  clients: readonly LoadClient[],
  options: (client: LoadClient) => OpenOptions,
  concurrency: number,
  deadlineMs: number,
): Promise<{ connectUs: number[]; failures: number; seconds: number; firstError?: string }> {
  const connectUs: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  let next = 0;
  const deadline = Date.now() + deadlineMs;
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, async () => {
    while (next < clients.length && Date.now() < deadline) {
      const client = clients[next++]!;
      try {
        connectUs.push((await client.connect(options(client))).connectUs);
      } catch (error) {
        failures += 1;
        firstError ??= String(error);
      }
    }
  }));
  failures += clients.length - next;
  return { connectUs, failures, seconds: (performance.now() - started) / 1000, ...(firstError ? { firstError } : {}) };
}
