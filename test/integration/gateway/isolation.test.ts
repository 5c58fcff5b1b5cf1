/**
 * Tenants never see each other, for every room type, on both transports: two tenants hold rooms of the same
 * names, and what is published in one (through POST /broadcast, or by a client where the policy lets it) reaches
 * that tenant's members only. Then the room policy as clients meet it over the wire.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { TRANSPORTS, assertNoSecretsIn, closeAll, connect, delivered, deliveries, markerOf, token, type Conn, type Transport } from './support.ts';

const TENANTS = ['tenant-a', 'tenant-b'] as const;
type Tenant = (typeof TENANTS)[number];

/** Which clients may broadcast to a room: anyone (chat), a BROADCAST_ROLES role, or no client at all. */
type ClientBroadcast = 'anyone' | 'role' | 'never';

const ROOMS: ReadonlyArray<{ type: string; name: (tenant: Tenant) => string; clientBroadcast: ClientBroadcast }> = [
  { type: 'field', name: () => 'field:f1', clientBroadcast: 'role' },
  { type: 'farm', name: () => 'farm:farm1', clientBroadcast: 'role' },
  { type: 'user', name: () => 'user:u1', clientBroadcast: 'never' },
  { type: 'tenant', name: (tenant) => `tenant:${tenant}`, clientBroadcast: 'role' },
  { type: 'alerts', name: () => 'alerts', clientBroadcast: 'never' },
  { type: 'weather', name: () => 'weather', clientBroadcast: 'never' },
  { type: 'chat', name: () => 'chat:c1', clientBroadcast: 'anyone' },
  { type: 'global', name: () => 'global', clientBroadcast: 'never' },
  { type: 'org', name: () => 'org:o1', clientBroadcast: 'role' },
];

