/**
 * Authenticates a connection attempt, for both transports (raw /ws reaches it through socket.io's middleware
 * too). Returns a decision; the caller audits, counts and refuses.
 */
import { AuthError, extractToken, type AuthFailureReason, type Identity, type TokenSource, type TokenVerifier } from '../auth/index.ts';
import { CloseCode } from '../protocol/codes.ts';
import { isValidId } from '../rooms/names.ts';

export interface HandshakeInput {
  readonly headers: Record<string, string | string[] | undefined>;
  readonly url: string;
  readonly handshakeAuth: unknown;
}

export type HandshakeRefusalReason = AuthFailureReason | 'tenant_mismatch' | 'invalid_tenant';

export type HandshakeResult =
  | { readonly ok: true; readonly identity: Identity; readonly tokenSource: TokenSource['source']; readonly deprecatedToken: boolean }
  | {
      readonly ok: false;
      readonly closeCode: typeof CloseCode.authenticationRequired | typeof CloseCode.tenantMismatch;
      readonly reason: HandshakeRefusalReason;
      readonly message: string;
      /** The user, when the token was valid but the tenant did not match (for the audit log). */
      readonly userId?: string;
    };

/** `tenant_id` from the query string (seed 000) or the socket.io handshake auth. */
export function requestedTenant(url: string, handshakeAuth: unknown): string | undefined {
  const fromQuery = new URL(url, 'http://gateway.invalid').searchParams.get('tenant_id');
  if (fromQuery) return fromQuery;
  if (typeof handshakeAuth === 'object' && handshakeAuth !== null) {
    const fromAuth = (handshakeAuth as Record<string, unknown>)['tenant_id'];
    if (typeof fromAuth === 'string' && fromAuth !== '') return fromAuth;
  }
  return undefined;
}

export async function authenticateHandshake(input: HandshakeInput, verifier: TokenVerifier): Promise<HandshakeResult> {
  const source = extractToken({ headers: input.headers, url: input.url, handshakeAuth: input.handshakeAuth });
  if (!source) return { ok: false, closeCode: CloseCode.authenticationRequired, reason: 'missing_token', message: 'Authentication Required' };
  let identity: Identity;
  try {
    identity = await verifier.verify(source.token);
  } catch (error) {
    const reason: AuthFailureReason = error instanceof AuthError ? error.reason : 'malformed_token';
    return { ok: false, closeCode: CloseCode.authenticationRequired, reason, message: 'Authentication Required' };
  }
  if (!isValidId(identity.tenantId)) {
    return { ok: false, closeCode: CloseCode.authenticationRequired, reason: 'invalid_tenant', message: 'Authentication Required', userId: identity.userId };
  }
  // Seed 000 asks clients for ?tenant_id=; when they send it, it must be the token's tenant. When they do
  // not, the token's tenant is the only sensible one.
  const tenant = requestedTenant(input.url, input.handshakeAuth);
  if (tenant !== undefined && tenant !== identity.tenantId) {
    return { ok: false, closeCode: CloseCode.tenantMismatch, reason: 'tenant_mismatch', message: 'Tenant Mismatch', userId: identity.userId };
  }
  return { ok: true, identity, tokenSource: source.source, deprecatedToken: source.deprecated };
}
