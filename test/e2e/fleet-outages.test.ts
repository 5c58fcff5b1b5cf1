/**
 * Outages of the fleet's services, recovered without restarting a gateway:
 * - Redis restarts (no persistence: the stream, sessions and presence keys are gone): every replica is unready
 *   while it is down and ready after; clients that stayed connected get cross-replica deliveries again, and
 *   presence knows them again.
 * - NATS restarts: with three replicas in one queue group sharing Redis, each message published after the
 *   restart is handled by one replica and reaches every subscribed client on every replica exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import type { GatewayProcess } from '../harness/gateway.ts';
import { connectPeer, type Peer } from '../harness/peers.ts';
import { waitFor } from '../harness/process.ts';
import { metric } from '../integration/gateway/support.ts';
import { startFleet, type Fleet } from './fleet.ts';

type Dependency = 'redis' | 'nats';

/** Waits until /readyz on `gateway` reports `dependency` as `up`, with the matching status (200 or 503). */
function readiness(gateway: GatewayProcess, dependency: Dependency, up: boolean): Promise<unknown> {
  return waitFor(`/readyz with ${dependency} ${up} on :${gateway.port}`, async () => {
    const { status, body } = await gateway.api('/readyz', { serviceKey: null });
    return body[dependency] === up && status === (up ? 200 : 503);
  }, 30_000);
}

const allReady = (fleet: Fleet, dependency: Dependency, up: boolean) => Promise.all(fleet.gateways.map((g) => readiness(g, dependency, up)));

/** One member per replica and transport, subscribed to `topic`. */
async function membersOnEveryReplica(fleet: Fleet, tenant: string, topic: string): Promise<Peer[]> {
  const members: Peer[] = [];
  for (const [index, gateway] of fleet.gateways.entries()) {
    for (const transport of ['ws', 'socketio'] as const) {
      const member = await connectPeer(gateway, { transport, sub: `m${index}-${transport}`, tenant });
      assert.deepEqual((await member.request('subscribe', { topics: [topic] }, 'subscribed'))?.['topics'], [topic]);
      members.push(member);
    }
  }
  return members;
}

/** The `seq` of every event a member received for `marker`, in order. */
const seqs = (member: Peer, marker: string): number[] =>
  member.inbox.ofType('event').filter((m) => m['data']?.['marker'] === marker).map((m) => m['data']['seq'] as number);

/**
 * Every member got seq 0..count-1 exactly once; in publish order unless `anyOrder` (a queue group hands a
 * subject's messages to several replicas, and nothing orders their publishes to the stream).
 */
async function expectEachOnce(members: readonly Peer[], marker: string, count: number, anyOrder = false): Promise<void> {
  const expected = Array.from({ length: count }, (_, i) => i);
  for (const [i, member] of members.entries()) {
    await waitFor(`member ${i} (${member.transport}) to get ${count} "${marker}" events`, () => seqs(member, marker).length >= count, 20_000);
  }
  await sleep(300);
  for (const [i, member] of members.entries()) {
    const got = seqs(member, marker);
    assert.deepEqual(anyOrder ? got.sort((a, b) => a - b) : got, expected, `member ${i} (${member.transport}): lost or doubled`);
  }
}

describe('fleet: Redis restarts under three running replicas', () => {
  let fleet: Fleet;
  const members: Peer[] = [];
  before(async () => {
    fleet = await startFleet(3);
  });
  after(async () => {
    for (const member of members) member.close();
    await fleet.stop();
  });

  it('unready while Redis is down, ready after; connected clients get cross-replica deliveries and presence again', async () => {
    const tenant = 't-redis';
    members.push(...(await membersOnEveryReplica(fleet, tenant, 'field:o1')));
    const publish = async (via: number, marker: string, seq: number) => {
      const res = await fleet.gateways[via]!.api('/broadcast', { json: { tenant_id: tenant, field_id: 'o1', message: { event_type: 'field.updated', marker, seq } } });
      assert.equal(res.status, 200);
      return res.body.recipients as number;
    };
    assert.equal(await publish(0, 'before', 0), members.length);
    await expectEachOnce(members, 'before', 1);
    const online = (via: number) => fleet.gateways[via]!.api(`/v1/users/m1-ws/status?tenant_id=${tenant}`);
    assert.equal((await online(2)).body.online, true);

    await fleet.redis.current().stop();
    await allReady(fleet, 'redis', false);
    await fleet.redis.restart();
    await allReady(fleet, 'redis', true);

    // Nobody was disconnected: the outage was between the replicas, not between them and their clients.
    for (const member of members) {
      const reply = await member.request('ping', {}, 'pong');
      assert.equal(reply?.['type'], 'pong', member.transport);
    }
    // The stream started again from empty; new entries have later ids, so every replica's read loop picks them up.
    for (const [seq, via] of [0, 1, 2].entries()) await publish(via, 'after', seq);
    await expectEachOnce(members, 'after', 3);
    // Member counts (Pub/Sub) answer fleet-wide again.
    assert.equal(await publish(1, 'count', 0), members.length);
    // Presence lost its keys with the restart; each replica writes its live connections again on its next beat.
    const connected = await waitFor('presence to know every member again', async () => {
      const res = await fleet.gateways[2]!.api(`/v1/users/connected?tenant_id=${tenant}`);
      return res.status === 200 && res.body.total === members.length ? res.body : undefined;
    }, 20_000);
    assert.deepEqual(connected.users.map((u: { connections: number }) => u.connections), members.map(() => 1));
    const status = await online(0);
    assert.equal(status.status, 200);
    assert.equal(status.body.online, true);
    assert.equal(status.body.connections, 1);
  });
});

describe('fleet: NATS restarts under three replicas sharing Redis and one queue group', () => {
  let fleet: Fleet;
  const members: Peer[] = [];
  before(async () => {
    fleet = await startFleet(3, { nats: true });
    await allReady(fleet, 'nats', true);
  });
  after(async () => {
    for (const member of members) member.close();
    await fleet.stop();
  });

  const publishToNats = async (marker: string, count: number) => {
    const nc = await connect({ servers: fleet.nats!.url });
    for (let seq = 0; seq < count; seq++) nc.publish('sahool.fields.n1.updated', JSON.stringify({ tenant_id: 't-nats', field_id: 'n1', marker, seq }));
    await nc.flush();
    await nc.close();
  };
  const handled = async () => (await Promise.all(fleet.gateways.map((g) => metric(g, 'rtgw_nats_messages_total', { outcome: 'delivered' })))).reduce((a, b) => a + b, 0);

  it('after the restart, every NATS message reaches every member on every replica exactly once', async () => {
    members.push(...(await membersOnEveryReplica(fleet, 't-nats', 'field:n1')));
    await publishToNats('before', 5);
    await expectEachOnce(members, 'before', 5, true);
    assert.equal(await handled(), 5);

    await fleet.nats!.current().stop();
    await allReady(fleet, 'nats', false);
    await fleet.nats!.restart();
    await allReady(fleet, 'nats', true);

    const count = 30;
    await publishToNats('after', count);
    await expectEachOnce(members, 'after', count, true);
    // Each message was handled by one replica of the queue group (and fanned out by it through the stream).
    assert.equal(await handled(), 5 + count);
  });
});
