/**
 * Health, readiness and the Prometheus metrics that replace seed 000's /stats: every series a dashboard relies
 * on exists and moves with real traffic on both transports.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { wsClient, wsRefusal } from '../../harness/clients.ts';
import { ISO_TIME, connectPeer } from '../../harness/peers.ts';
import { waitFor } from '../../harness/process.ts';
import { hsToken } from '../../harness/tokens.ts';

/** The samples of a Prometheus text exposition, keyed `name{label="value",...}` as printed. */
function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

function series(name: string, labels: Record<string, string> = {}): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? name : `${name}{${entries.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
}

describe('health, readiness and metrics', () => {
  let gateway: GatewayProcess;
  const scrape = async () => {
    const res = await fetch(`${gateway.httpUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return parseSamples(await res.text());
  };
  /** A sample's value; absent counters (a label never used yet) read as 0. */
  const value = (samples: Map<string, number>, name: string, labels: Record<string, string> = {}) => samples.get(series(name, labels)) ?? 0;

  /** How much each of `expected`'s series moved since `before`, keyed like `expected` (for one deepEqual). */
  const movedSince = async (before: Map<string, number>, expected: Record<string, number>) => {
    const now = await scrape();
    return Object.fromEntries(Object.keys(expected).map((key) => [key, (now.get(key) ?? 0) - (before.get(key) ?? 0)]));
  };

  before(async () => {
    gateway = await startGateway({ MAX_CONNECTIONS_PER_USER: '2' });
  });
  after(() => gateway.stop());

  it('GET /healthz answers seed 000 shape', async () => {
    const res = await gateway.api('/healthz', { serviceKey: null });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'healthy');
    assert.equal(res.body.service, 'ws-gateway');
    assert.match(res.body.version, /^\d+\.\d+\.\d+/);
    assert.match(res.body.timestamp, ISO_TIME);
  });

  it('GET /readyz answers 200 with a connections block that counts connections and rooms', async () => {
    const idle = await gateway.api('/readyz', { serviceKey: null });
    assert.equal(idle.status, 200);
    assert.equal(idle.body.status, 'ok');
    assert.match(idle.body.timestamp, ISO_TIME);
    assert.equal(typeof idle.body.connections.total_connections, 'number');
    assert.equal(typeof idle.body.connections.total_rooms, 'number');

    const peer = await connectPeer(gateway, { transport: 'ws', sub: 'ready-user' });
    const busy = await gateway.api('/readyz', { serviceKey: null });
    assert.equal(busy.body.connections.total_connections, idle.body.connections.total_connections + 1);
    // tenant:t1 may already exist; user:ready-user is new.
    assert.ok(busy.body.connections.total_rooms > idle.body.connections.total_rooms);
    peer.close();
    await waitFor('the connection to go', async () =>
      (await gateway.api('/readyz', { serviceKey: null })).body.connections.total_connections === idle.body.connections.total_connections);
  });

  it('there is no /stats: metrics replace it (404 JSON)', async () => {
    const res = await gateway.api('/stats', { serviceKey: null });
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
  });

  it('exposes process metrics and the gateway gauges', async () => {
    const samples = await scrape();
    assert.ok(value(samples, 'process_resident_memory_bytes') > 0);
    assert.ok(samples.has('nodejs_eventloop_lag_seconds'));
    assert.ok(samples.has(series('rtgw_connections', { transport: 'ws' })));
    assert.ok(samples.has(series('rtgw_connections', { transport: 'socketio' })));
    assert.ok(samples.has('rtgw_rooms'));
    assert.ok(samples.has('rtgw_deprecated_token_query_total'));
  });

  it('connection, room and message series move with traffic on both transports', async () => {
    const before = await scrape();
    const ws = await connectPeer(gateway, { transport: 'ws', sub: 'm-ws', tenant: 'tm' });
    const sio = await connectPeer(gateway, { transport: 'socketio', sub: 'm-sio', tenant: 'tm' });
    await ws.request('subscribe', { topics: ['weather', 'field:m1'] }, 'subscribed');
    await sio.request('subscribe', { topics: ['weather'] }, 'subscribed');
    await ws.request('join_room', { room: 'chat:m' }, 'room_joined');
    await sio.request('join_room', { room: 'chat:m' }, 'room_joined');
    await ws.request('ping', {}, 'pong');
    await sio.request('ping');
    sio.send('broadcast', { room: 'chat:m', message: 'hello' });
    await ws.inbox.next('message');
    ws.send('typing', { room: 'chat:m', typing: true });
    await sio.inbox.next((m) => m['event_type'] === 'chat.typing');
    const published = await gateway.api('/broadcast', { json: { tenant_id: 'tm', room: 'weather', message: { event_type: 'weather.updated' } } });
    assert.equal(published.body.recipients, 2);

    // New rooms of tenant tm: tenant:tm, user:m-ws, user:m-sio, weather, field:m1, chat:m.
    const expected: Record<string, number> = {
      'rtgw_connections{transport="ws"}': 1,
      'rtgw_connections{transport="socketio"}': 1,
      rtgw_rooms: 6,
      'rtgw_room_memberships{room_type="tenant"}': 2,
      'rtgw_room_memberships{room_type="user"}': 2,
      'rtgw_room_memberships{room_type="weather"}': 2,
      'rtgw_room_memberships{room_type="field"}': 1,
      'rtgw_room_memberships{room_type="chat"}': 2,
      'rtgw_messages_in_total{type="subscribe"}': 2,
      'rtgw_messages_in_total{type="join_room"}': 2,
      'rtgw_messages_in_total{type="ping"}': 2,
      'rtgw_messages_in_total{type="broadcast"}': 1,
      'rtgw_messages_in_total{type="typing"}': 1,
      'rtgw_messages_out_total{type="message"}': 1,
      'rtgw_messages_out_total{type="chat.typing"}': 1,
      'rtgw_messages_out_total{type="event"}': 1,
    };
    assert.deepEqual(await movedSince(before, expected), expected);

    ws.close();
    sio.close();
    await waitFor('the gauges to come back down', async () => {
      const after = await scrape();
      return value(after, 'rtgw_connections', { transport: 'ws' }) === value(before, 'rtgw_connections', { transport: 'ws' })
        && value(after, 'rtgw_connections', { transport: 'socketio' }) === value(before, 'rtgw_connections', { transport: 'socketio' })
        && value(after, 'rtgw_rooms') === value(before, 'rtgw_rooms');
    });
  });

  it('counts refused authentications by reason, refusals by limit scope, and ?token= use', async () => {
    const before = await scrape();
    const url = gateway.wsUrl({ tenant_id: 't1' });
    assert.equal((await wsRefusal(url)).code, 4001);
    assert.equal((await wsRefusal(url, { authorization: `Bearer ${await hsToken({ secret: 'another-secret-that-is-at-least-32-characters' })}` })).code, 4001);
    assert.equal((await wsRefusal(url, { authorization: `Bearer ${await hsToken({ expiresIn: -3600 })}` })).code, 4001);
    assert.equal((await wsRefusal(url, { authorization: `Bearer ${await hsToken({ tenant: 't2' })}` })).code, 4003);

    // MAX_CONNECTIONS_PER_USER=2: the third connection of one user is refused.
    const first = await connectPeer(gateway, { transport: 'ws', sub: 'limited' });
    const second = await connectPeer(gateway, { transport: 'socketio', sub: 'limited' });
    assert.equal((await wsRefusal(url, { authorization: `Bearer ${await hsToken({ sub: 'limited' })}` })).code, 4029);
    first.close();
    second.close();

    // Seed 000's deprecated form: the token in the query string. Accepted, counted.
    const old = await wsClient(gateway.wsUrl({ tenant_id: 't1', token: await hsToken({ sub: 'old-client' }) }));
    const deprecated = await old.inbox.next('connected');
    old.close();
    assert.equal(deprecated['user']['user_id'], 'old-client');

    const expected: Record<string, number> = {
      'rtgw_auth_failures_total{reason="missing_token"}': 1,
      'rtgw_auth_failures_total{reason="invalid_signature"}': 1,
      'rtgw_auth_failures_total{reason="expired"}': 1,
      'rtgw_auth_failures_total{reason="tenant_mismatch"}': 1,
      'rtgw_rate_limited_total{scope="user"}': 1,
      rtgw_deprecated_token_query_total: 1,
    };
    assert.deepEqual(await movedSince(before, expected), expected);
  });
});
