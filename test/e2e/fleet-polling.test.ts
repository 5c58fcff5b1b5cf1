/**
 * socket.io's HTTP long-polling transport through HAProxy in front of three replicas. Every poll is a new HTTP
 * request, and only the replica that handed out the engine.io session id knows it, so a polling session works
 * only if the balancer sends all its requests to one replica: HAProxy's RTGW_AFFINITY cookie does that, and
 * socket.io-client in Node keeps cookies (its cookie jar) when `withCredentials` is set.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sioClient, sioConnected, sioRefusal, type SioClient } from '../harness/clients.ts';
import { waitFor } from '../harness/process.ts';
import { startHaproxy, type Service } from '../harness/services.ts';
import { hsToken } from '../harness/tokens.ts';
import { metric } from '../integration/gateway/support.ts';
import { startFleet, type Fleet } from './fleet.ts';

const TENANT = 't-polling';
const CLIENTS = 6;

/** The replica HAProxy's cookie pins a client to (g0, g1, g2): read from the client's cookie jar. */
function affinityOf(client: SioClient): string | undefined {
  const jar = (client.socket.io.engine as unknown as { _cookieJar?: { cookies: Iterable<[string, { value: string }]> } })._cookieJar;
  for (const [name, cookie] of jar?.cookies ?? []) if (name === 'RTGW_AFFINITY') return cookie.value;
  return undefined;
}

describe('fleet: socket.io long-polling behind HAProxy with cookie stickiness', () => {
  let fleet: Fleet;
  let proxy: Service;
  const clients: SioClient[] = [];
  before(async () => {
    fleet = await startFleet(3);
    proxy = await startHaproxy(fleet.gateways.map((g, i) => ({ name: `g${i}`, port: g.port })));
  });
  after(async () => {
    for (const client of clients) client.close();
    await proxy.stop();
    await fleet.stop();
  });

  const pollingClient = async (sub: string, options: { withCredentials: boolean }) => {
    const client = sioClient(proxy.url, {
      transports: ['polling'],
      withCredentials: options.withCredentials,
      auth: { token: await hsToken({ sub, tenant: TENANT }) },
      query: { tenant_id: TENANT },
    });
    clients.push(client);
    return client;
  };

  it('without the cookie, the next request of a session reaches another replica: 400 "Session ID unknown"', async () => {
    const handshake = await fetch(`${proxy.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(handshake.status, 200);
    const sid = (JSON.parse((await handshake.text()).slice(1)) as { sid: string }).sid;
    const cookie = handshake.headers.getSetCookie().find((c) => c.startsWith('RTGW_AFFINITY='))?.split(';')[0];
    assert.ok(cookie, 'HAProxy inserts the affinity cookie');

    // Round robin over three replicas: the request right after the handshake goes to another one.
    const lost = await fetch(`${proxy.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.equal(lost.status, 400);
    assert.deepEqual(await lost.json(), { code: 1, message: 'Session ID unknown' });
    // With the cookie it reaches the replica that knows the session (which answers its pending poll).
    const kept = await fetch(`${proxy.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', headers: { cookie }, body: '1' });
    assert.equal(kept.status, 200);

    // socket.io-client without a cookie jar: the same failure, seen as a connect_error.
    const cookieless = await pollingClient('no-jar', { withCredentials: false });
    const refusal = await sioRefusal(cookieless);
    assert.match(refusal.message, /xhr (poll|post) error/);
  });

  it('with the cookie, polling clients connect, subscribe, get publishes made to any replica and broadcast to each other', async () => {
    const members: SioClient[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = await pollingClient(`poller-${i}`, { withCredentials: true });
      await sioConnected(client);
      assert.deepEqual((await client.request('subscribe', { topics: ['field:p1', 'chat:p'] })).topics, ['field:p1', 'chat:p']);
      members.push(client);
    }
    // Each session sits where its cookie says, and the replicas hold exactly those sessions.
    const pinned = members.map(affinityOf);
    assert.ok(pinned.every((name) => name !== undefined && /^g[012]$/.test(name)), JSON.stringify(pinned));
    assert.ok(new Set(pinned).size > 1, `round robin spreads the handshakes: ${JSON.stringify(pinned)}`);
    for (const [index, gateway] of fleet.gateways.entries()) {
      const expected = pinned.filter((name) => name === `g${index}`).length;
      assert.equal(await metric(gateway, 'rtgw_connections', { transport: 'socketio' }), expected, `g${index}`);
    }

    // An HTTP publish to each replica in turn reaches every member once.
    for (const [index, gateway] of fleet.gateways.entries()) {
      const res = await gateway.api('/broadcast', { json: { tenant_id: TENANT, field_id: 'p1', message: { event_type: 'field.updated', via: index } } });
      assert.equal(res.status, 200);
      assert.equal(res.body.recipients, CLIENTS);
    }
    // Client broadcasts: every member sends one, every other member gets it.
    for (const [i, client] of members.entries()) assert.equal(await client.request('broadcast', { room: 'chat:p', message: `from ${i}` }), null);
    for (const [i, client] of members.entries()) {
      const vias = () => client.inbox.ofType('event').map((m) => m['data']['via']);
      const senders = () => client.inbox.messages.filter((m) => m['__event'] === 'message').map((m) => m['message'] as string).sort();
      await waitFor(`client ${i}: 3 publishes and ${CLIENTS - 1} broadcasts`, () => vias().length >= 3 && senders().length >= CLIENTS - 1);
      await sleep(300);
      assert.deepEqual(vias(), [0, 1, 2], `client ${i}`);
      assert.deepEqual(senders(), members.map((_, j) => `from ${j}`).filter((_, j) => j !== i).sort(), `client ${i}`);
    }
    // Still polling (no upgrade was allowed), still pinned to the same replica, never disconnected.
    for (const [i, client] of members.entries()) {
      assert.equal(client.socket.io.engine.transport.name, 'polling');
      assert.equal(affinityOf(client), pinned[i]);
      assert.equal(client.socket.connected, true);
    }
  });
});