describe('cross-tenant isolation for every room type, on both transports', () => {
  let gateway: GatewayProcess;
  /** Per tenant, one member on each transport; all are user u1 of org o1 with the publisher role. */
  const members = new Map<Tenant, Record<Transport, Conn>>();

  before(async () => {
    gateway = await startGateway();
    for (const tenant of TENANTS) {
      const conns = {} as Record<Transport, Conn>;
      for (const transport of TRANSPORTS) {
        const conn = await connect(gateway, transport, { token: await token({ sub: 'u1', tenant, orgs: ['o1'], roles: ['publisher'] }), tenant });
        const topics = ROOMS.map((room) => room.name(tenant)).filter((room) => !room.startsWith('user:') && !room.startsWith('tenant:'));
        const reply = await conn.request('subscribe', { topics });
        assert.deepEqual(reply?.['topics'], topics);
        assert.deepEqual(reply?.['failed'], []);
        conns[transport] = conn;
      }
      members.set(tenant, conns);
    }
  });
  after(async () => {
    for (const conns of members.values()) closeAll(Object.values(conns));
    await gateway.stop();
  });

  const publish = async (tenant: Tenant, room: string, marker: string) => {
    const { status, body } = await gateway.api('/broadcast', { json: { tenant_id: tenant, room, message: { marker } } });
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  };

  for (const room of ROOMS) {
    it(`${room.type}: a publish in one tenant never reaches the other tenant's members of the same room`, async () => {
      const mark = (tenant: Tenant, source: string) => `${room.type}/${tenant}/${source}`;
      for (const tenant of TENANTS) {
        const sent = await publish(tenant, room.name(tenant), mark(tenant, 'http'));
        assert.equal(sent.recipients, 2, `${tenant}: exactly its own two members`);
      }
      const expected = new Map<Conn, string[]>();
      for (const tenant of TENANTS) for (const conn of Object.values(members.get(tenant)!)) expected.set(conn, [mark(tenant, 'http')]);

      // Client broadcasts: tenant A's raw /ws member and tenant B's socket.io member each publish in their tenant.
      const senders: Array<[Tenant, Transport]> = [['tenant-a', 'ws'], ['tenant-b', 'socketio']];
      for (const [tenant, transport] of senders) {
        const sender = members.get(tenant)![transport];
        const reply = await sender.request('broadcast', { room: room.name(tenant), message: { marker: mark(tenant, transport) } });
        if (room.clientBroadcast === 'never') {
          assert.equal(reply?.['code'], 'forbidden', `${room.type} is not for client broadcasts`);
          continue;
        }
        assert.equal(reply, null, JSON.stringify(reply));
        const other = members.get(tenant)![transport === 'ws' ? 'socketio' : 'ws'];
        expected.get(other)!.push(mark(tenant, transport));
      }

      // A last publish in each tenant: once it has arrived, anything that leaked would have arrived before it.
      for (const tenant of TENANTS) await publish(tenant, room.name(tenant), mark(tenant, 'end'));
      for (const tenant of TENANTS) {
        for (const conn of Object.values(members.get(tenant)!)) {
          await delivered(conn, (m) => markerOf(m) === mark(tenant, 'end'), `the end marker of ${tenant}`);
          expected.get(conn)!.push(mark(tenant, 'end'));
        }
      }
      for (const [conn, markers] of expected) {
        const received = deliveries(conn).map(markerOf).filter((marker) => String(marker).startsWith(`${room.type}/`));
        assert.deepEqual(received.sort(), [...markers].sort(), `${conn.transport} member of ${conn.welcome['tenant']['tenant_id']}`);
        for (const delivery of deliveries(conn).filter((m) => String(markerOf(m)).startsWith(`${room.type}/`))) {
          if (delivery['type'] === 'message') assert.equal(delivery['room'], room.name(conn.welcome['tenant']['tenant_id']));
        }
      }
    });
  }

  it('cannot be crossed by naming the other tenant: its tenant room is refused, a service publish stays in the tenant it names', async () => {
    for (const transport of TRANSPORTS) {
      const member = members.get('tenant-b')![transport];
      const reply = await member.request('subscribe', { topics: ['tenant:tenant-a'] });
      assert.deepEqual(reply?.['failed'], ['tenant:tenant-a']);
      assert.equal((await member.request('join_room', { room: 'tenant:tenant-a' }))?.['code'], 'forbidden');
    }
    // "tenant:tenant-a" inside tenant-b is an empty room of tenant-b, not tenant-a's room.
    assert.equal((await publish('tenant-b', 'tenant:tenant-a', 'crossing')).recipients, 0);
    // A user id names a user of the given tenant only.
    const { body } = await gateway.api('/broadcast', { json: { tenant_id: 'tenant-a', user_id: 'u1', message: { marker: 'to-u1-of-a' } } });
    assert.equal(body.recipients, 2);
    await publish('tenant-a', 'tenant:tenant-a', 'barrier-a');
    await publish('tenant-b', 'tenant:tenant-b', 'barrier-b');
    for (const tenant of TENANTS) {
      for (const conn of Object.values(members.get(tenant)!)) {
        await delivered(conn, (m) => markerOf(m) === `barrier-${tenant.slice(-1)}`);
        const markers = deliveries(conn).map(markerOf);
        assert.ok(!markers.includes('crossing'));
        assert.equal(markers.includes('to-u1-of-a'), tenant === 'tenant-a');
      }
    }
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});

describe('room policy over the wire', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway.stop());

  for (const transport of TRANSPORTS) {
    it(`${transport}: subscribe answers \`subscribed\` with the refused topics in \`failed\`, each with its reason`, async () => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'alice', tenant: 't1', orgs: ['o1'] }), tenant: 't1' });
      const topics = ['field:9', 'user:alice', 'user:bob', 'org:o1', 'org:o2', 'tenant:t2', 'not a room', 'weather', 'nope:1'];
      const reply = await conn.request('subscribe', { topics });
      assert.equal(reply?.['type'], 'subscribed');
      assert.deepEqual(reply?.['topics'], ['field:9', 'user:alice', 'org:o1', 'weather']);
      assert.deepEqual(reply?.['failed'], ['user:bob', 'org:o2', 'tenant:t2', 'not a room', 'nope:1']);
      assert.deepEqual(reply?.['errors'].map((e: { code: string }) => e.code), ['forbidden', 'forbidden', 'forbidden', 'invalid_room', 'invalid_room']);
      assert.equal(typeof reply?.['message_ar'], 'string');
      const unsubscribed = await conn.request('unsubscribe', { topics: ['field:9', 'tenant:t1'] });
      assert.deepEqual(unsubscribed?.['topics'], ['field:9'], 'automatic rooms cannot be left');
      conn.close();
    });

    it(`${transport}: a user room is its own user's; an org room needs the org in the token's orgs claim`, async () => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'alice', tenant: 't1', orgs: [{ id: 'o1' }] as never }), tenant: 't1' });
      assert.equal((await conn.request('join_room', { room: 'user:alice' }))?.['type'], 'room_joined');
      assert.equal((await conn.request('join_room', { room: 'user:bob' }))?.['code'], 'forbidden');
      assert.equal((await conn.request('join_room', { room: 'org:o1' }))?.['type'], 'room_joined');
      assert.equal((await conn.request('join_room', { room: 'org:o2' }))?.['code'], 'forbidden');
      assert.equal((await conn.request('leave_room', { room: 'user:alice' }))?.['code'], 'forbidden');
      assert.equal((await conn.request('leave_room', { room: 'org:o1' }))?.['type'], 'room_left');
      conn.close();
    });

    it(`${transport}: alerts, weather and global are read-only for clients, even for admins; user rooms take no client broadcast`, async () => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'root', tenant: 't1', roles: ['admin'] }), tenant: 't1' });
      for (const room of ['alerts', 'weather', 'global']) {
        assert.equal((await conn.request('join_room', { room }))?.['type'], 'room_joined');
        const reply = await conn.request('broadcast', { room, message: { text: 'x' } });
        assert.equal(reply?.['code'], 'forbidden', room);
        assert.match(reply?.['message'], /read-only/);
      }
      assert.equal((await conn.request('broadcast', { room: 'user:root', message: { text: 'x' } }))?.['code'], 'forbidden');
      conn.close();
    });

    it(`${transport}: client broadcast goes to chat rooms for anyone, elsewhere only with a BROADCAST_ROLES role`, async () => {
      const rooms = ['chat:c', 'field:f', 'farm:f', 'tenant:t1'];
      const listener = await connect(gateway, 'ws', { token: await token({ sub: 'listener', tenant: 't1' }), tenant: 't1' });
      await listener.request('subscribe', { topics: rooms });
      const cases: Array<[string[] | undefined, string, boolean]> = [
        [undefined, 'chat:c', true], [['viewer'], 'field:f', false], [undefined, 'farm:f', false], [undefined, 'tenant:t1', false],
        [['publisher'], 'field:f', true], [['admin'], 'farm:f', true], [['admin'], 'tenant:t1', true],
      ];
      for (const [roles, room, allowed] of cases) {
        const conn = await connect(gateway, transport, { token: await token({ sub: 'speaker', tenant: 't1', ...(roles ? { roles } : {}) }), tenant: 't1' });
        await conn.request('join_room', { room });
        const marker = `${roles?.join() ?? 'none'}@${room}`;
        const reply = await conn.request('broadcast', { room, message: { marker } });
        if (allowed) {
          assert.equal(reply, null, `${marker}: ${JSON.stringify(reply)}`);
          const got = await delivered(listener, (m) => markerOf(m) === marker);
          assert.deepEqual(got['from'], { user_id: 'speaker' });
          assert.equal(got['room'], room);
        } else {
          assert.equal(reply?.['code'], 'forbidden', marker);
        }
        conn.close();
      }
      // Broadcasting needs membership, even where allowed.
      const outsider = await connect(gateway, transport, { token: await token({ sub: 'outsider', tenant: 't1' }), tenant: 't1' });
      assert.equal((await outsider.request('broadcast', { room: 'chat:c', message: { marker: 'outside' } }))?.['code'], 'not_in_room');
      outsider.close();
      await delivered(listener, (m) => markerOf(m) === 'admin@tenant:t1');
      assert.ok(!deliveries(listener).some((m) => ['outside', 'viewer@field:f', 'none@farm:f', 'none@tenant:t1'].includes(String(markerOf(m)))));
      listener.close();
    });
  }

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});
