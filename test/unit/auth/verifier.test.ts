import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { exportSPKI } from 'jose';
import { createTokenVerifier, MAX_TOKEN_BYTES, SUPPORTED_ALGORITHMS } from '../../../gateway/src/auth/verifier.ts';
import {
  AUDIENCE,
  b64url,
  baseClaims,
  HMAC_SECRET,
  hmacOptions,
  nowSeconds,
  sign,
  signingKey,
  TICKET_KEY,
  rejectsWith,
} from './fixtures.ts';

/** A compact HS256 JWS over arbitrary (possibly invalid) segments, signed with the configured secret. */
function hmacSigned(header: string, payload: string): string {
  const signature = createHmac('sha256', HMAC_SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

describe('createTokenVerifier (HMAC)', () => {
  const verifier = createTokenVerifier(hmacOptions());

  it('accepts a valid HS256 token and builds the identity', async () => {
    const token = await sign(
      { ...baseClaims(), orgs: ['org-1', { id: 'org-2' }], roles: ['admin', 'reader'] },
      HMAC_SECRET,
      { alg: 'HS256' },
    );
    const identity = await verifier.verify(token);
    assert.equal(identity.userId, 'user-1');
    assert.equal(identity.tenantId, 'tenant-a');
    assert.deepEqual(identity.orgs, ['org-1', 'org-2']);
    assert.deepEqual(identity.roles, ['admin', 'reader']);
    assert.equal(identity.viaTicket, false);
    assert.ok(identity.expiresAt !== undefined && identity.expiresAt > nowSeconds());
  });

  it('refuses an unsigned alg:none token', async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...baseClaims(), exp: nowSeconds() + 60 })}.`;
    await rejectsWith(verifier.verify(token), 'algorithm_not_allowed');
  });

  it('refuses alg:none even with a signature segment and odd casing', async () => {
    const token = `${b64url({ alg: 'NoNe' })}.${b64url(baseClaims())}.c2lnbmF0dXJl`;
    await rejectsWith(verifier.verify(token), 'algorithm_not_allowed');
  });

  it('refuses an allowed algorithm signed with the wrong secret', async () => {
    const token = await sign(baseClaims(), new TextEncoder().encode('another-secret-another-secret-xx'), { alg: 'HS256' });
    await rejectsWith(verifier.verify(token), 'invalid_signature');
  });

  it('refuses a token whose payload was altered after signing', async () => {
    const token = await sign(baseClaims(), HMAC_SECRET, { alg: 'HS256' });
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64url({ ...baseClaims(), sub: 'admin', exp: nowSeconds() + 60 })}.${signature}`;
    await rejectsWith(verifier.verify(forged), 'invalid_signature');
  });

  it('refuses an HS384 token when only HS256 is allowed', async () => {
    const token = await sign(baseClaims(), HMAC_SECRET, { alg: 'HS384' });
    await rejectsWith(verifier.verify(token), 'algorithm_not_allowed');
  });

  it('refuses an expired token beyond the clock tolerance', async () => {
    const token = await sign(baseClaims(), HMAC_SECRET, { alg: 'HS256' }, -31);
    await rejectsWith(verifier.verify(token), 'expired');
  });

  it('accepts a token expired within the clock tolerance', async () => {
    const token = await sign(baseClaims(), HMAC_SECRET, { alg: 'HS256' }, -10);
    assert.equal((await verifier.verify(token)).userId, 'user-1');
  });

  it('refuses a token that is not yet valid beyond the tolerance, accepts one within it', async () => {
    const later = await sign({ ...baseClaims(), nbf: nowSeconds() + 120 }, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(later), 'not_yet_valid');
    const slightlyLater = await sign({ ...baseClaims(), nbf: nowSeconds() + 10 }, HMAC_SECRET, { alg: 'HS256' });
    assert.equal((await verifier.verify(slightlyLater)).tenantId, 'tenant-a');
  });

  it('refuses a wrong issuer and a missing issuer', async () => {
    const wrong = await sign({ ...baseClaims(), iss: 'https://evil.example/' }, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(wrong), 'invalid_issuer');
    const { iss: _iss, ...withoutIss } = baseClaims();
    const missing = await sign(withoutIss, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(missing), 'invalid_issuer');
  });

  it('refuses a wrong audience, accepts the audience inside an array', async () => {
    const wrong = await sign({ ...baseClaims(), aud: 'some-other-api' }, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(wrong), 'invalid_audience');
    const listed = await sign({ ...baseClaims(), aud: ['some-other-api', AUDIENCE] }, HMAC_SECRET, { alg: 'HS256' });
    assert.equal((await verifier.verify(listed)).userId, 'user-1');
  });

  it('does not check iss/aud when none is configured', async () => {
    const lenient = createTokenVerifier(hmacOptions({ issuer: undefined, audience: undefined }));
    const token = await sign({ sub: 'u', tenant_id: 't', iss: 'anyone', aud: 'anything' }, HMAC_SECRET, { alg: 'HS256' });
    assert.equal((await lenient.verify(token)).userId, 'u');
  });

  it('refuses garbage and non-JWT strings as malformed', async () => {
    for (const garbage of ['garbage', 'a.b', 'a.b.c.d.e', '!!!.@@@.###', `${b64url('not an object')}.${b64url({})}.sig`, 'e30.e30.', '.e30.']) {
      await rejectsWith(verifier.verify(garbage), 'malformed_token');
    }
  });

  it('refuses a signed token whose payload is not JSON', async () => {
    const token = hmacSigned(b64url({ alg: 'HS256' }), Buffer.from('not json').toString('base64url'));
    await rejectsWith(verifier.verify(token), 'malformed_token');
  });

  it('reports an empty token as missing', async () => {
    await rejectsWith(verifier.verify(''), 'missing_token');
  });

  it('refuses a token without sub', async () => {
    const { sub: _sub, ...claims } = baseClaims();
    await rejectsWith(verifier.verify(await sign(claims, HMAC_SECRET, { alg: 'HS256' })), 'missing_subject');
    const emptySub = await sign({ ...baseClaims(), sub: '' }, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(emptySub), 'missing_subject');
  });

  it('refuses a token without the tenant claim, and honours a custom tenant claim', async () => {
    const { tenant_id: _t, ...claims } = baseClaims();
    const token = await sign({ ...claims, org_tenant: 'tenant-z' }, HMAC_SECRET, { alg: 'HS256' });
    await rejectsWith(verifier.verify(token), 'missing_tenant');
    const custom = createTokenVerifier(hmacOptions({ tenantClaim: 'org_tenant' }));
    assert.equal((await custom.verify(token)).tenantId, 'tenant-z');
  });

  it('refuses a token larger than 8 KiB before looking at it', async () => {
    // A valid signature on a huge token: only the size check can refuse it.
    const big = await sign({ ...baseClaims(), padding: 'x'.repeat(MAX_TOKEN_BYTES) }, HMAC_SECRET, { alg: 'HS256' });
    assert.ok(big.length > MAX_TOKEN_BYTES);
    await rejectsWith(verifier.verify(big), 'token_too_large');
    await rejectsWith(verifier.verify('a'.repeat(MAX_TOKEN_BYTES + 1)), 'token_too_large');
  });

  it('accepts a token just under the size limit', async () => {
    const token = await sign({ ...baseClaims(), padding: 'x'.repeat((MAX_TOKEN_BYTES * 3) / 4 - 300) }, HMAC_SECRET, { alg: 'HS256' });
    assert.ok(token.length <= MAX_TOKEN_BYTES, `fixture is ${token.length} bytes`);
    assert.equal((await verifier.verify(token)).userId, 'user-1');
  });

  it('refuses a token with an unknown critical header', async () => {
    // jose refuses to sign this, so it is assembled by hand.
    const token = hmacSigned(
      b64url({ alg: 'HS256', crit: ['x-custom'], 'x-custom': true }),
      b64url({ ...baseClaims(), exp: nowSeconds() + 60 }),
    );
    await rejectsWith(verifier.verify(token), 'malformed_token');
  });
});

