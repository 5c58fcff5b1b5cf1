import { bearerCredential, headerValue, nonEmpty, type HeaderBag } from './headers.ts';

export interface TokenSource {
  readonly token: string;
  readonly source: 'header' | 'auth' | 'query';
  /** true for `?token=`: query strings end up in proxy and access logs, so callers warn and count it. */
  readonly deprecated: boolean;
}

export interface TokenInput {
  headers: HeaderBag;
  url?: string;
  handshakeAuth?: unknown;
}

/**
 * Finds the client's token. Precedence: `Authorization: Bearer` header, socket.io handshake `auth.token`,
 * `?token=` query. A source that is present but empty or of another scheme (e.g. `Basic`) is skipped.
 * Returns undefined when there is no token at all (callers report `missing_token`).
 */
export function extractToken(input: TokenInput): TokenSource | undefined {
  const fromHeader = bearerCredential(headerValue(input.headers, 'authorization'));
  if (fromHeader !== undefined) return { token: fromHeader, source: 'header', deprecated: false };

  const fromAuth = handshakeToken(input.handshakeAuth);
  if (fromAuth !== undefined) return { token: fromAuth, source: 'auth', deprecated: false };

  const fromQuery = queryToken(input.url);
  if (fromQuery !== undefined) return { token: fromQuery, source: 'query', deprecated: true };

  return undefined;
}

function handshakeToken(auth: unknown): string | undefined {
  if (typeof auth !== 'object' || auth === null) return undefined;
  const token: unknown = (auth as Record<string, unknown>)['token'];
  if (typeof token !== 'string') return undefined;
  // Clients often copy the header value verbatim into auth.token; accept that form too.
  return bearerCredential(token) ?? nonEmpty(token);
}

function queryToken(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    // Request URLs are usually path-only; the base only makes them parseable.
    parsed = new URL(url, 'http://localhost');
  } catch {
    return undefined;
  }
  const token = parsed.searchParams.get('token');
  return token === null ? undefined : nonEmpty(token);
}
