import { timingSafeEqual } from 'node:crypto';
import { bearerCredential, headerValue, type HeaderBag } from './headers.ts';

export interface ServiceKeys {
  /** The service name owning the presented key, or undefined. Timing does not depend on which key, if any, matched. */
  check(presented: string): string | undefined;
  readonly names: readonly string[];
}

export const MIN_SERVICE_KEY_LENGTH = 16;
/** The longest key accepted (keys are compared as blocks of the longest configured key's length). */
export const MAX_SERVICE_KEY_BYTES = 1024;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `name:key,name:key`. Empty entries (e.g. a trailing comma) are ignored; an empty value yields no
 * keys. Error messages name the variable and the entry but never contain a key.
 */
export function parseServiceKeys(value: string, variableName = 'SERVICE_API_KEYS'): ServiceKeys {
  const parsed: { name: string; key: string; bytes: number }[] = [];
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
    const bytes = Buffer.byteLength(key);
    if (bytes > MAX_SERVICE_KEY_BYTES) throw new Error(`${where}: the key for "${name}" must be at most ${MAX_SERVICE_KEY_BYTES} bytes`);
    if (parsed.some((e) => e.name === name)) throw new Error(`${where}: duplicate service name "${name}"`);
    // Byte for byte, as they are compared (strings that differ can encode alike, e.g. lone surrogates).
    const sharing = parsed.find((e) => Buffer.from(e.key).equals(Buffer.from(key)));
    if (sharing !== undefined) {
      throw new Error(`${where}: "${name}" uses the same key as "${sharing.name}"; each service needs its own key`);
    }
    parsed.push({ name, key, bytes });
  });

  // Every key zero-padded to the longest one's length: one block size for all, so the time a check takes depends
  // on no key's content (only a presented key longer than every key is refused before comparing).
  const blockBytes = Math.max(0, ...parsed.map((e) => e.bytes));
  const entries = parsed.map(({ name, key, bytes }) => {
    const block = Buffer.alloc(blockBytes);
    block.write(key, 'utf8');
    return { name, block, bytes };
  });
  const names = Object.freeze(entries.map((e) => e.name));
  // The presented key, zero-padded (all zeros between checks). A few spare bytes: a key that reaches them is
  // longer than every key.
  const presentedBlock = Buffer.alloc(blockBytes + 4);
  const compared = presentedBlock.subarray(0, blockBytes);
  return {
    names,
    check(presented: string): string | undefined {
      if (typeof presented !== 'string' || presented === '' || entries.length === 0) return undefined;
      const bytes = presentedBlock.write(presented, 'utf8');
      if (bytes > blockBytes) {
        presentedBlock.fill(0);
        return undefined;
      }
      // Fixed-size blocks make timingSafeEqual usable for keys of any length (a hash of each would do too, at
      // several times the cost on every service request), and visiting every entry keeps the time independent
      // of which one matched.
      let match: string | undefined;
      for (const entry of entries) {
        if (timingSafeEqual(entry.block, compared) && entry.bytes === bytes && match === undefined) match = entry.name;
      }
      // No copy of a presented key stays in memory.
      presentedBlock.fill(0, 0, bytes);
      return match;
    },
  };
}

export type ServiceAuthResult = { status: 'missing' } | { status: 'invalid' } | { status: 'ok'; service: string };

/** Service credential from `X-API-Key` or `Authorization: Bearer`. HTTP maps missing -> 401, invalid -> 403. */
export function authenticateService(keys: ServiceKeys, headers: HeaderBag): ServiceAuthResult {
  const apiKey = headerValue(headers, 'x-api-key');
  const bearer = bearerCredential(headerValue(headers, 'authorization'));
  if (apiKey === undefined && bearer === undefined) return { status: 'missing' };
  const service = (apiKey === undefined ? undefined : keys.check(apiKey)) ?? (bearer === undefined ? undefined : keys.check(bearer));
  return service === undefined ? { status: 'invalid' } : { status: 'ok', service };
}
