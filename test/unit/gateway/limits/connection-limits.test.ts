import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLimiter, type Admission, type LimitScope } from '../../../../gateway/src/limits/connection-limits.ts';

const key = (ip: string, tenantId: string, userId: string) => ({ ip, tenantId, userId });

function admitted(admission: Admission): () => void {
  if (!admission.ok) assert.fail(`refused by the ${admission.scope} limit`);
  return admission.release;
}

function refusedBy(admission: Admission, scope: LimitScope): void {
  assert.deepEqual(admission, { ok: false, scope });
}

describe('ConnectionLimiter', () => {
  const scopes: readonly { scope: LimitScope; options: { maxPerIp: number; maxPerUser: number; maxPerTenant: number }; same: ReturnType<typeof key>[]; other: ReturnType<typeof key> }[] = [
    // Two connections of different users and tenants from one IP.
    { scope: 'ip', options: { maxPerIp: 2, maxPerUser: 9, maxPerTenant: 9 }, same: [key('1.1.1.1', 't1', 'u1'), key('1.1.1.1', 't2', 'u2')], other: key('2.2.2.2', 't1', 'u1') },
    // One user from two IPs.
    { scope: 'user', options: { maxPerIp: 9, maxPerUser: 2, maxPerTenant: 9 }, same: [key('1.1.1.1', 't1', 'u1'), key('2.2.2.2', 't1', 'u1')], other: key('1.1.1.1', 't1', 'u2') },
    // Two users of one tenant.
    { scope: 'tenant', options: { maxPerIp: 9, maxPerUser: 9, maxPerTenant: 2 }, same: [key('1.1.1.1', 't1', 'u1'), key('2.2.2.2', 't1', 'u2')], other: key('3.3.3.3', 't2', 'u3') },
  ];

  for (const { scope, options, same, other } of scopes) {
    it(`refuses one connection over the per-${scope} limit, and only for that ${scope}`, () => {
      const limiter = new ConnectionLimiter(options);
      const releases = same.map((k) => admitted(limiter.admit(k)));
      refusedBy(limiter.admit(same[0]!), scope);
      admitted(limiter.admit(other));
      releases[0]!();
      admitted(limiter.admit(same[0]!));
      refusedBy(limiter.admit(same[1]!), scope);
    });
  }

  it('counts a user per tenant: the same user id in two tenants is two users', () => {
    const limiter = new ConnectionLimiter({ maxPerIp: 9, maxPerUser: 1, maxPerTenant: 9 });
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    admitted(limiter.admit(key('1.1.1.1', 't2', 'u1')));
    refusedBy(limiter.admit(key('1.1.1.1', 't1', 'u1')), 'user');
  });

  it('checks ip, then user, then tenant', () => {
    const limiter = new ConnectionLimiter({ maxPerIp: 1, maxPerUser: 1, maxPerTenant: 1 });
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    refusedBy(limiter.admit(key('1.1.1.1', 't1', 'u1')), 'ip');
    refusedBy(limiter.admit(key('2.2.2.2', 't1', 'u1')), 'user');
    refusedBy(limiter.admit(key('2.2.2.2', 't1', 'u2')), 'tenant');
  });

  it('counts nothing for a refused connection', () => {
    const limiter = new ConnectionLimiter({ maxPerIp: 9, maxPerUser: 1, maxPerTenant: 2 });
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    // Refused by the user limit: must not take the tenant's second slot or an IP slot.
    for (let i = 0; i < 5; i += 1) refusedBy(limiter.admit(key('1.1.1.1', 't1', 'u1')), 'user');
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u2')));
  });

  it('releases once, however many times release is called', () => {
    const limiter = new ConnectionLimiter({ maxPerIp: 2, maxPerUser: 2, maxPerTenant: 2 });
    const first = admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    first();
    first();
    first();
    // One slot was freed, not three: a second connection fills the limit again.
    admitted(limiter.admit(key('1.1.1.1', 't1', 'u1')));
    refusedBy(limiter.admit(key('1.1.1.1', 't1', 'u1')), 'ip');
  });

  it('frees every slot when every connection is released', () => {
    const limiter = new ConnectionLimiter({ maxPerIp: 3, maxPerUser: 3, maxPerTenant: 3 });
    for (let round = 0; round < 3; round += 1) {
      const releases = [1, 2, 3].map(() => admitted(limiter.admit(key('1.1.1.1', 't1', 'u1'))));
      refusedBy(limiter.admit(key('1.1.1.1', 't1', 'u1')), 'ip');
      for (const release of releases) release();
    }
  });
});
