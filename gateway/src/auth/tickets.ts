import { hkdfSync, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Identity } from './identity.ts';
import {
  MAX_TICKET_TTL_SECONDS,
  MIN_TICKET_KEY_BYTES,
  TICKET_ALGORITHM,
  TICKET_AUDIENCE,
  TICKET_ISSUER,
  TICKET_KID,
} from './tickets-shared.ts';

export { MAX_TICKET_TTL_SECONDS, TICKET_AUDIENCE, TICKET_ISSUER, TICKET_KID } from './tickets-shared.ts';

export interface TicketIssuer {
  /** `now` is epoch seconds (defaults to the clock). Rejects with TicketRefusedError. */
  issue(identity: Identity, now?: number): Promise<{ token: string; expiresAt: number }>;
}

export interface TicketIssuerOptions {
  ticketKey: Uint8Array;
  tenantClaim: string;
  ttlSeconds: number; // capped at 300
}

/**
 * Why a ticket was not issued. `ticket_as_input`: the caller authenticated with a ticket (tickets must not
 * extend themselves; HTTP 403). `expired`: the presenting token is past its exp, only possible inside the
 * verifier's clock tolerance (HTTP 401).
 */
export type TicketRefusal = 'ticket_as_input' | 'expired';

export class TicketRefusedError extends Error {
  readonly reason: TicketRefusal;

  constructor(reason: TicketRefusal, message: string) {
    super(message);
    this.name = 'TicketRefusedError';
    this.reason = reason;
  }
}

// Epoch seconds stay below this until the year 5138; epoch milliseconds are far above it.
const LATEST_PLAUSIBLE_EPOCH_SECONDS = 1e11;

export function createTicketIssuer(options: TicketIssuerOptions): TicketIssuer {
  if (!(options.ticketKey instanceof Uint8Array) || options.ticketKey.byteLength < MIN_TICKET_KEY_BYTES) {
    throw new Error(`ticket issuer: the ticket key must be at least ${MIN_TICKET_KEY_BYTES} bytes`);
  }
  if (typeof options.tenantClaim !== 'string' || options.tenantClaim === '') {
    throw new Error('ticket issuer: tenantClaim must be a non-empty claim name');
  }
  if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new Error('ticket issuer: ttlSeconds must be a positive integer');
  }
  const key = Uint8Array.from(options.ticketKey);
  const ttl = Math.min(options.ttlSeconds, MAX_TICKET_TTL_SECONDS);
  const tenantClaim = options.tenantClaim;

  return {
    async issue(identity, now = Math.floor(Date.now() / 1000)) {
      if (!Number.isInteger(now) || now <= 0 || now > LATEST_PLAUSIBLE_EPOCH_SECONDS) {
        throw new RangeError('ticket issuer: now must be integer epoch seconds');
      }
      if (identity.viaTicket) {
        throw new TicketRefusedError('ticket_as_input', 'a ticket cannot be exchanged for another ticket');
      }
      const expiresAt = Math.min(now + ttl, identity.expiresAt ?? Number.POSITIVE_INFINITY);
      if (expiresAt <= now) {
        throw new TicketRefusedError('expired', 'the presenting token has expired');
      }
      const token = await new SignJWT({
        [tenantClaim]: identity.tenantId,
        orgs: [...identity.orgs],
        roles: [...identity.roles],
      })
        .setProtectedHeader({ alg: TICKET_ALGORITHM, kid: TICKET_KID, typ: 'JWT' })
        .setSubject(identity.userId)
        .setIssuer(TICKET_ISSUER)
        .setAudience(TICKET_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(key);
      return { token, expiresAt };
    },
  };
}

const TICKET_KEY_INFO = 'rtgw ws-ticket';

/**
 * A ticket key derived from other secret material (the JWT secret), for when WS_TICKET_SECRET is not set.
 * HKDF keeps the two keys independent: knowing the ticket key reveals nothing about the material.
 */
export function deriveTicketKey(secretMaterial: string): Uint8Array {
  if (typeof secretMaterial !== 'string' || secretMaterial.length === 0) {
    throw new Error('deriveTicketKey: secret material must be a non-empty string');
  }
  return new Uint8Array(hkdfSync('sha256', secretMaterial, new Uint8Array(0), TICKET_KEY_INFO, MIN_TICKET_KEY_BYTES));
}
