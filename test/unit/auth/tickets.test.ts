import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import type { Identity } from '../../../gateway/src/auth/identity.ts';
import {
  createTicketIssuer,
  deriveTicketKey,
  TICKET_AUDIENCE,
  TICKET_ISSUER,
  TICKET_KID,
  TicketRefusedError,
} from '../../../gateway/src/auth/tickets.ts';
import { createTokenVerifier } from '../../../gateway/src/auth/verifier.ts';
import { baseClaims, HMAC_SECRET, hmacOptions, nowSeconds, signingKey, startJwksServer, TICKET_KEY, rejectsWith } from './fixtures.ts';

const identity = (overrides: Partial<Identity> = {}): Identity => ({
  userId: 'user-1',
  tenantId: 'tenant-a',
  orgs: ['org-1', 'org-2'],
  roles: ['admin'],
  expiresAt: nowSeconds() + 3600,
  viaTicket: false,
  ...overrides,
});

const issuer = createTicketIssuer({ ticketKey: TICKET_KEY, tenantClaim: 'tenant_id', ttlSeconds: 120 });

describe('createTicketIssuer', () => {
  it('issues a ticket with the fixed kid, iss, aud and the identity claims', async () => {
    const now = nowSeconds();
    const { token, expiresAt } = await issuer.issue(identity(), now);
    assert.equal(expiresAt, now + 120);
    const header = decodeProtectedHeader(token);
    assert.equal(header.kid, TICKET_KID);
    assert.equal(header.alg, 'HS256');
    const claims = decodeJwt(token);
    assert.equal(claims.iss, TICKET_ISSUER);
    assert.equal(claims.aud, TICKET_AUDIENCE);
    assert.equal(claims.sub, 'user-1');
    assert.equal(claims['tenant_id'], 'tenant-a');
    assert.deepEqual(claims['orgs'], ['org-1', 'org-2']);
    assert.deepEqual(claims['roles'], ['admin']);
    assert.equal(claims.exp, now + 120);
    assert.equal(claims.iat, now);
    assert.equal(typeof claims.jti, 'string');
  });

  it('caps the lifetime at 300 seconds', async () => {
    const long = createTicketIssuer({ ticketKey: TICKET_KEY, tenantClaim: 'tenant_id', ttlSeconds: 86_400 });
    const now = nowSeconds();
    assert.equal((await long.issue(identity(), now)).expiresAt, now + 300);
  });

  it('never outlives the presenting token', async () => {
    const now = nowSeconds();
    const { token, expiresAt } = await issuer.issue(identity({ expiresAt: now + 45 }), now);
    assert.equal(expiresAt, now + 45);
    assert.equal(decodeJwt(token).exp, now + 45);
  });

  it('refuses a ticket as input', async () => {
    await assert.rejects(issuer.issue(identity({ viaTicket: true })), (error: unknown) => {
      assert.ok(error instanceof TicketRefusedError);
      assert.equal(error.reason, 'ticket_as_input');
      return true;
    });
  });

  it('refuses a presenting token that has already expired (accepted only within clock skew)', async () => {
    const now = nowSeconds();
    await assert.rejects(issuer.issue(identity({ expiresAt: now - 5 }), now), (error: unknown) => {
      assert.ok(error instanceof TicketRefusedError);
      assert.equal(error.reason, 'expired');
      return true;
    });
  });

  it('rejects milliseconds passed as now', async () => {
    await assert.rejects(issuer.issue(identity(), Date.now()), RangeError);
  });

  it('validates its options', () => {
    assert.throws(() => createTicketIssuer({ ticketKey: new Uint8Array(8), tenantClaim: 'tenant_id', ttlSeconds: 60 }), /32 bytes/);
    assert.throws(() => createTicketIssuer({ ticketKey: TICKET_KEY, tenantClaim: 'tenant_id', ttlSeconds: 0 }), /ttlSeconds/);
    assert.throws(() => createTicketIssuer({ ticketKey: TICKET_KEY, tenantClaim: '', ttlSeconds: 60 }), /tenantClaim/);
  });
});

