/**
 * The HTTP service API against a real gateway and real clients on both transports: seed 000's POST /broadcast,
 * seed 004's per-recipient messages (with seed 001's notifications), seed 001's connection management.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import type { Json } from '../../harness/clients.ts';
import { ISO_TIME, payload, connectPeer, type Peer } from '../../harness/peers.ts';
import { waitFor } from '../../harness/process.ts';
import { SERVICE_KEY } from '../../harness/tokens.ts';

/** What each peer received of `type` whose `pick` matches, after every peer has settled. */
async function receivedBy(peers: Record<string, Peer>, type: string, pick: (m: Json) => boolean): Promise<Record<string, Json[]>> {
  await Promise.all(Object.values(peers).map((peer) => peer.settle()));
  return Object.fromEntries(Object.entries(peers).map(([name, peer]) => [name, peer.inbox.ofType(type).filter(pick).map(payload)]));
}

function assertTimestamp(value: unknown): void {
  assert.match(String(value), ISO_TIME);
}

describe('service API: authentication', () => {
  let gateway: GatewayProcess;
  let disabled: GatewayProcess;
  before(async () => {
    [gateway, disabled] = await Promise.all([startGateway(), startGateway({ SERVICE_API_KEYS: '' })]);
  });
  after(() => Promise.all([gateway.stop(), disabled.stop()]));

  const endpoints: ReadonlyArray<{ method: string; path: string; json?: Json }> = [
    { method: 'POST', path: '/broadcast', json: { tenant_id: 't1', message: { text: 'hi' } } },
    { method: 'POST', path: '/v1/messages', json: { tenant_id: 't1', user_ids: ['u1'], message: 'hi' } },
    { method: 'GET', path: '/v1/users/connected' },
    { method: 'GET', path: '/v1/presence?tenant_id=t1' },
    { method: 'GET', path: '/v1/users/u1/status?tenant_id=t1' },
    { method: 'DELETE', path: '/v1/users/u1/connections?tenant_id=t1' },
  ];

  for (const { method, path, json } of endpoints) {
    it(`${method} ${path}: 401 without a key, 403 with a wrong one, 200 with the right one`, async () => {
      const init = { method, ...(json ? { json } : {}) };
      const missing = await gateway.api(path, { ...init, serviceKey: null });
      assert.equal(missing.status, 401);
      assert.equal(missing.body.error, 'unauthorized');
      assert.equal(typeof missing.body.message, 'string');

      const wrong = await gateway.api(path, { ...init, serviceKey: 'not-the-service-key-0123456789' });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.error, 'forbidden');

      const viaHeader = await gateway.api(path, { ...init, serviceKey: null, headers: { 'x-api-key': SERVICE_KEY } });
      assert.equal(viaHeader.status, 200, JSON.stringify(viaHeader.body));
      const viaBearer = await gateway.api(path, init);
      assert.equal(viaBearer.status, 200, JSON.stringify(viaBearer.body));
    });

    it(`${method} ${path}: 503 service_api_disabled when SERVICE_API_KEYS is unset`, async () => {
      const res = await disabled.api(path, { method, ...(json ? { json } : {}) });
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'service_api_disabled');
    });
  }
});

