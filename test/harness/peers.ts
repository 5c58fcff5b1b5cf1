/**
 * Authenticated clients of a test gateway behind one interface, whatever the transport, so a protocol test
 * runs unchanged over raw /ws and socket.io: `request` is the seed's reply (a /ws frame, or the socket.io ack).
 */
import type { GatewayProcess } from './gateway.ts';
import { waitFor } from './process.ts';
import { Inbox, sioClient, sioConnected, wsClient, type Json } from './clients.ts';
import { hsToken, type TokenOptions } from './tokens.ts';

export type Transport = 'ws' | 'socketio';
export const TRANSPORTS: readonly Transport[] = ['ws', 'socketio'];

export interface Peer {
  readonly transport: Transport;
  /** The `connected` welcome. */
  readonly welcome: Json;
  /** Everything pushed to the client (on socket.io, each payload with `__event`, the event name). */
  readonly inbox: Inbox;
  /**
   * Sends a client message and resolves with the reply: on /ws the next frame of `replyType` or `error`,
   * on socket.io the acknowledgement (undefined/null for an empty one).
   */
  request(type: string, body?: Json, replyType?: string): Promise<Json | null | undefined>;
  /** Sends without waiting for anything. */
  send(type: string, body?: Json): void;
  /**
   * Resolves once the client has received everything the server sent it before this call (a ping round trip
   * on the same connection), without moving the inbox's cursor: then `inbox.ofType` is complete.
   */
  settle(): Promise<void>;
  /** Resolves once the server closed the connection: the /ws close code, or socket.io's disconnect reason. */
  readonly closed: Promise<{ code?: number; reason: string }>;
  close(): void;
}

export interface PeerOptions extends TokenOptions {
  readonly transport: Transport;
}

export async function connectPeer(gateway: GatewayProcess, options: PeerOptions): Promise<Peer> {
  const token = await hsToken(options);
  const tenant = options.tenant ?? 't1';
  if (options.transport === 'ws') {
    const client = await wsClient(gateway.wsUrl({ tenant_id: tenant }), { authorization: `Bearer ${token}` });
    const welcome = await client.inbox.next('connected');
    return {
      transport: 'ws',
      welcome,
      inbox: client.inbox,
      request: (type, body = {}, replyType) => {
        client.send({ type, ...body });
        return client.inbox.next((m) => m['type'] === (replyType ?? type) || m['type'] === 'error');
      },
      send: (type, body = {}) => client.send({ type, ...body }),
      async settle() {
        const from = client.inbox.messages.length;
        client.send({ type: 'ping' });
        await waitFor('a pong', () => client.inbox.messages.slice(from).some((m) => m['type'] === 'pong'), 5000, 5);
      },
      closed: client.closed,
      close: () => client.close(),
    };
  }
  const client = sioClient(gateway.httpUrl, { auth: { token }, query: { tenant_id: tenant } });
  const welcome = await sioConnected(client);
  const closed = new Promise<{ reason: string }>((resolve) => client.socket.once('disconnect', (reason) => resolve({ reason })));
  return {
    transport: 'socketio',
    welcome,
    inbox: client.inbox,
    request: (type, body) => client.request(type, body),
    send: (type, body) => {
      client.socket.emit(type, body);
    },
    async settle() {
      const pong = await client.request('ping');
      if (pong?.['type'] !== 'pong') throw new Error(`expected a pong, got ${JSON.stringify(pong)}`);
    },
    closed,
    close: () => client.close(),
  };
}

/** ISO 8601 UTC, as every `timestamp` the gateway sends. */
export const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A received message without what the transport adds (the /ws recovery `id`, the socket.io event name). */
export function payload(message: Json): Json {
  const { id: _id, __event: _event, ...rest } = message;
  return rest;
}
