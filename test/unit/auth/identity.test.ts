import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError } from '../../../gateway/src/auth/errors.ts';
import { identityFromClaims } from '../../../gateway/src/auth/identity.ts';

const claims = (extra: Record<string, unknown>) => ({ sub: 'u1', tenant_id: 't1', ...extra });

describe('identityFromClaims', () => {
  it('reads orgs given as strings or as {id} objects, dropping junk and duplicates', () => {
    const identity = identityFromClaims(claims({ orgs: ['a', { id: 'b' }, { name: 'x' }, 3, null, '', 'a'] }), 'tenant_id', false);
    assert.deepEqual(identity.orgs, ['a', 'b']);
  });

  it('reads roles from roles, then role, then Keycloak realm_access.roles', () => {
    assert.deepEqual(identityFromClaims(claims({ roles: ['r1', 2, 'r2'], role: 'ignored' }), 'tenant_id', false).roles, ['r1', 'r2']);
    assert.deepEqual(identityFromClaims(claims({ role: 'admin' }), 'tenant_id', false).roles, ['admin']);
    assert.deepEqual(identityFromClaims(claims({ realm_access: { roles: ['kc'] } }), 'tenant_id', false).roles, ['kc']);
  });

  it('defaults orgs and roles to empty, expiresAt to undefined', () => {
    const identity = identityFromClaims(claims({ orgs: 'not-an-array', roles: 'not-an-array' }), 'tenant_id', true);
    assert.deepEqual(identity.orgs, []);
    assert.deepEqual(identity.roles, []);
    assert.equal(identity.expiresAt, undefined);
    assert.equal(identity.viaTicket, true);
  });

  it('turns an integer tenant id into a string but refuses other shapes', () => {
    assert.equal(identityFromClaims(claims({ tenant_id: 42 }), 'tenant_id', false).tenantId, '42');
    for (const tenant of [1.5, '', null, ['t'], { id: 't' }, true]) {
      assert.throws(
        () => identityFromClaims(claims({ tenant_id: tenant }), 'tenant_id', false),
        (e: unknown) => e instanceof AuthError && e.reason === 'missing_tenant',
        JSON.stringify(tenant),
      );
    }
  });

  it('refuses a non-string subject', () => {
    assert.throws(
      () => identityFromClaims({ sub: 123, tenant_id: 't' }, 'tenant_id', false),
      (e: unknown) => e instanceof AuthError && e.reason === 'missing_subject',
    );
  });
});
