/**
 * What the Redis stream carries, against a real Redis: durable messages (broadcasts, the disconnect notice of
 * DELETE /v1/users/{id}/connections) are stream entries every replica reads and a recovering client can replay;
 * ephemeral ones (serverSideEmit, fetchSockets, broadcast with ack) travel over Pub/Sub and never reach the
 * stream, so the fleet uses them only for queries that tolerate a missing answer (member counts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createRedisFleet, type RedisFleet } from '../../gateway/src/fanout/redis-fleet.ts';
import { createLogger } from '../../gateway/src/log.ts';
import WebSocket from 'ws';
import { sioClient, sioConnected, wsClient, type WsClient } from '../harness/clients.ts';
import { connectPeer } from '../harness/peers.ts';
import { hsToken } from '../harness/tokens.ts';
import { waitFor } from '../harness/process.ts';
import { startFleet, type Fleet } from './fleet.ts';

const STREAM = 'rtgw:stream';

describe('fleet: durable messages go through the stream, ephemeral ones do not', () => {
  let fleet: Fleet;
  let redis: Redis;
  let subscriber: Redis;
  const published: string[] = [];
  before(async () => {
    fleet = await startFleet(2);
    redis = new Redis(fleet.redis.url);
    // Everything the adapters publish over Pub/Sub, whatever the channel.
    subscriber = new Redis(fleet.redis.url);
    subscriber.on('pmessage', (_pattern: string, channel: string) => published.push(channel));
    await subscriber.psubscribe(`${STREAM}#*`);
  });
  after(async () => {
    subscriber.disconnect();
    redis.disconnect();
    await fleet.stop();
  });

  const xlen = () => redis.xlen(STREAM);

  it('a member count over HTTP leaves the stream alone (Pub/Sub); a broadcast and a user disconnect add one entry each', async () => {
    const tenant = 't-stream';
    const phone = await connectPeer(fleet.gateways[0]!, { transport: 'ws', sub: 'sam', tenant });
    const laptop = await connectPeer(fleet.gateways[1]!, { transport: 'socketio', sub: 'sam', tenant });

    const before = await xlen();
    const pubsubBefore = published.length;
    // An offline recipient: the gateway asks every replica how many members `user:nobody` has, and sends nothing.
    const query = await fleet.gateways[0]!.api('/v1/messages', { json: { tenant_id: tenant, user_ids: ['nobody'], message: { text: 'hi' } } });
    assert.deepEqual(query.body.failed, ['nobody']);
    assert.equal(await xlen(), before, 'the member count query was written to the stream');
    await waitFor('the query and its answer on Pub/Sub', () => published.length - pubsubBefore >= 2);

    // A broadcast: its count is a query, its delivery one stream entry.
    const sent = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'sam', message: { event_type: 'system.notification', n: 1 } } });
    assert.equal(sent.body.recipients, 2);
    assert.equal(await xlen(), before + 1);

    // Disconnecting a user is a state change: it goes through the stream, so every replica acts on it in order.
    const removed = await fleet.gateways[1]!.api(`/v1/users/sam/connections?tenant_id=${tenant}`, { method: 'DELETE' });
    assert.equal(removed.body.disconnected, 2);
    assert.equal(await xlen(), before + 2);
    assert.equal((await phone.closed).code, 4004);
    await laptop.closed;
  });

  it('serverSideEmit, fetchSockets and broadcast with ack from the fleet adapter never reach the stream; a plain emit does', async () => {
    const logger = createLogger('silent');
    const fleetAdapter: RedisFleet = createRedisFleet({ url: fleet.redis.url, streamName: STREAM, maxLen: 1000, recoveryWindowMs: 0 }, logger);
    // Attached to an HTTP server that never listens: io.close() needs an engine to close.
    const io = new Server(createServer(), { adapter: fleetAdapter.adapter as never });
    try {
      await waitFor('the adapter connected', () => fleetAdapter.healthy());
      const before = await xlen();
      io.serverSideEmit('rtgw:test', 1);
      const sockets = await io.fetchSockets();
      assert.ok(Array.isArray(sockets));
      // Broadcast with ack: the other replicas answer with how many clients they asked (none here).
      assert.deepEqual(await io.timeout(2000).emitWithAck('rtgw:test-ack'), []);
      assert.equal(await xlen(), before, 'an ephemeral message was written to the stream');
      io.emit('rtgw:test-plain', 1);
      await waitFor('the plain emit in the stream', async () => (await xlen()) === before + 1);
    } finally {
      io.close();
      await fleetAdapter.close();
    }
  });

  it('a raw /ws session can be resumed after its connection dropped, not after a goodbye (1000) or a DELETE (4004)', async () => {
    const tenant = 't-resume';
    const token = await hsToken({ sub: 'rae', tenant });
    const headers = { authorization: `Bearer ${token}` };
    const url = (replica: number, resume?: { session: string; last: string }) =>
      fleet.gateways[replica]!.wsUrl({ tenant_id: tenant, ...(resume ? { session_id: resume.session, last_event_id: resume.last } : {}) });
    /** Connects, gets one event (for its id), ends the connection as told, and tries to resume on the other replica. */
    const resumeAfter = async (end: (client: WsClient) => Promise<unknown>): Promise<boolean> => {
      const client = await wsClient(url(0), headers);
      const session = String((await client.inbox.next('connected'))['session_id']);
      await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'rae', message: { n: 1 } } });
      const last = String((await client.inbox.next('event'))['id']);
      await end(client);
      // The replica notices the end and writes (or drops) the session.
      await sleep(300);
      const again = await wsClient(url(1, { session, last }), headers);
      const welcome = await again.inbox.next('connected');
      again.close();
      return welcome['recovered'] === true;
    };
    assert.equal(await resumeAfter(async (client) => {
      client.ws.terminate();
    }), true, 'a dropped connection is resumable');
    assert.equal(await resumeAfter(async (client) => {
      client.ws.close(1000);
      await client.closed;
    }), false, 'a goodbye ends the session');
    assert.equal(await resumeAfter(async (client) => {
      await fleet.gateways[1]!.api(`/v1/users/rae/connections?tenant_id=${tenant}`, { method: 'DELETE' });
      assert.equal((await client.closed).code, 4004);
    }), false, 'a disconnected user cannot resume');
  });

  it('a raw /ws session resumed while its old connection still looks alive is taken over, and keeps receiving', async () => {
    const tenant = 't-takeover';
    const headers = { authorization: `Bearer ${await hsToken({ sub: 'tom', tenant })}` };
    const old = await wsClient(fleet.gateways[0]!.wsUrl({ tenant_id: tenant }), headers);
    const session = String((await old.inbox.next('connected'))['session_id']);
    await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'tom', message: { n: 1 } } });
    const last = String((await old.inbox.next('event'))['id']);
    // The live session is in Redis already (written on connect); the client resumes it before the old one dies.
    await sleep(300);
    const fresh = await wsClient(fleet.gateways[0]!.wsUrl({ tenant_id: tenant, session_id: session, last_event_id: last }), headers);
    assert.equal((await fresh.inbox.next('connected'))['recovered'], true);
    await old.closed;
    await sleep(200);
    const sent = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'tom', message: { n: 2 } } });
    assert.equal(sent.body.recipients, 1);
    assert.equal(((await fresh.inbox.next('event'))['data'] as { n: number }).n, 2);
    fresh.close();
  });

  it('a socket.io session of a polling client, resumed by a client that opens with a WebSocket, is taken over across the two paths', async () => {
    const tenant = 't-crosspath';
    const userToken = await hsToken({ sub: 'cleo', tenant });
    const old = sioClient(fleet.gateways[0]!.httpUrl, { transports: ['polling'], auth: { token: userToken }, query: { tenant_id: tenant } });
    await sioConnected(old);
    await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'cleo', message: { n: 1 } } });
    await old.inbox.next('event');
    const internals = old.socket as unknown as { id: string; _pid: string; _lastOffset: string };
    const sid = internals.id;
    const kicked = new Promise<string>((resolve) => old.socket.once('disconnect', (reason) => resolve(reason)));
    // The live session is in Redis already (written on connect); it is resumed, by hand, before the old one dies.
    await sleep(300);
    const fresh = new WebSocket(`ws://127.0.0.1:${fleet.gateways[0]!.port}/socket.io/?EIO=4&transport=websocket&tenant_id=${tenant}`);
    const frames: string[] = [];
    fresh.on('message', (data) => {
      const text = String(data);
      if (text === '2') fresh.send('3');
      else frames.push(text);
    });
    await new Promise((resolve) => fresh.once('open', resolve));
    fresh.send(`40${JSON.stringify({ token: userToken, pid: internals._pid, offset: internals._lastOffset })}`);
    await waitFor('the CONNECT reply', () => frames.find((f) => f.startsWith('40{')), 5000);
    assert.equal((JSON.parse(frames.find((f) => f.startsWith('40{'))!.slice(2)) as { sid: string }).sid, sid);
    assert.equal(await kicked, 'io server disconnect');
    await sleep(200);
    const sent = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'cleo', message: { n: 2 } } });
    assert.equal(sent.body.recipients, 1);
    await waitFor('the broadcast on the new connection', () => frames.some((f) => f.startsWith('42["event"') && f.includes('"n":2')), 5000);
    fresh.close();
  });

  it('a refused attempt to resume a live WebSocket session from the polling path leaves that session whole', async () => {
    const tenant = 't-refused-resume';
    const userToken = await hsToken({ sub: 'rita', tenant });
    const live = sioClient(fleet.gateways[0]!.httpUrl, { auth: { token: userToken }, query: { tenant_id: tenant } });
    await sioConnected(live);
    assert.equal((await live.request('join_room', { room: 'chat:kept' }))?.['type'], 'room_joined');
    await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, room: 'chat:kept', message: { n: 1 } } });
    await live.inbox.next('event');
    const internals = live.socket as unknown as { _pid: string; _lastOffset: string };
    await sleep(300);
    // Someone presents the session's pid and offset with a token that is not valid.
    const intruder = sioClient(fleet.gateways[0]!.httpUrl, { transports: ['polling'], auth: { token: 'not-a-token', pid: internals._pid, offset: internals._lastOffset }, query: { tenant_id: tenant } });
    const refused = await new Promise<Error>((resolve) => intruder.socket.once('connect_error', resolve));
    assert.equal((refused as Error & { data?: { code: number } }).data?.code, 4001);
    intruder.close();
    await sleep(200);
    // The live session still holds its id and its rooms.
    assert.equal(live.socket.connected, true);
    const sent = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, room: 'chat:kept', message: { n: 2 } } });
    assert.equal(sent.body.recipients, 1);
    assert.equal(((await live.inbox.next('event'))['data'] as { n: number }).n, 2);
    live.close();
  });

  it('fetchSockets and disconnectSockets from another node reach raw /ws sessions too, and the replica keeps serving', async () => {
    const tenant = 't-remote';
    const logger = createLogger('silent');
    const fleetAdapter: RedisFleet = createRedisFleet({ url: fleet.redis.url, streamName: STREAM, maxLen: 1000, recoveryWindowMs: 0 }, logger);
    const io = new Server(createServer(), { adapter: fleetAdapter.adapter as never });
    try {
      await waitFor('the adapter connected', () => fleetAdapter.healthy());
      const raw = await connectPeer(fleet.gateways[0]!, { transport: 'ws', sub: 'rita', tenant });
      const sio = await connectPeer(fleet.gateways[1]!, { transport: 'socketio', sub: 'sid', tenant });
      const remote = await io.fetchSockets();
      const rawId = String(raw.welcome['client_id']);
      const found = remote.find((socket) => socket.id === rawId);
      assert.ok(found, 'the raw session is listed by fetchSockets');
      assert.ok(found.rooms.has(`${tenant}/user:rita`));
      assert.equal(JSON.stringify(found.handshake).includes('Bearer'), false, 'no token in what other nodes see');
      assert.ok(remote.some((socket) => socket.id === String(sio.welcome['client_id'])));

      io.in(`${tenant}/user:rita`).disconnectSockets(true);
      assert.equal((await raw.closed).code, 1000);

      // Still delivering: a new client on the same replica gets a broadcast.
      const again = await connectPeer(fleet.gateways[0]!, { transport: 'ws', sub: 'rita', tenant });
      const sent = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: tenant, user_id: 'rita', message: { n: 7 } } });
      assert.equal(sent.body.recipients, 1);
      assert.equal(((await again.inbox.next('event'))['data'] as { n: number }).n, 7);
      again.close();
      sio.close();
    } finally {
      io.close();
      await fleetAdapter.close();
    }
  });
});
