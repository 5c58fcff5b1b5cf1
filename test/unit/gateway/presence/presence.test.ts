import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPresence } from '../../../../gateway/src/presence/presence.ts';

/** A clock the test moves by hand. */
function clock(start: number) {
  let current = start;
  return { now: () => current, set: (at: number) => void (current = at) };
}

const T0 = Date.parse('2024-01-15T10:30:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('MemoryPresence', () => {
  it('reports a user never seen as offline with no last_seen', async () => {
    const presence = new MemoryPresence(() => T0);
    assert.deepEqual(await presence.status('t1', 'u1'), { user_id: 'u1', tenant_id: 't1', online: false, connections: 0, last_seen: null });
  });

  it('counts each device, and a repeated connection id once', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t1', 'u1', 'phone');
    await presence.connected('t1', 'u1', 'laptop');
    await presence.connected('t1', 'u1', 'laptop');
    assert.deepEqual(await presence.status('t1', 'u1'), { user_id: 'u1', tenant_id: 't1', online: true, connections: 2, last_seen: iso(T0) });
  });

  it('stays online until the last device leaves, then keeps the time of that disconnect', async () => {
    const time = clock(T0);
    const presence = new MemoryPresence(time.now);
    await presence.connected('t1', 'u1', 'phone');
    await presence.connected('t1', 'u1', 'laptop');
    time.set(T0 + 1_000);
    await presence.disconnected('t1', 'u1', 'phone');
    time.set(T0 + 2_000);
    assert.deepEqual(await presence.status('t1', 'u1'), { user_id: 'u1', tenant_id: 't1', online: true, connections: 1, last_seen: iso(T0 + 2_000) });
    time.set(T0 + 5_000);
    await presence.disconnected('t1', 'u1', 'laptop');
    time.set(T0 + 60_000);
    assert.deepEqual(await presence.status('t1', 'u1'), { user_id: 'u1', tenant_id: 't1', online: false, connections: 0, last_seen: iso(T0 + 5_000) });
  });

  it('ignores a disconnect of a connection it does not know for an online user', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t1', 'u1', 'phone');
    await presence.disconnected('t1', 'u1', 'unknown');
    assert.equal((await presence.status('t1', 'u1')).connections, 1);
  });

  it('counts a reconnect after going offline afresh', async () => {
    const time = clock(T0);
    const presence = new MemoryPresence(time.now);
    await presence.connected('t1', 'u1', 'c1');
    await presence.disconnected('t1', 'u1', 'c1');
    time.set(T0 + 10_000);
    await presence.connected('t1', 'u1', 'c2');
    assert.deepEqual(await presence.status('t1', 'u1'), { user_id: 'u1', tenant_id: 't1', online: true, connections: 1, last_seen: iso(T0 + 10_000) });
  });

  it('keeps tenants apart: the same user id in two tenants is two users', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t1', 'u1', 'c1');
    assert.equal((await presence.status('t2', 'u1')).online, false);
    assert.equal((await presence.status('t2', 'u1')).last_seen, null);
    await presence.disconnected('t2', 'u1', 'c1');
    assert.equal((await presence.status('t1', 'u1')).connections, 1);
  });

  it('lists connected users, all or of one tenant', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t1', 'u1', 'c1');
    await presence.connected('t1', 'u1', 'c2');
    await presence.connected('t1', 'u2', 'c3');
    await presence.connected('t2', 'u1', 'c4');
    await presence.connected('t2', 'u3', 'c5');
    await presence.disconnected('t2', 'u3', 'c5');
    const sort = (users: readonly { tenant_id: string; user_id: string }[]) =>
      [...users].sort((a, b) => `${a.tenant_id}/${a.user_id}`.localeCompare(`${b.tenant_id}/${b.user_id}`));
    assert.deepEqual(sort(await presence.connectedUsers(undefined)), [
      { tenant_id: 't1', user_id: 'u1', connections: 2 },
      { tenant_id: 't1', user_id: 'u2', connections: 1 },
      { tenant_id: 't2', user_id: 'u1', connections: 1 },
    ]);
    assert.deepEqual(sort(await presence.connectedUsers('t1')), [
      { tenant_id: 't1', user_id: 'u1', connections: 2 },
      { tenant_id: 't1', user_id: 'u2', connections: 1 },
    ]);
    assert.deepEqual(await presence.connectedUsers('t2'), [{ tenant_id: 't2', user_id: 'u1', connections: 1 }]);
    assert.deepEqual(await presence.connectedUsers('t3'), []);
  });

  it('keeps user ids that contain a slash whole', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t1', 'svc/worker', 'c1');
    assert.deepEqual(await presence.connectedUsers('t1'), [{ tenant_id: 't1', user_id: 'svc/worker', connections: 1 }]);
    assert.equal((await presence.status('t1', 'svc/worker')).online, true);
  });

  it('does not match a tenant by prefix', async () => {
    const presence = new MemoryPresence(() => T0);
    await presence.connected('t10', 'u1', 'c1');
    assert.deepEqual(await presence.connectedUsers('t1'), []);
  });

  it('closes without error', async () => {
    await new MemoryPresence().close();
  });
});
