/**
 * Why a token was refused. Callers map these to close codes / HTTP statuses and log the reason (never the token).
 * `key_unavailable` is the only one that is the gateway's fault (JWKS endpoint down or unusable), so callers
 * may want to alert on it rather than count it as a client error.
 */
export type AuthFailureReason =
  | 'missing_token'
  | 'malformed_token'
  | 'token_too_large'
  | 'algorithm_not_allowed'
  | 'invalid_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'missing_subject'
  | 'missing_tenant'
  | 'key_unavailable';

export class AuthError extends Error {
  readonly reason: AuthFailureReason;

  constructor(reason: AuthFailureReason, message: string) {
    super(message);
    this.name = 'AuthError';
    this.reason = reason;
  }
}

export function isAuthError(value: unknown): value is AuthError {
  return value instanceof AuthError;
}
