import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type LocalJWKSet,
} from 'jose';
import { AuthError } from './errors.ts';

export interface JwksResolverOptions {
  /** After a successful fetch, how long an unknown kid must wait before it can trigger another fetch. */
  readonly cooldownMs?: number;
  /** How long fetched keys are used before the next verification refetches them. */
  readonly cacheMaxAgeMs?: number;
  readonly timeoutMs?: number;
}

export type JwksResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * jose's remote JWKS resolver, plus one behaviour jose lacks: when a refetch fails (endpoint down, non-200,
 * bad JSON, timeout) keys from the last successful fetch are still used. jose on its own fails every
 * verification once `cacheMaxAge` has passed and the endpoint is down, turning a short IdP outage into a
 * full gateway outage. Key-selection errors (unknown or ambiguous kid) pass through unchanged; an
 * availability failure with no usable cached key becomes AuthError('key_unavailable').
 */
export function createJwksResolver(url: URL, options: JwksResolverOptions = {}): JwksResolver {
  const remote = createRemoteJWKSet(url, {
    ...(options.cooldownMs !== undefined && { cooldownDuration: options.cooldownMs }),
    ...(options.cacheMaxAgeMs !== undefined && { cacheMaxAge: options.cacheMaxAgeMs }),
    ...(options.timeoutMs !== undefined && { timeoutDuration: options.timeoutMs }),
  });
  let stale: { source: JSONWebKeySet; local: LocalJWKSet } | undefined;

  const fromStale = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey | undefined> => {
    const cached = remote.jwks();
    if (cached === undefined) return undefined;
    const serialized = JSON.stringify(cached);
    if (stale === undefined || JSON.stringify(stale.source) !== serialized) {
      stale = { source: cached, local: createLocalJWKSet(cached) };
    }
    try {
      return await stale.local(header, token);
    } catch (error) {
      // Several cached keys match: let the verifier try each, as it does for a fresh set.
      if (error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      return undefined;
    }
  };

  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      const key = await fromStale(header, token);
      if (key !== undefined) return key;
      throw new AuthError('key_unavailable', `signing keys could not be fetched from ${url.origin}`);
    }
  };
}