describe('POST /broadcast (seed 000)', () => {
  let gateway: GatewayProcess;
  const peers: Record<string, Peer> = {};
  let marker = 0;
  /** Broadcasts `extra` with a fresh marker in the message; resolves with the answer and who received it. */
  const broadcast = async (extra: Json, message: Json = {}) => {
    const mark = `m${++marker}`;
    const res = await gateway.api('/broadcast', { json: { tenant_id: 't1', ...extra, message: { ...message, mark } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const got = await receivedBy(peers, 'event', (m) => m['data']?.['mark'] === mark);
    const reached = Object.entries(got).filter(([, events]) => events.length > 0).map(([name]) => name).sort();
    for (const [name, events] of Object.entries(got)) assert.ok(events.length <= 1, `${name} received the broadcast ${events.length} times`);
    return { body: res.body, got, reached, mark };
  };

  before(async () => {
    gateway = await startGateway();
    // alice has two devices (one per transport); dave is in another tenant.
    peers['aliceWs'] = await connectPeer(gateway, { transport: 'ws', sub: 'alice' });
    peers['aliceSio'] = await connectPeer(gateway, { transport: 'socketio', sub: 'alice' });
    peers['bobWs'] = await connectPeer(gateway, { transport: 'ws', sub: 'bob' });
    peers['carolSio'] = await connectPeer(gateway, { transport: 'socketio', sub: 'carol' });
    peers['daveWs'] = await connectPeer(gateway, { transport: 'ws', sub: 'dave', tenant: 't2' });
    const subscribe = async (name: string, topics: string[]) => {
      const reply = await peers[name]!.request('subscribe', { topics }, 'subscribed');
      assert.deepEqual(reply?.['topics'], topics);
    };
    await subscribe('aliceWs', ['weather', 'field:f1']);
    await subscribe('carolSio', ['weather', 'farm:farm1']);
    await subscribe('bobWs', ['field:f1']);
    await subscribe('daveWs', ['weather', 'field:f1']);
  });
  after(async () => {
    for (const peer of Object.values(peers)) peer.close();
    await gateway.stop();
  });

  it('with only tenant_id reaches every connection of the tenant, counted per connection', async () => {
    const { body, got, reached, mark } = await broadcast({}, { type: 'announcement', text: 'System maintenance scheduled' });
    assert.equal(body.status, 'sent');
    assert.equal(body.recipients, 4);
    assertTimestamp(body.timestamp);
    assert.deepEqual(reached, ['aliceSio', 'aliceWs', 'bobWs', 'carolSio']);
    const event = got['aliceWs']![0]!;
    assertTimestamp(event['timestamp']);
    assert.deepEqual({ ...event, timestamp: 'T' }, {
      type: 'event',
      event_type: 'system.notification',
      priority: 'medium',
      message: 'System notification',
      message_ar: 'إشعار النظام',
      data: { type: 'announcement', text: 'System maintenance scheduled', mark },
      subject: null,
      timestamp: 'T',
    });
    // The same envelope on socket.io, under the event name "event".
    assert.deepEqual(got['carolSio']![0], event);
    assert.equal(peers['carolSio']!.inbox.ofType('event').at(-1)!['__event'], 'event');
  });

  it('to a room reaches its subscribers on both transports, with the priority of the event type', async () => {
    const { body, got, reached } = await broadcast({ room: 'weather' }, { event_type: 'weather.alert', text: 'Storm expected' });
    assert.equal(body.recipients, 2);
    assert.deepEqual(reached, ['aliceWs', 'carolSio']);
    const event = got['carolSio']![0]!;
    assert.equal(event['event_type'], 'weather.alert');
    assert.equal(event['priority'], 'high');
    assert.equal(event['message'], 'Important weather alert');
    assert.equal(event['message_ar'], 'تنبيه طقس مهم');
    assert.deepEqual(got['aliceWs']![0], event);
  });

  it('takes event_type and priority from the body too', async () => {
    const { got } = await broadcast({ room: 'field:f1', event_type: 'field.updated' });
    assert.equal(got['bobWs']![0]!['event_type'], 'field.updated');
    assert.equal(got['bobWs']![0]!['priority'], 'medium');
    assert.equal(got['bobWs']![0]!['message'], 'Field data updated');
    const urgent = await broadcast({ room: 'field:f1', event_type: 'task.created', priority: 'critical' });
    assert.equal(urgent.got['bobWs']![0]!['priority'], 'critical');
  });

  it('to user_id reaches every device of that user', async () => {
    const { body, reached } = await broadcast({ user_id: 'alice' });
    assert.equal(body.recipients, 2);
    assert.deepEqual(reached, ['aliceSio', 'aliceWs']);
  });

  it('to field_id and to farm_id reaches the field:… and farm:… rooms', async () => {
    const field = await broadcast({ field_id: 'f1' });
    assert.equal(field.body.recipients, 2);
    assert.deepEqual(field.reached, ['aliceWs', 'bobWs']);
    const farm = await broadcast({ farm_id: 'farm1' });
    assert.equal(farm.body.recipients, 1);
    assert.deepEqual(farm.reached, ['carolSio']);
  });

  it('answers recipients 0 for a room nobody is in', async () => {
    const { body, reached } = await broadcast({ room: 'chat:empty' });
    assert.equal(body.status, 'sent');
    assert.equal(body.recipients, 0);
    assert.deepEqual(reached, []);
  });

  it('answers 400 JSON for a missing tenant_id, bad JSON, a non-object body, an invalid room, a missing message', async () => {
    const cases: Array<[RequestInit & { json?: unknown }, string]> = [
      [{ json: { room: 'weather', message: { text: 'x' } } }, 'tenant_required'],
      [{ method: 'POST', body: '{"tenant_id":', headers: { 'content-type': 'application/json' } }, 'invalid_json'],
      [{ json: ['tenant_id', 't1'] }, 'invalid_body'],
      [{ json: { tenant_id: 't1', room: 'nope:1', message: { text: 'x' } } }, 'invalid_room'],
      [{ json: { tenant_id: 't1', room: 'field:', message: { text: 'x' } } }, 'invalid_room'],
      [{ json: { tenant_id: 't1', room: 42, message: { text: 'x' } } }, 'invalid_room'],
      [{ json: { tenant_id: 't1', room: 'weather' } }, 'invalid_body'],
      [{ json: { tenant_id: 't1', user_id: 'a/b', message: 'x' } }, 'invalid_body'],
    ];
    for (const [init, code] of cases) {
      const res = await gateway.api('/broadcast', init);
      assert.equal(res.status, 400, `${JSON.stringify(init)} -> ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, code, JSON.stringify(init));
      assert.equal(typeof res.body.message, 'string');
    }
  });

  it('answers 413 JSON for a body over 1 MiB, declared or streamed, and the next request still works', async () => {
    const big = { tenant_id: 't1', message: { text: 'x'.repeat(1_100_000) } };
    const declared = await gateway.api('/broadcast', { json: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error, 'payload_too_large');

    const bytes = new TextEncoder().encode(JSON.stringify(big));
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const streamed = await fetch(`${gateway.httpUrl}/broadcast`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE_KEY}` },
    } as RequestInit);
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as Json)['error'], 'payload_too_large');
    // Answered before the body was read: the connection must not be reused for a keep-alive request.
    assert.equal(streamed.headers.get('connection'), 'close');
    for (let i = 0; i < 3; i++) {
      assert.equal((await gateway.api('/healthz')).status, 200);
      assert.equal((await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:empty', message: 'small' } })).status, 200);
    }
  });
});

describe('POST /v1/messages (seeds 004 and 001)', () => {
  let gateway: GatewayProcess;
  const peers: Record<string, Peer> = {};
  before(async () => {
    gateway = await startGateway();
    peers['erinWs'] = await connectPeer(gateway, { transport: 'ws', sub: 'erin' });
    peers['erinSio'] = await connectPeer(gateway, { transport: 'socketio', sub: 'erin' });
    peers['frankSio'] = await connectPeer(gateway, { transport: 'socketio', sub: 'frank' });
    peers['otherTenantErin'] = await connectPeer(gateway, { transport: 'ws', sub: 'erin', tenant: 't2' });
  });
  after(async () => {
    for (const peer of Object.values(peers)) peer.close();
    await gateway.stop();
  });

  it('sends a notification to a list of user_ids and reports per recipient', async () => {
    const res = await gateway.api('/v1/messages', {
      json: { tenant_id: 't1', user_ids: ['erin', 'frank', 'ghost'], notification: { title: 'New Message', body: 'You have a new message' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'partial');
    assert.deepEqual(res.body.sent, ['erin', 'frank']);
    assert.deepEqual(res.body.failed, ['ghost']);
    assert.deepEqual(res.body.recipients, { total: 3, sent: ['erin', 'frank'], failed: ['ghost'] });
    assertTimestamp(res.body.timestamp);

    const got = await receivedBy(peers, 'notification', (m) => m['data']?.['title'] === 'New Message');
    assert.equal(got['erinWs']!.length, 1);
    assert.equal(got['erinSio']!.length, 1);
    assert.equal(got['frankSio']!.length, 1);
    assert.equal(got['otherTenantErin']!.length, 0);
    const note = got['erinWs']![0]!;
    assertTimestamp(note['timestamp']);
    assert.deepEqual({ ...note, timestamp: 'T' }, { type: 'notification', data: { title: 'New Message', body: 'You have a new message' }, timestamp: 'T' });
    assert.deepEqual(got['frankSio']![0], note);
    assert.equal(peers['frankSio']!.inbox.ofType('notification').at(-1)!['__event'], 'notification');
  });

  it('sends a message with metadata to recipientIds, from the calling service', async () => {
    const res = await gateway.api('/v1/messages', {
      json: { tenant_id: 't1', recipientIds: ['erin', 'frank'], message: 'Hello!', metadata: { type: 'chat', thread: 't-9' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'sent');
    assert.deepEqual(res.body.recipients, { total: 2, sent: ['erin', 'frank'], failed: [] });

    const got = await receivedBy(peers, 'message', (m) => m['metadata']?.['thread'] === 't-9');
    assert.deepEqual(Object.fromEntries(Object.entries(got).map(([name, list]) => [name, list.length])), { erinWs: 1, erinSio: 1, frankSio: 1, otherTenantErin: 0 });
    const message = got['erinSio']![0]!;
    assertTimestamp(message['timestamp']);
    assert.deepEqual({ ...message, timestamp: 'T' }, { type: 'message', from: { service: 'backend' }, message: 'Hello!', metadata: { type: 'chat', thread: 't-9' }, timestamp: 'T' });
    assert.deepEqual(got['erinWs']![0], message);
  });

  it('answers status error when nobody is connected, and dedupes the list', async () => {
    const res = await gateway.api('/v1/messages', { json: { tenant_id: 't1', user_ids: ['ghost', 'ghost', 'nobody'], message: 'x' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'error');
    assert.deepEqual(res.body.recipients, { total: 2, sent: [], failed: ['ghost', 'nobody'] });
  });

  it('answers 400 JSON for a bad request', async () => {
    const cases: Array<[Json, string]> = [
      [{ user_ids: ['erin'], message: 'x' }, 'tenant_required'],
      [{ tenant_id: 't1', user_ids: [], message: 'x' }, 'invalid_body'],
      [{ tenant_id: 't1', user_ids: 'erin', message: 'x' }, 'invalid_body'],
      [{ tenant_id: 't1', user_ids: ['erin'] }, 'invalid_body'],
      [{ tenant_id: 't1', user_ids: ['erin'], notification: { body: 'no title' } }, 'invalid_body'],
      [{ tenant_id: 't1', user_ids: [42], message: 'x' }, 'invalid_body'],
    ];
    for (const [json, code] of cases) {
      const res = await gateway.api('/v1/messages', { json });
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(res.body.error, code, JSON.stringify(json));
    }
  });
});

describe('connection management (seeds 001 and 004)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway.stop());

  const status = async (userId: string, tenant = 't1') => {
    const res = await gateway.api(`/v1/users/${userId}/status?tenant_id=${tenant}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it('lists connected users, per tenant or all, with their connection counts', async () => {
    const peers = [
      await connectPeer(gateway, { transport: 'ws', sub: 'kim' }),
      await connectPeer(gateway, { transport: 'socketio', sub: 'kim' }),
      await connectPeer(gateway, { transport: 'socketio', sub: 'lee' }),
      await connectPeer(gateway, { transport: 'ws', sub: 'max', tenant: 't2' }),
    ];
    const byUser = (users: Json[]) => Object.fromEntries(users.map((u) => [`${u['tenant_id']}/${u['user_id']}`, u['connections']]));
    const t1 = await gateway.api('/v1/users/connected?tenant_id=t1');
    assert.equal(t1.status, 200);
    assert.deepEqual(byUser(t1.body.users), { 't1/kim': 2, 't1/lee': 1 });
    assert.equal(t1.body.total, 2);
    const all = await gateway.api('/v1/users/connected');
    assert.deepEqual(byUser(all.body.users), { 't1/kim': 2, 't1/lee': 1, 't2/max': 1 });
    assert.equal((await gateway.api('/v1/users/connected?tenant_id=a/b')).status, 400);
    for (const peer of peers) peer.close();
    await waitFor('everyone to be gone', async () => (await gateway.api('/v1/users/connected')).body.total === 0);
  });

  it('reports a user online with every device, then offline with last_seen', async () => {
    const never = await status('nobody-ever');
    assert.deepEqual(never, { user_id: 'nobody-ever', tenant_id: 't1', online: false, connections: 0, last_seen: null });

    const phone = await connectPeer(gateway, { transport: 'socketio', sub: 'nina' });
    const laptop = await connectPeer(gateway, { transport: 'ws', sub: 'nina' });
    const online = await status('nina');
    assert.equal(online.online, true);
    assert.equal(online.connections, 2);
    assertTimestamp(online.last_seen);
    // Another tenant's nina is someone else.
    assert.equal((await status('nina', 't2')).online, false);

    laptop.close();
    await waitFor('one connection left', async () => (await status('nina')).connections === 1);
    assert.equal((await status('nina')).online, true);

    const before = Date.now();
    phone.close();
    const offline = await waitFor('nina offline', async () => {
      const body = await status('nina');
      return body.online === false ? body : undefined;
    });
    assert.equal(offline.connections, 0);
    assertTimestamp(offline.last_seen);
    assert.ok(Date.parse(offline.last_seen) >= before - 1000, `last_seen ${offline.last_seen} is the disconnect time`);
  });

  it('answers 400 for a status without tenant_id', async () => {
    const res = await gateway.api('/v1/users/nina/status');
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'tenant_required');
  });

  it('DELETE closes every connection of the user (4004 on /ws, disconnect on socket.io) and no one else', async () => {
    const oscarWs = await connectPeer(gateway, { transport: 'ws', sub: 'oscar' });
    const oscarSio = await connectPeer(gateway, { transport: 'socketio', sub: 'oscar' });
    const paulWs = await connectPeer(gateway, { transport: 'ws', sub: 'paul' });
    const paulSio = await connectPeer(gateway, { transport: 'socketio', sub: 'paul' });
    const otherOscar = await connectPeer(gateway, { transport: 'ws', sub: 'oscar', tenant: 't2' });

    const res = await gateway.api('/v1/users/oscar/connections?tenant_id=t1', { method: 'DELETE' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.disconnected, 2);
    assert.equal(res.body.user_id, 'oscar');
    assert.equal(res.body.tenant_id, 't1');

    const wsClosed = await oscarWs.closed;
    assert.equal(wsClosed.code, 4004);
    assert.equal(wsClosed.reason, 'Disconnected By Service');
    const sioClosed = await oscarSio.closed;
    assert.equal(sioClosed.reason, 'io server disconnect');
    const notice = await oscarSio.inbox.next('error');
    assert.equal(notice['close_code'], 4004);

    // Everyone else is still connected and served.
    await paulWs.settle();
    await paulSio.settle();
    await otherOscar.settle();
    await waitFor('oscar offline', async () => (await status('oscar')).online === false);
    assert.equal((await status('oscar', 't2')).connections, 1);
    assert.equal((await status('paul')).connections, 2);

    const again = await gateway.api('/v1/users/oscar/connections?tenant_id=t1', { method: 'DELETE' });
    assert.equal(again.body.disconnected, 0);
    for (const peer of [paulWs, paulSio, otherOscar]) peer.close();
  });

  it('answers 405 for the wrong method and 404 JSON for an unknown path', async () => {
    assert.equal((await gateway.api('/v1/users/oscar/connections?tenant_id=t1')).status, 405);
    const missing = await gateway.api('/v1/nothing');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    // A trailing slash names the same route.
    assert.equal((await gateway.api('/v1/users/connected/?tenant_id=t1')).status, 200);
  });

  it('answers 400 invalid_path for a user id that is not valid percent-encoding, and keeps serving', async () => {
    const bad = await gateway.api('/v1/users/%ZZ/status?tenant_id=t1');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_path');
    assert.equal((await gateway.api('/v1/users/oscar%20x/status?tenant_id=t1')).body.error, 'invalid_body');
    assert.equal((await gateway.api('/healthz')).status, 200);
  });

  it('routes a request target as a URL parser normalises it: absolute-form, dot segments, encoded dots', async () => {
    /** The status for a raw request target, sent as-is. */
    const statusFor = (target: string) => new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(gateway.httpUrl);
      request({ hostname, port, path: target, headers: { authorization: `Bearer ${SERVICE_KEY}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject).end();
    });
    assert.equal(await statusFor(`${gateway.httpUrl}/healthz`), 200);
    assert.equal(await statusFor('/v1/../healthz'), 200);
    assert.equal(await statusFor('/v1/presence?tenant_id=t1'), 200);
    // Not the user route with the user id "..".
    assert.equal(await statusFor('/v1/users/%2e%2e/status?tenant_id=t1'), 404);
    assert.equal(await statusFor('/v1/users/../status?tenant_id=t1'), 404);
  });
});
