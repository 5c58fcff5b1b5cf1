/** Test tokens and keys. Every secret here is for tests only. */
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

type SigningKey = Parameters<SignJWT['sign']>[0];

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';
export const SERVICE_KEY = 'test-service-key-0123456789abcdef';
export const SERVICE_KEYS = `backend:${SERVICE_KEY}`;

export interface TokenOptions {
  readonly sub?: string;
  readonly tenant?: string | undefined;
  readonly roles?: readonly string[];
  readonly orgs?: readonly string[];
  /** Seconds from now; negative for an expired token. */
  readonly expiresIn?: number;
  readonly notBefore?: number;
  readonly issuer?: string;
  readonly audience?: string;
  readonly secret?: string | Uint8Array;
  readonly extra?: Record<string, unknown>;
}

export async function hsToken(options: TokenOptions = {}): Promise<string> {
  const secret = typeof options.secret === 'string' || options.secret === undefined
    ? new TextEncoder().encode(options.secret ?? TEST_SECRET)
    : options.secret;
  return builder(options).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret);
}

export async function signedToken(options: TokenOptions & { key: SigningKey; alg: string; kid?: string }): Promise<string> {
  return builder(options).setProtectedHeader({ alg: options.alg, typ: 'JWT', ...(options.kid ? { kid: options.kid } : {}) }).sign(options.key);
}

function builder(options: TokenOptions): SignJWT {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { ...options.extra };
  if (options.tenant !== undefined || !('tenant' in options)) claims['tenant_id'] = options.tenant ?? 't1';
  if (options.roles) claims['roles'] = options.roles;
  if (options.orgs) claims['orgs'] = options.orgs;
  const jwt = new SignJWT(claims).setIssuedAt(now).setExpirationTime(now + (options.expiresIn ?? 3600));
  if (options.sub !== '') jwt.setSubject(options.sub ?? 'u1');
  if (options.notBefore !== undefined) jwt.setNotBefore(now + options.notBefore);
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt;
}

/** An unsigned token (alg none), as an attacker would craft it. */
export function unsignedToken(payload: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(payload)}.`;
}

export async function rsaKeyPair(kid: string): Promise<{ privateKey: SigningKey; publicKey: SigningKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, publicKey, jwk };
}
