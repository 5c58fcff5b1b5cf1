export type HeaderBag = Record<string, string | string[] | undefined>;

/**
 * The first value of a header, looked up case-insensitively. Node lowercases incoming header names, but
 * callers and tests sometimes build the bag by hand, and a missed `Authorization` must not silently
 * fall back to a weaker token source.
 */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  const wanted = name.toLowerCase();
  let value = headers[wanted];
  if (value === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.length === wanted.length && key.toLowerCase() === wanted) {
        value = headers[key];
        break;
      }
    }
  }
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : nonEmpty(first);
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The credential of an `Authorization: Bearer <credential>` value; undefined for other schemes. */
export function bearerCredential(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return BEARER.exec(authorization)?.[1];
}

export function nonEmpty(value: string): string | undefined {
  const trimmed = value.trim();
  return trimmed.length > 0 ? trimmed : undefined;
}
