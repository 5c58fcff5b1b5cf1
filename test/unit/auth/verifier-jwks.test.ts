import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createTokenVerifier, type TokenVerifierOptions } from '../../../gateway/src/auth/verifier.ts';
import {
  AUDIENCE,
  baseClaims,
  deadUrl,
  ISSUER,
  sign,
  signingKey,
  startJwksServer,
  TICKET_KEY,
  type JwksServer,
  type SigningKey,
  rejectsWith,
} from './fixtures.ts';

function jwksOptions(jwksUrl: string, overrides: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    jwksUrl,
    issuer: ISSUER,
    audience: AUDIENCE,
    tenantClaim: 'tenant_id',
    clockToleranceSeconds: 30,
    ticketKey: TICKET_KEY,
    ...overrides,
  };
}

const signWith = (key: SigningKey, claims = baseClaims(), kid: string | undefined = key.kid) =>
  sign(claims, key.privateKey, kid === undefined ? { alg: key.alg } : { alg: key.alg, kid });

describe('createTokenVerifier with a JWKS', () => {
  let rsa: SigningKey;
  let ps: SigningKey;
  let ec: SigningKey;
  let ed: SigningKey;
  let server: JwksServer;

  before(async () => {
    [rsa, ps, ec, ed] = await Promise.all([
      signingKey('RS256', 'rsa-1'),
      signingKey('PS256', 'ps-1'),
      signingKey('ES256', 'ec-1'),
      signingKey('EdDSA', 'ed-1'),
    ]);
    server = await startJwksServer([rsa.jwk, ps.jwk, ec.jwk, ed.jwk]);
  });
  after(() => server.close());

  it('verifies RS256, PS256, ES256 and EdDSA tokens and fetches the JWKS once', async () => {
    server.requests = 0;
    const verifier = createTokenVerifier(jwksOptions(server.url));
    for (const key of [rsa, ps, ec, ed]) {
      const identity = await verifier.verify(await signWith(key, { ...baseClaims(), sub: `user-${key.alg}` }));
      assert.equal(identity.userId, `user-${key.alg}`);
    }
    assert.equal(server.requests, 1);
  });

  it('refuses an algorithm outside the allowlist even when the JWKS holds its key', async () => {
    const verifier = createTokenVerifier(jwksOptions(server.url, { algorithms: ['ES256'] }));
    await rejectsWith(verifier.verify(await signWith(rsa)), 'algorithm_not_allowed');
    assert.equal((await verifier.verify(await signWith(ec))).userId, 'user-1');
  });

  it('refuses a token signed by a key the JWKS does not publish', async () => {
    const verifier = createTokenVerifier(jwksOptions(server.url, { jwksCooldownMs: 0 }));
    const stranger = await signingKey('RS256', 'rsa-1'); // same kid, different key
    await rejectsWith(verifier.verify(await signWith(stranger)), 'invalid_signature');
    const unknownKid = await signingKey('ES256', 'unknown-kid');
    await rejectsWith(verifier.verify(await signWith(unknownKid)), 'invalid_signature');
  });

  it('refuses an HS256 token signed with a JWKS public key as the secret, even with HS256 allowed', async () => {
    const secret = new TextEncoder().encode('unit-test-hmac-secret-0123456789abcdef');
    const verifier = createTokenVerifier(jwksOptions(server.url, { algorithms: ['HS256', 'RS256'], secret }));
    const asSecret = new TextEncoder().encode(JSON.stringify(rsa.jwk));
    await rejectsWith(verifier.verify(await sign(baseClaims(), asSecret, { alg: 'HS256', kid: 'rsa-1' })), 'invalid_signature');
    // Both families still work with their own keys.
    assert.equal((await verifier.verify(await sign(baseClaims(), secret, { alg: 'HS256' }))).userId, 'user-1');
    assert.equal((await verifier.verify(await signWith(rsa))).userId, 'user-1');
  });

  it('still checks claims for JWKS tokens', async () => {
    const verifier = createTokenVerifier(jwksOptions(server.url));
    await rejectsWith(verifier.verify(await signWith(ec, { ...baseClaims(), aud: 'elsewhere' })), 'invalid_audience');
    await rejectsWith(verifier.verify(await sign(baseClaims(), ec.privateKey, { alg: 'ES256', kid: 'ec-1' }, -60)), 'expired');
  });
});

