/**
 * The NATS bridge against a real nats-server and real gateway processes: seed 000's subjects reach clients of
 * both transports as the seed's event envelope, in their tenant only; drops are counted; one replica of a
 * queue group handles each message; a NATS restart is survived; with JetStream, events published while every
 * replica was down are delivered when one comes back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { ISO_TIME, TRANSPORTS, connectPeer, payload, type Peer } from '../../harness/peers.ts';
import { waitFor } from '../../harness/process.ts';
import { startNats, startRedis, type Service } from '../../harness/services.ts';
import type { Json } from '../../harness/clients.ts';
import { metric } from './support.ts';

type Nats = Service & { monitorPort: number };

/** Publishes JSON (or raw text) with a connection of its own, flushed: the server has every message when this resolves. */
async function publish(nats: Nats, messages: readonly (readonly [subject: string, body: Json | string])[]): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    for (const [subject, body] of messages) nc.publish(subject, typeof body === 'string' ? body : JSON.stringify(body));
    await nc.flush();
  } finally {
    await nc.close();
  }
}

async function readiness(gateway: GatewayProcess): Promise<{ status: number; nats: unknown }> {
  const { status, body } = await gateway.api('/readyz', { serviceKey: null });
  return { status, nats: body.nats };
}

function waitReadiness(gateway: GatewayProcess, nats: boolean): Promise<unknown> {
  return waitFor(`/readyz with nats ${nats}`, async () => {
    const ready = await readiness(gateway);
    return ready.nats === nats && ready.status === (nats ? 200 : 503);
  }, 20_000);
}

const events = (peer: Peer) => peer.inbox.ofType('event').map(payload);

async function subscribed(peer: Peer, topics: string[]): Promise<void> {
  const reply = await peer.request('subscribe', { topics }, 'subscribed');
  assert.deepEqual(reply?.['topics'], topics, JSON.stringify(reply));
}

