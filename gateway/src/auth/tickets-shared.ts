/**
 * The fixed shape of a WebSocket ticket, shared by the issuer and the verifier. The kid is how the verifier
 * routes a token to the ticket key; everything else is checked again after the signature.
 */
export const TICKET_KID = 'rtgw-ws-ticket';
export const TICKET_ISSUER = 'realtime-gateway';
export const TICKET_AUDIENCE = 'ws-ticket';
export const TICKET_ALGORITHM = 'HS256';
export const MAX_TICKET_TTL_SECONDS = 300;
/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
export const MIN_TICKET_KEY_BYTES = 32;