describe('JWKS rotation and outages', () => {
  it('accepts a token signed by a new kid after the JWKS rotates', async () => {
    const oldKey = await signingKey('RS256', 'old');
    const newKey = await signingKey('RS256', 'new');
    const server = await startJwksServer([oldKey.jwk]);
    try {
      const verifier = createTokenVerifier(jwksOptions(server.url, { jwksCooldownMs: 0 }));
      assert.equal((await verifier.verify(await signWith(oldKey))).userId, 'user-1');
      await rejectsWith(verifier.verify(await signWith(newKey)), 'invalid_signature');

      server.keys = [newKey.jwk, oldKey.jwk];
      const before = server.requests;
      assert.equal((await verifier.verify(await signWith(newKey))).userId, 'user-1');
      assert.equal(server.requests, before + 1, 'the unknown kid triggered exactly one refetch');
      assert.equal((await verifier.verify(await signWith(oldKey))).userId, 'user-1');

      server.keys = [newKey.jwk]; // old key retired
      await verifier.verify(await signWith(newKey));
      // The retired key is still cached; it is dropped at the next refetch (cache age), not instantly.
      assert.equal((await verifier.verify(await signWith(oldKey))).userId, 'user-1');
    } finally {
      await server.close();
    }
  });

  it('does not refetch for an unknown kid during the cooldown', async () => {
    const known = await signingKey('ES256', 'known');
    const server = await startJwksServer([known.jwk]);
    try {
      const verifier = createTokenVerifier(jwksOptions(server.url, { jwksCooldownMs: 60_000 }));
      await verifier.verify(await signWith(known));
      const fetches = server.requests;
      for (let i = 0; i < 5; i++) {
        const attacker = await signingKey('ES256', `random-${i}`);
        await rejectsWith(verifier.verify(await signWith(attacker)), 'invalid_signature');
      }
      assert.equal(server.requests, fetches, 'random kids must not make the gateway hammer the IdP');
    } finally {
      await server.close();
    }
  });

  it('reports key_unavailable when the JWKS server is down', async () => {
    const key = await signingKey('RS256', 'rsa-1');
    const verifier = createTokenVerifier(jwksOptions(await deadUrl()));
    await rejectsWith(verifier.verify(await signWith(key)), 'key_unavailable');
  });

  it('reports key_unavailable when the JWKS endpoint never answers (timeout)', async () => {
    const key = await signingKey('RS256', 'rsa-1');
    const sockets = new Set<Socket>();
    const silent = createServer(() => {}); // accepts the request, never responds
    silent.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const verifier = createTokenVerifier(jwksOptions(`http://127.0.0.1:${port}/jwks.json`, { jwksTimeoutMs: 100 }));
      await rejectsWith(verifier.verify(await signWith(key)), 'key_unavailable');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('reports key_unavailable when the JWKS endpoint answers with an error status', async () => {
    const key = await signingKey('RS256', 'rsa-1');
    const server = await startJwksServer([key.jwk]);
    server.status = 503;
    try {
      const verifier = createTokenVerifier(jwksOptions(server.url));
      await rejectsWith(verifier.verify(await signWith(key)), 'key_unavailable');
      server.status = 200; // recovers without a restart
      assert.equal((await verifier.verify(await signWith(key))).userId, 'user-1');
    } finally {
      await server.close();
    }
  });

  it('keeps using cached keys when a refetch fails, but not for keys it never saw', async () => {
    const key = await signingKey('ES256', 'ec-1');
    const server = await startJwksServer([key.jwk]);
    // cacheMaxAge 0: every verification refetches, so the outage is hit on the next call.
    const verifier = createTokenVerifier(jwksOptions(server.url, { jwksCacheMaxAgeMs: 0, jwksCooldownMs: 0 }));
    await verifier.verify(await signWith(key));
    await server.close();

    assert.equal((await verifier.verify(await signWith(key))).userId, 'user-1');
    const unseen = await signingKey('ES256', 'ec-2');
    await rejectsWith(verifier.verify(await signWith(unseen)), 'key_unavailable');
  });

  it('tries each matching key when the token has no kid (rotation with kid-less tokens)', async () => {
    const first = await signingKey('RS256', 'a');
    const second = await signingKey('RS256', 'b');
    const server = await startJwksServer([first.jwk, second.jwk]);
    try {
      const verifier = createTokenVerifier(jwksOptions(server.url));
      assert.equal((await verifier.verify(await signWith(second, baseClaims(), undefined))).userId, 'user-1');
      assert.equal((await verifier.verify(await signWith(first, baseClaims(), undefined))).userId, 'user-1');
      const stranger = await signingKey('RS256', 'c');
      await rejectsWith(verifier.verify(await signWith(stranger, baseClaims(), undefined)), 'invalid_signature');
      // A real claim failure on the matching key is reported as such, not as a signature mismatch.
      const expired = await sign(baseClaims(), second.privateKey, { alg: 'RS256' }, -120);
      await rejectsWith(verifier.verify(expired), 'expired');
    } finally {
      await server.close();
    }
  });
});
