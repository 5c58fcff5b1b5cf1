import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as auth from '../../../gateway/src/auth/index.ts';
import { createTokenVerifier } from '../../../gateway/src/auth/verifier.ts';

it('the auth barrel exposes the module API', () => {
  assert.equal(auth.createTokenVerifier, createTokenVerifier);
  for (const name of [
    'AuthError', 'createTokenVerifier', 'SUPPORTED_ALGORITHMS', 'extractToken', 'createTicketIssuer',
    'deriveTicketKey', 'TicketRefusedError', 'parseServiceKeys', 'authenticateService',
  ]) {
    assert.ok(name in auth && (auth as Record<string, unknown>)[name] !== undefined, name);
  }
});
