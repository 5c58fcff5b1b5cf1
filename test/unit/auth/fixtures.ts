import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { AuthError, type AuthFailureReason } from '../../../gateway/src/auth/errors.ts';
import type { TokenVerifierOptions } from '../../../gateway/src/auth/verifier.ts';

export const HMAC_SECRET = new TextEncoder().encode('unit-test-hmac-secret-0123456789abcdef');
export const TICKET_KEY = new TextEncoder().encode('unit-test-ticket-key-0123456789abcdef!!');
export const ISSUER = 'https://idp.example.test/';
export const AUDIENCE = 'realtime-gateway';

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export const baseClaims = (): JWTPayload => ({ sub: 'user-1', tenant_id: 'tenant-a', iss: ISSUER, aud: AUDIENCE });

export function hmacOptions(overrides: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    algorithms: ['HS256'],
    secret: HMAC_SECRET,
    issuer: ISSUER,
    audience: AUDIENCE,
    tenantClaim: 'tenant_id',
    clockToleranceSeconds: 30,
    ticketKey: TICKET_KEY,
    ...overrides,
  };
}

/** Signs claims as given: no iat/exp is added unless `expiresIn` is set (default 5 minutes). */
export async function sign(
  claims: JWTPayload,
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string },
  expiresIn: number | null = 300,
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader(header).setIssuedAt();
  if (expiresIn !== null) jwt.setExpirationTime(nowSeconds() + expiresIn);
  return jwt.sign(key);
}

export const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export interface SigningKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(alg: string, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

/** A real HTTP server on 127.0.0.1 serving whatever JWKS the test sets, counting requests. */
export interface JwksServer {
  readonly url: string;
  keys: JWK[];
  status: number;
  requests: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, status: 200, requests: 0 };
  const server: Server = createServer((_req, res) => {
    state.requests += 1;
    res.writeHead(state.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  });
}

/** A URL on 127.0.0.1 where nothing listens: bind a port, then release it. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/jwks.json`;
}

/** Asserts that the promise rejects with an AuthError carrying exactly this reason. */
export async function rejectsWith(promise: Promise<unknown>, reason: AuthFailureReason): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AuthError, `expected AuthError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    return true;
  });
}
