import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sioClient, sioConnected, wsClient, type SioClient, type WsClient } from '../harness/clients.ts';
import { waitFor } from '../harness/process.ts';
import { hsToken } from '../harness/tokens.ts';
import { startFleet, type Fleet } from './fleet.ts';

describe('fleet: three replicas on Redis Streams act as one gateway', () => {
  let fleet: Fleet;
  before(async () => {
    fleet = await startFleet(3);
  });
  after(() => fleet.stop());

  const rawOn = async (index: number, sub: string, tenant = 't1'): Promise<WsClient> => {
    const client = await wsClient(fleet.gateways[index]!.wsUrl({ tenant_id: tenant }), { authorization: `Bearer ${await hsToken({ sub, tenant })}` });
    await client.inbox.next('connected');
    return client;
  };
  const sioOn = async (index: number, sub: string, tenant = 't1'): Promise<SioClient> => {
    const client = sioClient(fleet.gateways[index]!.httpUrl, { auth: { token: await hsToken({ sub, tenant }) }, query: { tenant_id: tenant } });
    await sioConnected(client);
    return client;
  };

  it('delivers an HTTP publish to members on every replica exactly once, and counts them fleet-wide', async () => {
    const members = [await rawOn(0, 'a'), await sioOn(1, 'b'), await rawOn(2, 'c'), await sioOn(2, 'd')];
    const outsider = await rawOn(1, 'e', 't2');
    for (const member of members) {
      const reply = 'ws' in member ? await member.request({ type: 'subscribe', topics: ['field:9'] }, 'subscribed') : await member.request('subscribe', { topics: ['field:9'] });
      assert.deepEqual(reply.topics, ['field:9']);
    }
    await outsider.request({ type: 'subscribe', topics: ['field:9'] }, 'subscribed');
    // Joins are local to each replica; the count asks every replica.
    const published = await fleet.gateways[1]!.api('/broadcast', { json: { tenant_id: 't1', field_id: '9', message: { event_type: 'field.updated', n: 1 } } });
    assert.equal(published.status, 200);
    assert.equal(published.body.recipients, 4);
    for (const member of members) {
      const event = await member.inbox.next((m) => m['type'] === 'event' && m['data']?.['n'] === 1);
      assert.equal(event['event_type'], 'field.updated');
    }
    await sleep(300);
    for (const member of members) assert.equal(member.inbox.messages.filter((m) => m['type'] === 'event' && m['data']?.['n'] === 1).length, 1);
    assert.equal(outsider.inbox.ofType('event').length, 0);
    for (const member of [...members, outsider]) member.close();
  });

  it('delivers a client broadcast across replicas to both transports', async () => {
    const alice = await sioOn(0, 'alice');
    const bob = await rawOn(1, 'bob');
    const carol = await sioOn(2, 'carol');
    for (const client of [alice, carol]) await client.request('join_room', { room: 'chat:x' });
    await bob.request({ type: 'join_room', room: 'chat:x' }, 'room_joined');
    await alice.request('broadcast', { room: 'chat:x', message: 'hi all' });
    for (const client of [bob, carol]) {
      const message = await client.inbox.next('message');
      assert.equal(message['message'], 'hi all');
      assert.deepEqual(message['from'], { user_id: 'alice' });
    }
    for (const client of [alice, bob, carol]) client.close();
  });

  it('sends presence join and leave events of chat rooms across replicas, to the same tenant only', async () => {
    const alice = await sioOn(0, 'p-alice');
    const stranger = await rawOn(2, 'p-stranger', 't2');
    await alice.request('join_room', { room: 'chat:p' });
    await stranger.request({ type: 'join_room', room: 'chat:p' }, 'room_joined');
    const bob = await rawOn(1, 'p-bob');
    await bob.request({ type: 'join_room', room: 'chat:p' }, 'room_joined');
    const joined = await alice.inbox.next('presence');
    assert.deepEqual([joined['event'], joined['room'], joined['user_id']], ['join', 'chat:p', 'p-bob']);
    bob.close();
    const left = await alice.inbox.next('presence');
    assert.deepEqual([left['event'], left['user_id']], ['leave', 'p-bob']);
    // Settle: a ping round trip on the other tenant's client, then nothing about t1's room reached it.
    await stranger.request({ type: 'ping' }, 'pong');
    assert.equal(stranger.inbox.ofType('presence').length, 0);
    alice.close();
    stranger.close();
  });

  it('forgets the connections of a replica that died without closing, within a few heartbeats', async () => {
    const doomed = await fleet.add();
    const survivor = await rawOn(0, 'ghost');
    const client = await wsClient(doomed.wsUrl({ tenant_id: 't1' }), { authorization: `Bearer ${await hsToken({ sub: 'ghost' })}` });
    await client.inbox.next('connected');
    await waitFor('two connections', async () => (await fleet.gateways[1]!.api('/v1/users/ghost/status?tenant_id=t1')).body.connections === 2);
    doomed.process.kill('SIGKILL');
    await doomed.process.exited;
    fleet.gateways.pop();
    // Heartbeat 2 s, expiry after 3: the dead replica's connection stops counting, the sweep removes it.
    const status = await waitFor('the dead replica to stop counting', async () => {
      const res = await fleet.gateways[1]!.api('/v1/users/ghost/status?tenant_id=t1');
      return res.body.connections === 1 ? res.body : undefined;
    }, 20000);
    assert.equal(status.online, true);
    survivor.close();
    const offline = await waitFor('the user to be offline', async () => {
      const res = await fleet.gateways[2]!.api('/v1/users/ghost/status?tenant_id=t1');
      return res.body.online === false ? res.body : undefined;
    });
    assert.equal(offline.connections, 0);
    const owned = await fleet.gateways[0]!.api('/v1/users/connected?tenant_id=t1');
    assert.ok(!owned.body.users.some((u: { user_id: string }) => u.user_id === 'ghost'));
  });

  it('answers presence, connected users and user messages fleet-wide', async () => {
    const phone = await rawOn(0, 'multi');
    const laptop = await sioOn(2, 'multi');
    const status = await waitFor('two connections in presence', async () => {
      const res = await fleet.gateways[1]!.api('/v1/users/multi/status?tenant_id=t1');
      return res.body.connections === 2 ? res.body : undefined;
    });
    assert.equal(status.online, true);
    await laptop.request('join_room', { room: 'chat:count' });
    const counts = await fleet.gateways[1]!.api('/v1/presence?tenant_id=t1&room=chat:count');
    assert.equal(counts.status, 200);
    assert.deepEqual(counts.body.room, { name: 'chat:count', connections: 1 });
    assert.ok(counts.body.users_online >= 1 && counts.body.connections >= 2, JSON.stringify(counts.body));
    assert.equal((await fleet.gateways[1]!.api('/v1/presence?tenant_id=t1&room=nope')).status, 400);
    const users = await fleet.gateways[0]!.api('/v1/users/connected?tenant_id=t1');
    assert.ok(users.body.users.some((u: { user_id: string; connections: number }) => u.user_id === 'multi' && u.connections === 2));
    const sent = await fleet.gateways[1]!.api('/v1/messages', { json: { tenant_id: 't1', user_ids: ['multi', 'nobody'], notification: { title: 'Hi', body: 'there' } } });
    assert.deepEqual(sent.body.sent, ['multi']);
    assert.deepEqual(sent.body.failed, ['nobody']);
    assert.equal((await phone.inbox.next('notification'))['data']['title'], 'Hi');
    assert.equal((await laptop.inbox.next('notification'))['data']['title'], 'Hi');

    const removed = await fleet.gateways[1]!.api('/v1/users/multi/connections?tenant_id=t1', { method: 'DELETE' });
    assert.equal(removed.body.disconnected, 2);
    assert.equal((await phone.closed).code, 4004);
    await waitFor('socket.io disconnect', () => laptop.socket.disconnected);
    const after = await waitFor('presence to drop', async () => {
      const res = await fleet.gateways[0]!.api('/v1/users/multi/status?tenant_id=t1');
      return res.body.online === false ? res.body : undefined;
    });
    assert.equal(after.connections, 0);
    assert.notEqual(after.last_seen, null);
  });
});