describe('NATS bridge (core NATS, queue group)', () => {
  let nats: Nats;
  let gateway: GatewayProcess;
  const peers: Peer[] = [];
  before(async () => {
    nats = await startNats();
    gateway = await startGateway({ NATS_URL: nats.url });
    await waitReadiness(gateway, true);
  });
  after(async () => {
    for (const peer of peers) peer.close();
    await gateway?.stop();
    await nats?.stop();
  });

  const peer = async (options: Parameters<typeof connectPeer>[1]) => {
    const p = await connectPeer(gateway, options);
    peers.push(p);
    return p;
  };

  it("delivers sahool.fields.123.updated to field:123 on both transports as seed 000's envelope, in its tenant only", async () => {
    const members = await Promise.all(TRANSPORTS.map((transport) => peer({ transport, sub: `member-${transport}`, tenant: 't1' })));
    const outsider = await peer({ transport: 'ws', sub: 'outsider', tenant: 't2' });
    for (const p of [...members, outsider]) await subscribed(p, ['field:123']);

    const body = { field_id: '123', tenant_id: 't1', name: 'North Field', updated_at: '2024-01-15T10:30:00Z' };
    await publish(nats, [['sahool.fields.123.updated', body]]);

    for (const member of members) {
      const event = payload(await member.inbox.next((m) => m['type'] === 'event'));
      assert.match(String(event['timestamp']), ISO_TIME);
      assert.deepEqual({ ...event, timestamp: 'T' }, {
        type: 'event',
        event_type: 'field.updated',
        priority: 'medium',
        message: 'Field data updated',
        message_ar: 'تم تحديث بيانات الحقل',
        data: body,
        subject: 'sahool.fields.123.updated',
        timestamp: 'T',
      }, member.transport);
    }
    await outsider.settle();
    assert.deepEqual(events(outsider), [], "tenant t2's field:123 got tenant t1's event");

    // The outsider's own tenant still reaches it.
    await publish(nats, [['sahool.fields.123.updated', { field_id: '123', tenant_id: 't2' }]]);
    const own = payload(await outsider.inbox.next((m) => m['type'] === 'event'));
    assert.equal(own['data']['tenant_id'], 't2');
  });

  it('gives each seed 000 subject family its event type, priority and texts, routed by the payload ids', async () => {
    const member = await peer({ transport: 'socketio', sub: 'dave', tenant: 't3' });
    await subscribed(member, ['weather', 'alerts', 'field:f7', 'farm:m1']);
    const expected: Record<string, { body: Json; eventType: string; priority: string; message: string; messageAr: string }> = {
      'sahool.weather.alert': { body: {}, eventType: 'weather.alert', priority: 'high', message: 'Important weather alert', messageAr: 'تنبيه طقس مهم' },
      'sahool.crop.disease.detected': { body: { field_id: 'f7' }, eventType: 'crop.disease.detected', priority: 'high', message: 'Disease detected', messageAr: 'تم اكتشاف مرض' },
      'sahool.tasks.x.completed': { body: { user_id: 'dave' }, eventType: 'task.completed', priority: 'low', message: 'Task completed', messageAr: 'تم إكمال المهمة' },
      'sahool.inventory.out_of_stock': { body: {}, eventType: 'inventory.out_of_stock', priority: 'high', message: 'Out of stock', messageAr: 'نفد المخزون' },
      'sahool.spray.window.optimal': { body: { farm_id: 'm1' }, eventType: 'spray.window.optimal', priority: 'medium', message: 'Optimal spray window', messageAr: 'نافذة الرش المثلى' },
      'sahool.iot.offline': { body: { user_id: 'dave', field_id: 'f7' }, eventType: 'iot.offline', priority: 'medium', message: 'Sensor offline', messageAr: 'المستشعر غير متصل' },
      'sahool.alerts.frost': { body: {}, eventType: 'system.notification', priority: 'medium', message: 'System notification', messageAr: 'إشعار النظام' },
    };
    await publish(nats, Object.entries(expected).map(([subject, { body }]) => [subject, { tenant_id: 't3', ...body }]));

    // Several subscriptions, so arrival order is free: wait for all, then check each by subject.
    const received = await waitFor('every event', () => (events(member).length >= Object.keys(expected).length ? events(member) : undefined));
    await member.settle();
    assert.equal(events(member).length, Object.keys(expected).length, 'each event once, even where several of its rooms apply');
    for (const [subject, want] of Object.entries(expected)) {
      const event = received.find((e) => e['subject'] === subject);
      assert.ok(event, `no event for ${subject}`);
      assert.deepEqual(
        { event_type: event['event_type'], priority: event['priority'], message: event['message'], message_ar: event['message_ar'] },
        { event_type: want.eventType, priority: want.priority, message: want.message, message_ar: want.messageAr },
        subject,
      );
    }
  });

  it('drops a payload without a tenant and one that is not JSON, and counts both', async () => {
    const member = await peer({ transport: 'ws', sub: 'erin', tenant: 't4' });
    await subscribed(member, ['field:d1']);
    const before = {
      noTenant: await metric(gateway, 'rtgw_nats_dropped_total', { reason: 'no_tenant' }),
      invalid: await metric(gateway, 'rtgw_nats_dropped_total', { reason: 'invalid_payload' }),
      dropped: await metric(gateway, 'rtgw_nats_messages_total', { outcome: 'dropped' }),
    };
    // One subject, so one subscription: the drops are handled before the valid message that follows them.
    await publish(nats, [
      ['sahool.fields.d1.updated', { field_id: 'd1', marker: 'no tenant' }],
      ['sahool.fields.d1.updated', '{not json'],
      ['sahool.fields.d1.updated', { field_id: 'd1', tenant_id: 't4', marker: 'valid' }],
    ]);
    const event = payload(await member.inbox.next((m) => m['type'] === 'event'));
    assert.equal(event['data']['marker'], 'valid');
    assert.equal(await metric(gateway, 'rtgw_nats_dropped_total', { reason: 'no_tenant' }), before.noTenant + 1);
    assert.equal(await metric(gateway, 'rtgw_nats_dropped_total', { reason: 'invalid_payload' }), before.invalid + 1);
    assert.equal(await metric(gateway, 'rtgw_nats_messages_total', { outcome: 'dropped' }), before.dropped + 2);
    await member.settle();
    assert.equal(events(member).length, 1);
  });

  it('survives a NATS restart: unready (503, nats false) while NATS is down, ready and delivering after', async () => {
    const member = await peer({ transport: 'ws', sub: 'frank', tenant: 't5' });
    await subscribed(member, ['field:r1']);
    assert.equal(await metric(gateway, 'rtgw_nats_connected'), 1);

    await nats.current().stop();
    await waitReadiness(gateway, false);
    assert.equal(await metric(gateway, 'rtgw_nats_connected'), 0);

    await nats.restart();
    await waitReadiness(gateway, true);
    assert.equal(await metric(gateway, 'rtgw_nats_connected'), 1);
    // Ready means the server has the subscriptions again (confirmed by a round trip): the first publish arrives.
    await publish(nats, [['sahool.fields.r1.updated', { field_id: 'r1', tenant_id: 't5' }]]);
    const event = payload(await member.inbox.next((m) => m['type'] === 'event'));
    assert.equal(event['subject'], 'sahool.fields.r1.updated');
    assert.equal((await readiness(gateway)).status, 200);
  });
});

