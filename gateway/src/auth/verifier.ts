import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { AuthError, type AuthFailureReason } from './errors.ts';
import { identityFromClaims, type Identity } from './identity.ts';
import { createJwksResolver } from './jwks.ts';
import {
  MAX_TICKET_TTL_SECONDS,
  MIN_TICKET_KEY_BYTES,
  TICKET_ALGORITHM,
  TICKET_AUDIENCE,
  TICKET_ISSUER,
  TICKET_KID,
} from './tickets-shared.ts';

export interface TokenVerifierOptions {
  readonly algorithms: readonly string[]; // allowlist, e.g. ['HS256'] or ['RS256','ES256']
  readonly secret?: Uint8Array; // HMAC key, required when any HS* allowed
  readonly jwksUrl?: string; // required when any asymmetric alg allowed
  readonly issuer?: string;
  readonly audience?: string;
  readonly tenantClaim: string; // default 'tenant_id' decided by config
  readonly clockToleranceSeconds: number; // e.g. 30
  readonly ticketKey: Uint8Array; // key for ws tickets
  /** JWKS refetch cooldown for an unknown kid (jose default 30 s). */
  readonly jwksCooldownMs?: number;
  /** JWKS cache lifetime (jose default 10 min). Past it, a failed refetch falls back to the cached keys. */
  readonly jwksCacheMaxAgeMs?: number;
  /** JWKS HTTP timeout (jose default 5 s). */
  readonly jwksTimeoutMs?: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

export const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA',
];
export const SUPPORTED_ALGORITHMS: readonly string[] = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS];

/** Tokens above this are refused before any decoding: a cheap bound on work an unauthenticated peer can cause. */
export const MAX_TOKEN_BYTES = 8 * 1024;
const MAX_CLOCK_TOLERANCE_SECONDS = 300;

// Compact JWS: three base64url segments; the signature may be empty (alg "none"), which we then refuse by alg.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Keys are chosen by the token's alg, never by what key happens to be configured: an HS* token is only ever
 * checked against the HMAC secret and an asymmetric one only against the JWKS, so a public key can never be
 * used as an HMAC secret (algorithm confusion) even when both families are allowed.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const settings = validateOptions(options);
  const jwks =
    settings.jwksUrl === undefined
      ? undefined
      : createJwksResolver(settings.jwksUrl, {
          ...(options.jwksCooldownMs !== undefined && { cooldownMs: options.jwksCooldownMs }),
          ...(options.jwksCacheMaxAgeMs !== undefined && { cacheMaxAgeMs: options.jwksCacheMaxAgeMs }),
          ...(options.jwksTimeoutMs !== undefined && { timeoutMs: options.jwksTimeoutMs }),
        });
  const secret = settings.secret;
  const ticketKey = settings.ticketKey;

  const claimOptions: JWTVerifyOptions = {
    algorithms: [...settings.algorithms],
    clockTolerance: options.clockToleranceSeconds,
    ...(options.issuer !== undefined && { issuer: options.issuer }),
    ...(options.audience !== undefined && { audience: options.audience }),
  };
  const ticketOptions: JWTVerifyOptions = {
    algorithms: [TICKET_ALGORITHM],
    clockTolerance: options.clockToleranceSeconds,
    issuer: TICKET_ISSUER,
    audience: TICKET_AUDIENCE,
    requiredClaims: ['exp'],
    // A ticket minted with a longer life than we ever issue is not one of ours.
    maxTokenAge: MAX_TICKET_TTL_SECONDS,
  };

  const keyFor: JWTVerifyGetKey = async (header, token) => {
    const alg = header.alg ?? '';
    if (HMAC_ALGORITHMS.includes(alg)) {
      if (secret === undefined) throw new AuthError('algorithm_not_allowed', `algorithm ${alg} is not allowed`);
      return secret;
    }
    if (jwks === undefined) throw new AuthError('algorithm_not_allowed', `algorithm ${alg} is not allowed`);
    return jwks(header, token);
  };

  return {
    async verify(token: string): Promise<Identity> {
      const header = preflight(token);
      if (header.kid === TICKET_KID) {
        const payload = await verifyWith(token, ticketKey, ticketOptions);
        return identityFromClaims(payload, options.tenantClaim, true);
      }
      if (!settings.algorithms.has(header.alg)) {
        throw new AuthError('algorithm_not_allowed', `algorithm ${JSON.stringify(header.alg)} is not allowed`);
      }
      const payload = await verifyWith(token, keyFor, claimOptions);
      return identityFromClaims(payload, options.tenantClaim, false);
    },
  };
}

interface Settings {
  readonly algorithms: ReadonlySet<string>;
  readonly secret: Uint8Array | undefined;
  readonly jwksUrl: URL | undefined;
  readonly ticketKey: Uint8Array;
}

