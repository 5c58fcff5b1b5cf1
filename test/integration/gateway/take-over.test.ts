/**
 * A socket.io client that starts with long-polling is served by engine.io until it upgrades to a WebSocket; then
 * the gateway takes the connection from engine.io and socket.io and serves it on the bare WebSocket
 * (socketio-ws.ts `takeOver`). The client must notice nothing: the same session id and rooms, replies and
 * broadcasts, pings (a client that stops hearing them drops the connection), its limits slot, its presence, and
 * recovery once the connection is lost. Stock socket.io-client, a real gateway process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sioClient, type Json, type SioClient } from '../../harness/clients.ts';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { waitFor } from '../../harness/process.ts';
import { assertNoSecretsIn, metric, token } from './support.ts';

const PING_INTERVAL_MS = 1000;

describe('socket.io clients that upgrade from polling are taken from engine.io', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ PING_INTERVAL_MS: String(PING_INTERVAL_MS), PING_TIMEOUT_MS: '1000', MAX_CONNECTIONS_PER_USER: '1' });
  });
  after(async () => {
    await gateway.stop();
    assertNoSecretsIn(gateway.process.output());
  });

  /** A stock client on polling, then the WebSocket; resolves once engine.io's upgrade is done on the client side. */
  const openPolling = async (user: string): Promise<SioClient> => {
    const client = sioClient(gateway.httpUrl, {
      transports: ['polling', 'websocket'], query: { tenant_id: 't1' }, auth: { token: await token({ sub: user, tenant: 't1' }) },
      reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200,
    });
    const { socket } = client;
    await new Promise<void>((resolve, reject) => {
      socket.once('connect_error', reject);
      socket.once('connect', () => (socket.io.engine.transport.name === 'websocket' ? resolve() : socket.io.engine.once('upgrade', () => resolve())));
    });
    return client;
  };

  const request = async (client: SioClient, type: string, body: Json = {}) => (await client.request(type, body)) as Json;
  /** Whether an `event` carrying `marker` reached the client. */
  const received = (client: SioClient, marker: string) => client.inbox.messages.some((e) => e['__event'] === 'event' && JSON.stringify(e).includes(marker));

  it('keeps the session whole across the take-over: id, rooms, replies, broadcasts, and pings for many intervals', async () => {
    const client = await openPolling('upgrader');
    const { socket } = client;
    let disconnected: string | undefined;
    socket.on('disconnect', (reason) => (disconnected = reason));
    try {
      const id = socket.id;
      assert.equal((await request(client, 'join_room', { room: 'chat:upgrade' }))['type'], 'room_joined');
      // Well past pingInterval + pingTimeout: the client drops the connection unless the pings keep coming.
      await sleep(PING_INTERVAL_MS * 4);
      assert.equal(disconnected, undefined);
      assert.equal(socket.connected && socket.id, id);
      assert.equal((await request(client, 'ping'))['type'], 'pong');
      const { body } = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:upgrade', message: { marker: 'after-take-over' } } });
      assert.equal(body.recipients, 1);
      await waitFor('the broadcast', () => received(client, 'after-take-over'), 5000);
      // Still one socket.io connection to the gateway, counted once.
      assert.equal(await metric(gateway, 'rtgw_connections', { transport: 'socketio' }), 1);
      const sockets = await gateway.api('/v1/users/upgrader/status?tenant_id=t1');
      assert.equal((sockets.body as Json)['online'], true, JSON.stringify(sockets.body));
    } finally {
      client.close();
    }
    await waitFor('the connection to be counted gone', async () => (await metric(gateway, 'rtgw_connections', { transport: 'socketio' })) === 0, 5000);
  });

  it('keeps the limits slot: with one connection per user, a second is refused until the first leaves', async () => {
    const first = await openPolling('one-only');
    try {
      await sleep(200);
      await assert.rejects(openPolling('one-only'), (error: Error) => /Too Many Connections \(per user\)/.test(error.message));
    } finally {
      first.close();
    }
    await waitFor('the slot to be released', async () => {
      const again = await openPolling('one-only').catch(() => undefined);
      again?.close();
      return again !== undefined;
    }, 5000);
  });

  it('announces no presence change to the other members of a chat room', async () => {
    const watcher = sioClient(gateway.httpUrl, { query: { tenant_id: 't1' }, auth: { token: await token({ sub: 'watcher', tenant: 't1' }) } });
    await new Promise((resolve) => watcher.socket.once('connected', resolve));
    assert.equal((await request(watcher, 'join_room', { room: 'chat:presence' }))['type'], 'room_joined');
    // The joiner's engine.io connection upgrades right after it connects; it joins while that happens.
    const joiner = sioClient(gateway.httpUrl, { transports: ['polling', 'websocket'], query: { tenant_id: 't1' }, auth: { token: await token({ sub: 'joiner', tenant: 't1' }) } });
    try {
      await new Promise((resolve) => joiner.socket.once('connected', resolve));
      assert.equal((await request(joiner, 'join_room', { room: 'chat:presence' }))['type'], 'room_joined');
      await waitFor('the upgrade', () => joiner.socket.io.engine.transport.name === 'websocket', 5000);
      await sleep(500);
      const presence = watcher.inbox.messages.filter((e) => e['__event'] === 'presence' && e['user_id'] === 'joiner').map((e) => e['event']);
      assert.deepEqual(presence, ['join']);
    } finally {
      joiner.close();
      watcher.close();
    }
  });

  it('recovers the session after the taken-over connection is lost, with what was published meanwhile', async () => {
    const client = await openPolling('recoverer');
    const { socket } = client;
    try {
      const id = socket.id;
      assert.equal((await request(client, 'join_room', { room: 'chat:lost' }))['type'], 'room_joined');
      await sleep(200);
      // The WebSocket goes away under the client (not a clean close): socket.io-client reconnects and recovers.
      const transport = socket.io.engine.transport as unknown as { ws: { close(): void } };
      socket.io.reconnection(false);
      transport.ws.close();
      await waitFor('the disconnect', () => !socket.connected, 5000);
      const { body } = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:lost', message: { marker: 'while-away' } } });
      assert.equal(body.recipients, 0);
      socket.io.reconnection(true);
      socket.connect();
      await waitFor('the recovery', () => socket.connected && socket.id === id && socket.recovered, 10_000);
      await waitFor('the missed broadcast', () => client.inbox.messages.some((e) => JSON.stringify(e).includes('while-away')), 5000);
    } finally {
      client.close();
    }
  });
});
