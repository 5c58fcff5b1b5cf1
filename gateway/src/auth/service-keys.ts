import { hash, timingSafeEqual } from 'node:crypto';
import { bearerCredential, headerValue, type HeaderBag } from './headers.ts';

export interface ServiceKeys {
  /** The service name owning the presented key, or undefined. Timing does not depend on which key, if any, matched. */
  check(presented: string): string | undefined;
  readonly names: readonly string[];
}

export const MIN_SERVICE_KEY_LENGTH = 16;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `name:key,name:key`. Empty entries (e.g. a trailing comma) are ignored; an empty value yields no
 * keys. Error messages name the variable and the entry but never contain a key.
 */
export function parseServiceKeys(value: string, variableName = 'SERVICE_API_KEYS'): ServiceKeys {
  const entries: { name: string; digest: Buffer }[] = [];
  const parts = value.split(',');
  parts.forEach((raw, index) => {
    const entry = raw.trim();
    if (entry === '') return;
    const where = `${variableName} entry ${index + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new Error(`${where}: expected name:key`);
    const name = entry.slice(0, colon).trim();
    const key = entry.slice(colon + 1).trim();
    if (name === '') throw new Error(`${where}: the service name is empty`);
    if (!SERVICE_NAME.test(name)) {
      throw new Error(`${where}: service name ${JSON.stringify(name)} may only contain letters, digits, '.', '_' and '-'`);
    }
    if (key.length < MIN_SERVICE_KEY_LENGTH) {
      throw new Error(`${where}: the key for "${name}" must be at least ${MIN_SERVICE_KEY_LENGTH} characters`);
    }
    if (entries.some((e) => e.name === name)) throw new Error(`${where}: duplicate service name "${name}"`);
    const digest = sha256(key);
    const sharing = entries.find((e) => e.digest.equals(digest));
    if (sharing !== undefined) {
      throw new Error(`${where}: "${name}" uses the same key as "${sharing.name}"; each service needs its own key`);
    }
    entries.push({ name, digest });
  });

  const names = Object.freeze(entries.map((e) => e.name));
  return {
    names,
    check(presented: string): string | undefined {
      if (typeof presented !== 'string' || presented === '') return undefined;
      // Comparing fixed-length digests makes timingSafeEqual usable for keys of any length, and visiting
      // every entry keeps the time independent of which one matched.
      const digest = sha256(presented);
      let match: string | undefined;
      for (const entry of entries) {
        if (timingSafeEqual(entry.digest, digest) && match === undefined) match = entry.name;
      }
      return match;
    },
  };
}

export type ServiceAuthResult = { status: 'missing' } | { status: 'invalid' } | { status: 'ok'; service: string };

/** Service credential from `X-API-Key` or `Authorization: Bearer`. HTTP maps missing -> 401, invalid -> 403. */
export function authenticateService(keys: ServiceKeys, headers: HeaderBag): ServiceAuthResult {
  const candidates = [headerValue(headers, 'x-api-key'), bearerCredential(headerValue(headers, 'authorization'))].filter(
    (c): c is string => c !== undefined,
  );
  if (candidates.length === 0) return { status: 'missing' };
  for (const candidate of candidates) {
    const service = keys.check(candidate);
    if (service !== undefined) return { status: 'ok', service };
  }
  return { status: 'invalid' };
}

/** One-shot hashing: checked on every service request, and a Hash object per call costs several times more. */
function sha256(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}