describe('algorithm confusion', () => {
  it('refuses an HS256 token signed with the RSA public key PEM when only RS256 is allowed', async () => {
    const rsa = await signingKey('RS256', 'rsa-1');
    const pem = await exportSPKI(rsa.publicKey);
    const verifier = createTokenVerifier({
      algorithms: ['RS256'],
      jwksUrl: 'http://127.0.0.1:9/never-fetched',
      tenantClaim: 'tenant_id',
      clockToleranceSeconds: 30,
      ticketKey: TICKET_KEY,
    });
    const token = await sign(baseClaims(), new TextEncoder().encode(pem), { alg: 'HS256', kid: 'rsa-1' });
    await rejectsWith(verifier.verify(token), 'algorithm_not_allowed');
  });

  it('refuses the PEM-signed HS256 token even when HS256 and RS256 are both allowed', async () => {
    const rsa = await signingKey('RS256', 'rsa-1');
    const pem = await exportSPKI(rsa.publicKey);
    const verifier = createTokenVerifier(
      hmacOptions({ algorithms: ['HS256', 'RS256'], jwksUrl: 'http://127.0.0.1:9/never-fetched' }),
    );
    const token = await sign(baseClaims(), new TextEncoder().encode(pem), { alg: 'HS256', kid: 'rsa-1' });
    await rejectsWith(verifier.verify(token), 'invalid_signature');
  });

  it('refuses to be configured with a PEM as the HMAC secret', async () => {
    const rsa = await signingKey('RS256', 'rsa-1');
    const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    assert.throws(() => createTokenVerifier(hmacOptions({ secret: pem })), /PEM/);
  });
});