describe('NATS bridge: NATS_SUBJECTS', () => {
  let nats: Nats;
  let gateway: GatewayProcess;
  before(async () => {
    nats = await startNats();
    gateway = await startGateway({ NATS_URL: nats.url, NATS_SUBJECTS: 'farmco.>' });
    await waitReadiness(gateway, true);
  });
  after(async () => {
    await gateway?.stop();
    await nats?.stop();
  });

  it('subscribes the configured subjects only', async () => {
    const member = await connectPeer(gateway, { transport: 'socketio', sub: 'gina', tenant: 't1' });
    await subscribed(member, ['field:5']);
    await publish(nats, [
      ['sahool.fields.5.updated', { field_id: '5', tenant_id: 't1', marker: 'default subject' }],
      ['farmco.fields.5', { field_id: '5', tenant_id: 't1', event_type: 'field.updated', marker: 'custom subject' }],
    ]);
    const event = payload(await member.inbox.next((m) => m['type'] === 'event'));
    assert.equal(event['data']['marker'], 'custom subject');
    assert.equal(event['event_type'], 'field.updated');
    assert.equal(event['subject'], 'farmco.fields.5');
    await member.settle();
    assert.equal(events(member).length, 1);
    assert.equal(await metric(gateway, 'rtgw_nats_messages_total', { outcome: 'delivered' }), 1);
    member.close();
  });
});

