/**
 * Connection-state recovery on one replica without Redis (the in-memory store, MemorySessionStore): a client that
 * loses its connection before any broadcast reached it still recovers its session and rooms, on both transports.
 * The welcome carries a recovery offset for that (with Redis, the fleet tests pin the same).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import WebSocket from 'ws';
import type { Json } from '../../harness/clients.ts';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { waitFor } from '../../harness/process.ts';
import { token } from './support.ts';

describe('recovery on one replica, in memory, before any broadcast', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({});
  });
  after(() => gateway.stop());

  /** Joins `room`, loses the transport, and waits until the client is back in its recovered session. */
  const dropAndRecover = async (client: ClientSocket, room: string) => {
    const joined = (await client.timeout(5000).emitWithAck('join_room', { room })) as Json;
    assert.equal(joined['type'], 'room_joined');
    const id = client.id;
    client.io.engine.close();
    await waitFor('the reconnection', () => client.connected && client.id === id && client.recovered, 10_000);
    const { body } = await gateway.api('/broadcast', { json: { tenant_id: 't1', room, message: { marker: 'after' } } });
    assert.equal(body.recipients, 1);
  };

  it('a socket.io client that opens with a WebSocket recovers its session and rooms after a transport close', async () => {
    const events: Json[] = [];
    const client = ioClient(gateway.httpUrl, {
      forceNew: true, transports: ['websocket'], query: { tenant_id: 't1' }, auth: { token: await token({ sub: 'sio-recovers' }) },
      reconnectionDelay: 100, reconnectionDelayMax: 200,
    });
    client.on('event', (payload: Json) => events.push(payload));
    try {
      await new Promise((resolve) => client.once('connected', resolve));
      await dropAndRecover(client, 'chat:recovery');
      await waitFor('the broadcast', () => events.some((e) => JSON.stringify(e).includes('"after"')), 5000);
    } finally {
      client.close();
    }
  });

  it('a socket.io client that starts with polling gets one offset with its welcome, and recovers', async () => {
    // A broadcast just before: the welcome may share its offset rather than be kept itself.
    await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:elsewhere', message: { marker: 'before' } } });
    const welcomes: unknown[][] = [];
    const client = ioClient(gateway.httpUrl, {
      forceNew: true, transports: ['polling', 'websocket'], query: { tenant_id: 't1' }, auth: { token: await token({ sub: 'polling-recovers' }) },
      reconnectionDelay: 100, reconnectionDelayMax: 200,
    });
    client.on('connected', (...args: unknown[]) => welcomes.push(args));
    try {
      await waitFor('the welcome', () => welcomes.length > 0, 5000);
      // The welcome and its offset: socket.io-client takes the last argument as its recovery point.
      assert.equal(welcomes[0]!.length, 2);
      assert.equal(typeof welcomes[0]![1], 'string');
      await dropAndRecover(client, 'chat:recovery-polling');
    } finally {
      client.close();
    }
  });

  it('a /ws client resumes with the welcome\'s id as its last event id', async () => {
    const headers = { authorization: `Bearer ${await token({ sub: 'ws-recovers' })}` };
    const open = (query = '') => {
      const ws = new WebSocket(`${gateway.wsUrl({ tenant_id: 't1' })}${query}`, { headers });
      const inbox: Json[] = [];
      ws.on('message', (data) => inbox.push(JSON.parse(String(data)) as Json));
      return { ws, inbox, next: (type: string) => waitFor(type, () => inbox.find((m) => m['type'] === type), 5000) };
    };
    const first = open();
    const welcome = await first.next('connected');
    assert.equal(typeof welcome['id'], 'string', 'the welcome carries a recovery offset');
    first.ws.send(JSON.stringify({ type: 'join_room', room: 'chat:recovery-ws' }));
    await first.next('room_joined');
    first.ws.terminate();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = open(`&session_id=${encodeURIComponent(String(welcome['session_id']))}&last_event_id=${encodeURIComponent(String(welcome['id']))}`);
    assert.equal((await second.next('connected'))['recovered'], true);
    const { body } = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:recovery-ws', message: { marker: 'after' } } });
    assert.equal(body.recipients, 1);
    await second.next('event');
    second.ws.close();
  });
});