describe('createTokenVerifier options', () => {
  const base = hmacOptions();

  it('lists the supported algorithms without none', () => {
    assert.deepEqual(
      [...SUPPORTED_ALGORITHMS].sort(),
      ['ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'],
    );
  });

  it('rejects none, unknown algorithms and an empty allowlist', () => {
    assert.throws(() => createTokenVerifier({ ...base, algorithms: ['HS256', 'none'] }), /"none" is never allowed/);
    assert.throws(() => createTokenVerifier({ ...base, algorithms: ['HS1'] }), /unknown algorithm "HS1"/);
    assert.throws(() => createTokenVerifier({ ...base, algorithms: [] }), /at least one algorithm/);
  });

  it('requires a secret for HS* and a JWKS URL for asymmetric algorithms', () => {
    assert.throws(() => createTokenVerifier({ ...base, secret: undefined }), /HMAC secret is required/);
    assert.throws(() => createTokenVerifier({ ...base, secret: new Uint8Array(0) }), /HMAC secret is required/);
    assert.throws(() => createTokenVerifier({ ...base, algorithms: ['RS256'] }), /JWKS URL is required/);
    assert.throws(() => createTokenVerifier({ ...base, algorithms: ['ES256'], jwksUrl: 'not a url' }), /not a valid URL/);
    assert.throws(() => createTokenVerifier({ ...base, algorithms: ['ES256'], jwksUrl: 'file:///etc/jwks.json' }), /http\(s\)/);
  });

  it('allows a JWKS-only configuration without any HMAC secret', () => {
    assert.doesNotThrow(() =>
      createTokenVerifier({ ...base, secret: undefined, algorithms: ['RS256', 'ES256'], jwksUrl: 'https://idp.example/jwks' }),
    );
  });

  it('validates the ticket key, tenant claim and clock tolerance', () => {
    assert.throws(() => createTokenVerifier({ ...base, ticketKey: new Uint8Array(31) }), /at least 32 bytes/);
    assert.throws(() => createTokenVerifier({ ...base, ticketKey: HMAC_SECRET }), /must differ from the HMAC secret/);
    assert.throws(() => createTokenVerifier({ ...base, tenantClaim: '' }), /tenantClaim/);
    assert.throws(() => createTokenVerifier({ ...base, clockToleranceSeconds: -1 }), /clockToleranceSeconds/);
    assert.throws(() => createTokenVerifier({ ...base, clockToleranceSeconds: Number.NaN }), /clockToleranceSeconds/);
  });

  it('is not affected by later mutation of the secret buffer passed in', async () => {
    const secret = Uint8Array.from(HMAC_SECRET);
    const verifier = createTokenVerifier(hmacOptions({ secret }));
    secret.fill(0);
    const token = await sign(baseClaims(), HMAC_SECRET, { alg: 'HS256' });
    assert.equal((await verifier.verify(token)).userId, 'user-1');
  });
});