function validateOptions(options: TokenVerifierOptions): Settings {
  if (!Array.isArray(options.algorithms) || options.algorithms.length === 0) {
    throw new Error('token verifier: at least one algorithm must be allowed');
  }
  for (const alg of options.algorithms) {
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
      throw new Error('token verifier: algorithm "none" is never allowed (tokens must be signed)');
    }
    if (!SUPPORTED_ALGORITHMS.includes(alg)) {
      throw new Error(`token verifier: unknown algorithm ${JSON.stringify(alg)}; supported: ${SUPPORTED_ALGORITHMS.join(', ')}`);
    }
  }
  const algorithms = new Set(options.algorithms);
  const wantsHmac = [...algorithms].some((alg) => HMAC_ALGORITHMS.includes(alg));
  const wantsAsymmetric = [...algorithms].some((alg) => ASYMMETRIC_ALGORITHMS.includes(alg));

  let secret: Uint8Array | undefined;
  if (wantsHmac) {
    if (!(options.secret instanceof Uint8Array) || options.secret.byteLength === 0) {
      throw new Error('token verifier: an HMAC secret is required when an HS* algorithm is allowed');
    }
    // A PEM as HMAC secret is the classic algorithm-confusion set-up: anyone holding the public key can sign.
    if (Buffer.from(options.secret).toString('latin1').includes('-----BEGIN')) {
      throw new Error('token verifier: the HMAC secret looks like a PEM key; public keys belong in the JWKS');
    }
    secret = Uint8Array.from(options.secret);
  }

  let jwksUrl: URL | undefined;
  if (wantsAsymmetric) {
    if (options.jwksUrl === undefined || options.jwksUrl === '') {
      throw new Error('token verifier: a JWKS URL is required when an asymmetric algorithm is allowed');
    }
    try {
      jwksUrl = new URL(options.jwksUrl);
    } catch {
      throw new Error('token verifier: the JWKS URL is not a valid URL');
    }
    if (jwksUrl.protocol !== 'https:' && jwksUrl.protocol !== 'http:') {
      throw new Error('token verifier: the JWKS URL must be http(s)');
    }
  }

  if (typeof options.tenantClaim !== 'string' || options.tenantClaim === '') {
    throw new Error('token verifier: tenantClaim must be a non-empty claim name');
  }
  const tolerance = options.clockToleranceSeconds;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > MAX_CLOCK_TOLERANCE_SECONDS) {
    throw new Error(`token verifier: clockToleranceSeconds must be between 0 and ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  if (!(options.ticketKey instanceof Uint8Array) || options.ticketKey.byteLength < MIN_TICKET_KEY_BYTES) {
    throw new Error(`token verifier: the ticket key must be at least ${MIN_TICKET_KEY_BYTES} bytes`);
  }
  // Tickets are told apart by kid alone; with a shared key, a holder of the JWT secret could mint tickets
  // and the separation the ticket key exists for would be gone.
  if (secret !== undefined && Buffer.from(secret).equals(options.ticketKey)) {
    throw new Error('token verifier: the ticket key must differ from the HMAC secret');
  }
  return { algorithms, secret, jwksUrl, ticketKey: Uint8Array.from(options.ticketKey) };
}

interface PreflightHeader {
  readonly alg: string;
  readonly kid: string | undefined;
}

/** The checks that need no key: presence, size, shape, a decodable header with an alg. */
function preflight(token: string): PreflightHeader {
  if (typeof token !== 'string' || token.length === 0) {
    throw new AuthError('missing_token', 'no token presented');
  }
  // length counts UTF-16 units; a legitimate JWT is ASCII so both measures agree, hostile input pays for neither.
  if (token.length > MAX_TOKEN_BYTES || Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES) {
    throw new AuthError('token_too_large', `token exceeds ${MAX_TOKEN_BYTES} bytes`);
  }
  if (!COMPACT_JWS.test(token)) {
    throw new AuthError('malformed_token', 'token is not a compact JWS');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new AuthError('malformed_token', 'token header cannot be decoded');
  }
  if (typeof header.alg !== 'string' || header.alg === '') {
    throw new AuthError('malformed_token', 'token header has no alg');
  }
  if (header.alg.toLowerCase() === 'none') {
    throw new AuthError('algorithm_not_allowed', 'unsigned tokens are not accepted');
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') {
    throw new AuthError('malformed_token', 'token header kid is not a string');
  }
  return { alg: header.alg, kid: header.kid };
}

async function verifyWith(token: string, key: Uint8Array | JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, key, options)).payload;
  } catch (error) {
    if (error instanceof errors.JWKSMultipleMatchingKeys) return verifyWithCandidates(token, error, options);
    throw toAuthError(error);
  }
}

/**
 * jose does not try each key when several JWKS entries match (typical during rotation when tokens carry no
 * kid); it hands back an async iterator of candidates instead. Only a signature mismatch moves on to the next
 * candidate: any other failure (expired, wrong aud) is the token's real problem and is reported as is.
 */
async function verifyWithCandidates(
  token: string,
  candidates: errors.JWKSMultipleMatchingKeys,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  for await (const key of candidates) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWSSignatureVerificationFailed)) throw toAuthError(error);
    }
  }
  throw new AuthError('invalid_signature', 'signature does not match any candidate key');
}

function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  const [reason, message] = classify(error);
  return new AuthError(reason, message);
}

function classify(error: unknown): [AuthFailureReason, string] {
  if (error instanceof errors.JWTExpired) return ['expired', 'token has expired'];
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return ['not_yet_valid', 'token is not yet valid'];
      case 'iat':
        return ['not_yet_valid', 'token was issued in the future'];
      case 'iss':
        return ['invalid_issuer', 'token issuer is not accepted'];
      case 'aud':
        return ['invalid_audience', 'token audience is not accepted'];
      default:
        return ['malformed_token', `token claim "${error.claim}" is invalid`];
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return ['algorithm_not_allowed', 'token algorithm is not allowed'];
  if (error instanceof errors.JWSSignatureVerificationFailed) return ['invalid_signature', 'token signature is invalid'];
  if (error instanceof errors.JWKSNoMatchingKey) return ['invalid_signature', 'no known key matches the token'];
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return ['malformed_token', 'token is malformed'];
  }
  // Anything else (e.g. jose refusing an RSA key under 2048 bits) fails closed as a signature we cannot trust.
  return ['invalid_signature', 'token could not be verified'];
}