describe('NATS bridge: two replicas in one queue group (no Redis: each a fleet of one)', () => {
  let nats: Nats;
  let replicas: GatewayProcess[];
  before(async () => {
    nats = await startNats();
    replicas = await Promise.all([startGateway({ NATS_URL: nats.url }), startGateway({ NATS_URL: nats.url })]);
    await Promise.all(replicas.map((replica) => waitReadiness(replica, true)));
  });
  after(async () => {
    await Promise.all((replicas ?? []).map((replica) => replica.stop()));
    await nats?.stop();
  });

  it('hands each message to exactly one replica', async () => {
    const count = 40;
    await publish(nats, Array.from({ length: count }, (_, i) => [`sahool.fields.q${i}.updated`, { tenant_id: 't1', field_id: `q${i}` }] as const));

    // The server's view, final once the publisher's flush returned: every bridge subscription is in the queue
    // group, and the messages they were given add up to the number published.
    const connz = await (await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?subs=detail`)).json() as {
      connections: { name?: string; subscriptions_list_detail?: { subject: string; qgroup?: string; msgs: number }[] }[];
    };
    const bridges = connz.connections.filter((c) => c.name === 'rtgw-bridge');
    assert.equal(bridges.length, 2);
    const subs = bridges.flatMap((c) => c.subscriptions_list_detail ?? []);
    assert.ok(subs.length > 0 && subs.every((s) => s.qgroup === 'rtgw-bridge'), JSON.stringify(subs));
    assert.equal(subs.reduce((sum, s) => sum + s.msgs, 0), count);

    // The replicas' view: together they delivered each message once.
    const delivered = () => Promise.all(replicas.map((r) => metric(r, 'rtgw_nats_messages_total', { outcome: 'delivered' })));
    const perReplica = await waitFor('every message handled', async () => {
      const counts = await delivered();
      return counts.reduce((a, b) => a + b, 0) >= count ? counts : undefined;
    });
    assert.equal(perReplica.reduce((a, b) => a + b, 0), count, `per replica: ${perReplica.join(', ')}`);
  });
});

describe('NATS bridge in a fleet (two replicas sharing Redis and one queue group)', () => {
  let nats: Nats;
  let redis: Service;
  let replicas: GatewayProcess[];
  const peers: Peer[] = [];
  before(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    const env = { NATS_URL: nats.url, REDIS_URL: redis.url, RECOVERY_WINDOW_SECONDS: '60' };
    replicas = await Promise.all([startGateway(env), startGateway(env)]);
    await Promise.all(replicas.map((replica) => waitReadiness(replica, true)));
  });
  after(async () => {
    for (const peer of peers) peer.close();
    await Promise.all((replicas ?? []).map((replica) => replica.stop()));
    await nats?.stop();
    await redis?.stop();
  });

  it('reaches the members on every replica exactly once per message, whichever replica handled it', async () => {
    const count = 20;
    for (const [index, transport] of [[0, 'ws'], [1, 'socketio'], [1, 'ws']] as const) {
      const member = await connectPeer(replicas[index]!, { transport, sub: `m${index}-${transport}`, tenant: 't1' });
      peers.push(member);
      await subscribed(member, ['field:fleet']);
    }
    await publish(nats, Array.from({ length: count }, (_, i) => ['sahool.fields.fleet.updated', { tenant_id: 't1', field_id: 'fleet', seq: i }] as const));

    for (const member of peers) {
      const seqs = () => new Set(events(member).map((e) => e['data']['seq']));
      await waitFor(`every message on ${member.transport}`, () => seqs().size === count);
      assert.equal(events(member).length, count, `${member.transport}: a message arrived twice`);
    }
    const handled = await Promise.all(replicas.map((r) => metric(r, 'rtgw_nats_messages_total', { outcome: 'delivered' })));
    assert.equal(handled.reduce((a, b) => a + b, 0), count, `handled per replica: ${handled.join(', ')}`);
  });
});

describe('NATS bridge with JetStream (durable consumer shared by the replicas)', () => {
  const STREAM = 'RTGW_TEST_EVENTS';
  const DURABLE = 'rtgw-test';
  let nats: Nats;
  let env: Record<string, string>;
  const running: GatewayProcess[] = [];
  before(async () => {
    nats = await startNats({ jetstream: true });
    env = { NATS_URL: nats.url, NATS_JETSTREAM_STREAM: STREAM, NATS_JETSTREAM_DURABLE: DURABLE };
  });
  after(async () => {
    await Promise.all(running.map((g) => g.stop()));
    await nats?.stop();
  });

  const start = async () => {
    const gateway = await startGateway(env);
    running.push(gateway);
    return gateway;
  };

  async function consumerState(): Promise<{ pending: number; ackPending: number; delivered: number }> {
    const nc: NatsConnection = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(nc)).consumers.info(STREAM, DURABLE);
      return { pending: info.num_pending, ackPending: info.num_ack_pending, delivered: info.delivered.stream_seq };
    } finally {
      await nc.close();
    }
  }

  it('creates the stream and the durable consumer, delivers, acks, and terminates what it drops', async () => {
    const gateway = await start();
    await waitReadiness(gateway, true);
    const member = await connectPeer(gateway, { transport: 'ws', sub: 'hana', tenant: 't1' });
    await subscribed(member, ['field:j1']);
    await publish(nats, [
      ['sahool.fields.j1.updated', { field_id: 'j1', marker: 'no tenant' }],
      ['sahool.fields.j1.updated', { field_id: 'j1', tenant_id: 't1', marker: 'live' }],
    ]);
    const event = payload(await member.inbox.next((m) => m['type'] === 'event'));
    assert.equal(event['data']['marker'], 'live');
    assert.equal(event['event_type'], 'field.updated');
    assert.equal(await metric(gateway, 'rtgw_nats_dropped_total', { reason: 'no_tenant' }), 1);
    await waitFor('the consumer to have acked everything', async () => {
      const state = await consumerState();
      return state.pending === 0 && state.ackPending === 0 && state.delivered === 2;
    });
    member.close();
    await gateway.stop();
  });

  it('delivers events published while every replica was down once one is back', async () => {
    // Every replica is down (the previous test stopped its one). Publish with JetStream acks: stored for sure.
    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    for (let i = 1; i <= 3; i++) await js.publish('sahool.fields.j2.updated', JSON.stringify({ field_id: 'j2', tenant_id: 't1', seq: i }));
    await nc.close();
    assert.equal((await consumerState()).pending, 3);

    // Deterministic ordering: NATS goes down (keeping its store) before the new replica starts, so the client
    // can connect and subscribe before the bridge can pull; NATS then comes back and the backlog flows.
    await nats.current().stop();
    const gateway = await start();
    await waitReadiness(gateway, false);
    const member = await connectPeer(gateway, { transport: 'socketio', sub: 'ivan', tenant: 't1' });
    await subscribed(member, ['field:j2']);
    await nats.restart();

    const received = await waitFor('the backlog', () => (events(member).length >= 3 ? events(member) : undefined), 20_000);
    assert.deepEqual(received.map((e) => e['data']['seq']), [1, 2, 3]);
    assert.ok(received.every((e) => e['event_type'] === 'field.updated' && e['priority'] === 'medium'));
    await waitFor('the consumer to have acked the backlog', async () => {
      const state = await consumerState();
      return state.pending === 0 && state.ackPending === 0;
    });
    assert.equal(await metric(gateway, 'rtgw_nats_messages_total', { outcome: 'delivered' }), 3);
    await waitReadiness(gateway, true);
    member.close();
  });
});
