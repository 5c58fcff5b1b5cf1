export { AuthError, isAuthError, type AuthFailureReason } from './errors.ts';
export { identityFromClaims, type Identity } from './identity.ts';
export {
  createTokenVerifier,
  MAX_TOKEN_BYTES,
  SUPPORTED_ALGORITHMS,
  type TokenVerifier,
  type TokenVerifierOptions,
} from './verifier.ts';
export { extractToken, type TokenInput, type TokenSource } from './extract.ts';
export {
  createTicketIssuer,
  deriveTicketKey,
  MAX_TICKET_TTL_SECONDS,
  TICKET_AUDIENCE,
  TICKET_ISSUER,
  TICKET_KID,
  TicketRefusedError,
  type TicketIssuer,
  type TicketIssuerOptions,
  type TicketRefusal,
} from './tickets.ts';
export {
  authenticateService,
  MAX_SERVICE_KEY_BYTES,
  MIN_SERVICE_KEY_LENGTH,
  parseServiceKeys,
  type ServiceAuthResult,
  type ServiceKeys,
} from './service-keys.ts';