describe('verifying tickets', () => {
  const verifier = createTokenVerifier(hmacOptions());

  it('round-trips: an issued ticket verifies as the same identity, marked viaTicket', async () => {
    const { token, expiresAt } = await issuer.issue(identity());
    const result = await verifier.verify(token);
    assert.deepEqual(result, { ...identity(), expiresAt, viaTicket: true });
  });

  it('a verified ticket cannot be exchanged for another ticket', async () => {
    const { token } = await issuer.issue(identity());
    await assert.rejects(issuer.issue(await verifier.verify(token)), TicketRefusedError);
  });

  it('works when the gateway is configured with JWKS only (no HMAC secret)', async () => {
    const key = await signingKey('ES256', 'ec-1');
    const server = await startJwksServer([key.jwk]);
    try {
      const jwksOnly = createTokenVerifier(hmacOptions({ algorithms: ['ES256'], secret: undefined, jwksUrl: server.url }));
      const { token } = await issuer.issue(identity());
      assert.equal((await jwksOnly.verify(token)).viaTicket, true);
      assert.equal(server.requests, 0, 'tickets never consult the JWKS');
    } finally {
      await server.close();
    }
  });

  it('refuses a ticket-kid token signed with the JWT secret instead of the ticket key', async () => {
    const forged = await ticketLike(HMAC_SECRET);
    await rejectsWith(verifier.verify(forged), 'invalid_signature');
  });

  it('refuses a ticket-kid token with any algorithm but HS256', async () => {
    const forged = await ticketLike(TICKET_KEY, 'HS512');
    await rejectsWith(verifier.verify(forged), 'algorithm_not_allowed');
    const key = await signingKey('RS256', TICKET_KID);
    const rsaTicket = await new SignJWT({ ...baseClaims(), iss: TICKET_ISSUER, aud: TICKET_AUDIENCE })
      .setProtectedHeader({ alg: 'RS256', kid: TICKET_KID })
      .setIssuedAt()
      .setExpirationTime(nowSeconds() + 60)
      .sign(key.privateKey);
    await rejectsWith(verifier.verify(rsaTicket), 'algorithm_not_allowed');
  });

  it('refuses a ticket-keyed token without the ticket kid (it goes through the normal keys)', async () => {
    const { token } = await issuer.issue(identity());
    const payload = token.split('.')[1];
    const unkeyed = await new SignJWT(JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(TICKET_KEY);
    await rejectsWith(verifier.verify(unkeyed), 'invalid_signature');
  });

  it('checks the ticket issuer, audience and lifetime', async () => {
    await rejectsWith(verifier.verify(await ticketLike(TICKET_KEY, 'HS256', { iss: 'someone-else' })), 'invalid_issuer');
    await rejectsWith(verifier.verify(await ticketLike(TICKET_KEY, 'HS256', { aud: 'realtime-gateway' })), 'invalid_audience');
    const now = nowSeconds();
    // A correctly signed ticket claiming a one-hour life is not something the issuer produces.
    const tooLong = await ticketLike(TICKET_KEY, 'HS256', { iat: now - 1000, exp: now + 3600 });
    await rejectsWith(verifier.verify(tooLong), 'expired');
    const noExp = await ticketLike(TICKET_KEY, 'HS256', { exp: undefined });
    await rejectsWith(verifier.verify(noExp), 'malformed_token');
  });

  it('refuses an expired ticket', async () => {
    const { token } = await issuer.issue(identity(), nowSeconds() - 200);
    await rejectsWith(verifier.verify(token), 'expired');
  });

  it('refuses a ticket signed with a different ticket key (another deployment)', async () => {
    const other = createTicketIssuer({ ticketKey: deriveTicketKey('another deployment'), tenantClaim: 'tenant_id', ttlSeconds: 60 });
    await rejectsWith(verifier.verify((await other.issue(identity())).token), 'invalid_signature');
  });
});

describe('deriveTicketKey', () => {
  it('is deterministic, 32 bytes and differs per input', () => {
    const a = deriveTicketKey('jwt-secret-value');
    assert.equal(a.byteLength, 32);
    assert.deepEqual(a, deriveTicketKey('jwt-secret-value'));
    assert.notDeepEqual(a, deriveTicketKey('jwt-secret-valuf'));
  });

  it('matches HKDF-SHA256 with info "rtgw ws-ticket" and an empty salt', async () => {
    const { hkdfSync } = await import('node:crypto');
    const expected = Buffer.from(hkdfSync('sha256', 'material', Buffer.alloc(0), Buffer.from('rtgw ws-ticket'), 32));
    assert.deepEqual(Buffer.from(deriveTicketKey('material')), expected);
  });

  it('rejects empty material', () => {
    assert.throws(() => deriveTicketKey(''), /non-empty/);
  });

  it('produces a key a verifier accepts alongside the secret it came from', () => {
    const material = 'unit-test-hmac-secret-0123456789abcdef';
    assert.doesNotThrow(() => createTokenVerifier(hmacOptions({ ticketKey: deriveTicketKey(material) })));
  });
});

/** A hand-made token wearing the ticket kid, for forgeries the issuer would never produce. */
async function ticketLike(key: Uint8Array, alg = 'HS256', overrides: Record<string, unknown> = {}): Promise<string> {
  const now = nowSeconds();
  const claims: Record<string, unknown> = { ...baseClaims(), iss: TICKET_ISSUER, aud: TICKET_AUDIENCE, iat: now, exp: now + 60, ...overrides };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return new SignJWT(claims).setProtectedHeader({ alg, kid: TICKET_KID }).sign(key);
}

