/**
 * The gateway's whole configuration, parsed and validated once at start-up from the environment.
 * Nothing else reads process.env: `main.ts` calls `parseConfig(process.env)` and passes the result down.
 * Every problem names its variable; all problems are reported at once.
 */

export const DEFAULT_NATS_SUBJECTS = [
  'sahool.fields.>', 'sahool.weather.>', 'sahool.satellite.>', 'sahool.ndvi.>', 'sahool.inventory.>', 'sahool.crop.>',
  'sahool.spray.>', 'sahool.chat.>', 'sahool.tasks.>', 'sahool.iot.>', 'sahool.alerts.>',
] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly logLevel: LogLevel;
  readonly auth: {
    readonly algorithms: readonly string[];
    readonly secret: string | undefined;
    readonly jwksUrl: string | undefined;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
    readonly tenantClaim: string;
    readonly clockToleranceSeconds: number;
    /** Key material for short-lived WebSocket tickets; derived from JWT_SECRET_KEY when WS_TICKET_SECRET is unset. */
    readonly ticketSecret: string | undefined;
    readonly ticketTtlSeconds: number;
  };
  /** Exact origins, or '*' for any. Requests without an Origin header (non-browser clients) are always allowed. */
  readonly allowedOrigins: readonly string[] | '*';
  /** name:key pairs, unparsed: the auth module validates and owns them. */
  readonly serviceApiKeys: string | undefined;
  readonly broadcastRoles: readonly string[];
  readonly limits: {
    readonly messagesPerSecond: number;
    readonly messageBurst: number;
    readonly maxConnectionsPerIp: number;
    readonly maxConnectionsPerUser: number;
    readonly maxConnectionsPerTenant: number;
    readonly maxMessageBytes: number;
    readonly maxRoomsPerConnection: number;
  };
  /** Trust X-Forwarded-For for the client address (behind an ingress). */
  readonly trustProxy: boolean;
  readonly redis: {
    readonly url: string | undefined;
    readonly streamName: string;
    /** Derived from the recovery window unless REDIS_STREAM_MAXLEN is set (and then checked against it). */
    readonly streamMaxLen: number;
  };
  readonly nats: {
    readonly url: string | undefined;
    readonly subjects: readonly string[];
    /** Core NATS queue group: each message is handled by one replica, which fans it out to the fleet. */
    readonly queueGroup: string;
    /** Set (both or neither): consume through a durable JetStream consumer shared by every replica. */
    readonly jetstream: { readonly stream: string; readonly durable: string } | undefined;
    /** A NATS `.creds` file (user JWT + nkey seed), read at start-up. */
    readonly credsFile: string | undefined;
  };
  readonly recoveryWindowSeconds: number;
  /** The publish rate (entries a second on the stream) the recovery window must hold. */
  readonly recoveryMaxPublishRate: number;
  readonly drainSeconds: number;
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads variables, collecting problems instead of stopping at the first. */
class Reader {
  readonly problems: string[] = [];
  readonly env: Env;
  constructor(env: Env) {
    this.env = env;
  }

  string(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  list(name: string): string[] | undefined {
    const value = this.string(name);
    return value?.split(',').map((item) => item.trim()).filter((item) => item !== '');
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.string(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value)) {
      this.problems.push(`${name}: "${value}" is not a whole number`);
      return fallback;
    }
    const parsed = Number(value);
    if (parsed < min || parsed > max) {
      this.problems.push(`${name}: ${parsed} is outside ${min}..${max}`);
      return fallback;
    }
    return parsed;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.string(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name}: "${value}" is not a boolean (true/false)`);
    return fallback;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name}: the scheme must be one of ${protocols.join(', ')}`);
        return undefined;
      }
      return value;
    } catch {
      // Never echo the value: a URL can carry a password.
      this.problems.push(`${name}: not a valid URL`);
      return undefined;
    }
  }
}

/** JetStream stream and consumer names, and queue groups: letters, digits, '-' and '_' (no '.', '*', '>' or spaces). */
const NATS_NAME = /^[A-Za-z0-9_-]{1,128}$/;
/** A subject or wildcard: dot-separated non-empty tokens without spaces; '>' only as the last token. */
function isValidSubject(subject: string): boolean {
  const tokens = subject.split('.');
  return tokens.every((token, i) => /^[^\s]+$/.test(token) && (!token.includes('>') || (token === '>' && i === tokens.length - 1)) && (!token.includes('*') || token === '*'));
}

function parseNats(r: Reader): GatewayConfig['nats'] {
  const url = r.url('NATS_URL', ['nats:', 'tls:', 'ws:', 'wss:']);
  const subjects = r.list('NATS_SUBJECTS') ?? [...DEFAULT_NATS_SUBJECTS];
  if (subjects.length === 0) r.problems.push('NATS_SUBJECTS: lists no subject');
  for (const subject of subjects) if (!isValidSubject(subject)) r.problems.push(`NATS_SUBJECTS: "${subject}" is not a valid subject`);
  const name = (variable: string): string | undefined => {
    const value = r.string(variable);
    if (value !== undefined && !NATS_NAME.test(value)) r.problems.push(`${variable}: "${value}" may only have letters, digits, '-' and '_' (at most 128)`);
    return value;
  };
  const queueGroup = name('NATS_QUEUE_GROUP') ?? 'rtgw-bridge';
  const stream = name('NATS_JETSTREAM_STREAM');
  const durable = name('NATS_JETSTREAM_DURABLE');
  if ((stream === undefined) !== (durable === undefined)) {
    r.problems.push('NATS_JETSTREAM_STREAM, NATS_JETSTREAM_DURABLE: set both (JetStream) or neither (core NATS with a queue group)');
  }
  if (stream !== undefined && r.string('NATS_URL') === undefined) r.problems.push('NATS_JETSTREAM_STREAM: needs NATS_URL');
  const credsFile = r.string('NATS_CREDS_FILE');
  if (credsFile !== undefined && url === undefined) r.problems.push('NATS_CREDS_FILE: needs NATS_URL');
  return { url, subjects, queueGroup, jetstream: stream !== undefined && durable !== undefined ? { stream, durable } : undefined, credsFile };
}

export function parseConfig(env: Env): GatewayConfig {
  const r = new Reader(env);

  const logLevelRaw = (r.string('LOG_LEVEL') ?? 'info').toLowerCase();
  const logLevel = (LOG_LEVELS as readonly string[]).includes(logLevelRaw) ? (logLevelRaw as LogLevel) : 'info';
  if (logLevel !== logLevelRaw) r.problems.push(`LOG_LEVEL: "${logLevelRaw}" is not one of ${LOG_LEVELS.join(', ')}`);

  // JWT_ALGORITHM is seed 000's name; JWT_ALGORITHMS (a list) wins when both are set.
  const algorithms = r.list('JWT_ALGORITHMS') ?? r.list('JWT_ALGORITHM') ?? ['HS256'];
  // Set but empty (",") is a mistake, not a request for the default: the verifier would refuse to start.
  if (algorithms.length === 0) r.problems.push('JWT_ALGORITHMS: lists no algorithm');
  for (const algorithm of algorithms) {
    if (algorithm.toLowerCase() === 'none') r.problems.push('JWT_ALGORITHMS: "none" is never allowed: tokens must be signed');
    else if (!HMAC_ALGORITHMS.includes(algorithm) && !ASYMMETRIC_ALGORITHMS.includes(algorithm)) {
      r.problems.push(`JWT_ALGORITHMS: unknown algorithm "${algorithm}" (supported: ${[...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS].join(', ')})`);
    }
  }
  const secret = r.string('JWT_SECRET_KEY');
  const jwksUrl = r.url('JWKS_URL', ['http:', 'https:']);
  if (algorithms.some((a) => HMAC_ALGORITHMS.includes(a))) {
    if (secret === undefined) r.problems.push('JWT_SECRET_KEY: required when JWT_ALGORITHMS has an HS algorithm');
    else if (secret.length < 32) r.problems.push('JWT_SECRET_KEY: must be at least 32 characters for HMAC');
  }
  if (algorithms.some((a) => ASYMMETRIC_ALGORITHMS.includes(a)) && jwksUrl === undefined && r.string('JWKS_URL') === undefined) {
    r.problems.push('JWKS_URL: required when JWT_ALGORITHMS has an RS/PS/ES/EdDSA algorithm');
  }
  const ticketSecret = r.string('WS_TICKET_SECRET');
  if (ticketSecret !== undefined && ticketSecret.length < 32) r.problems.push('WS_TICKET_SECRET: must be at least 32 characters');

  const origins = r.list('CORS_ALLOWED_ORIGINS') ?? [];
  const allowedOrigins = origins.includes('*') ? '*' : origins;
  for (const origin of origins) {
    if (origin === '*') continue;
    // An origin never has a user part, and one with '@' may carry a password: never echo it.
    const shown = origin.includes('@') ? 'a value with a user part ("@")' : `"${origin}"`;
    try {
      if (new URL(origin).origin !== origin) r.problems.push(`CORS_ALLOWED_ORIGINS: ${shown} is not an origin (scheme://host[:port], no path)`);
    } catch {
      r.problems.push(`CORS_ALLOWED_ORIGINS: ${shown} is not an origin`);
    }
  }

  const messagesPerSecond = r.integer('RATE_LIMIT_MESSAGES_PER_SECOND', 20, 1, 100_000);
  // The stream is the recovery window: a client can recover while its last offset is still in the stream,
  // so the stream must hold window x rate entries (docs/reference/recovery.md).
  // Give the window, the length, or both: with only a length, the window is what that length holds at the rate.
  const recoveryMaxPublishRate = r.integer('RECOVERY_MAX_PUBLISH_RATE', 100, 1, 1_000_000);
  const windowGiven = r.string('RECOVERY_WINDOW_SECONDS') !== undefined;
  // 0 when REDIS_STREAM_MAXLEN is invalid (already reported).
  const givenLength = r.string('REDIS_STREAM_MAXLEN') === undefined ? undefined : r.integer('REDIS_STREAM_MAXLEN', 0, 100, 1_000_000_000);
  const recoveryWindowSeconds = !windowGiven && givenLength
    ? Math.floor(givenLength / recoveryMaxPublishRate)
    : r.integer('RECOVERY_WINDOW_SECONDS', 120, 0, 86_400);
  // In integers: 12000 * 1.1 is 13200.000000000002 in floating point, which ceil() turned into 13201.
  const neededEntries = Math.max(1000, Math.ceil((recoveryWindowSeconds * recoveryMaxPublishRate * 11) / 10));
  const streamMaxLen = givenLength || neededEntries;
  if (givenLength) {
    if (windowGiven && streamMaxLen < recoveryWindowSeconds * recoveryMaxPublishRate) {
      r.problems.push(
        `REDIS_STREAM_MAXLEN: ${streamMaxLen} entries cannot hold RECOVERY_WINDOW_SECONDS=${recoveryWindowSeconds} at RECOVERY_MAX_PUBLISH_RATE=${recoveryMaxPublishRate}/s (needs at least ${recoveryWindowSeconds * recoveryMaxPublishRate}); raise it, or unset it to derive it`,
      );
    }
  }

  const config: GatewayConfig = {
    host: r.string('HOST') ?? '0.0.0.0',
    port: r.integer('PORT', 8081, 0, 65535),
    logLevel,
    auth: {
      algorithms,
      secret,
      jwksUrl,
      issuer: r.string('JWT_ISSUER'),
      audience: r.string('JWT_AUDIENCE'),
      tenantClaim: r.string('TENANT_CLAIM') ?? 'tenant_id',
      clockToleranceSeconds: r.integer('JWT_CLOCK_SKEW_SECONDS', 30, 0, 600),
      ticketSecret,
      ticketTtlSeconds: r.integer('WS_TICKET_TTL_SECONDS', 300, 10, 300),
    },
    allowedOrigins,
    serviceApiKeys: r.string('SERVICE_API_KEYS'),
    broadcastRoles: r.list('BROADCAST_ROLES') ?? ['admin', 'publisher'],
    limits: {
      messagesPerSecond,
      messageBurst: r.integer('RATE_LIMIT_BURST', messagesPerSecond * 2, 1, 1_000_000),
      maxConnectionsPerIp: r.integer('MAX_CONNECTIONS_PER_IP', 1000, 1, 10_000_000),
      maxConnectionsPerUser: r.integer('MAX_CONNECTIONS_PER_USER', 20, 1, 10_000_000),
      maxConnectionsPerTenant: r.integer('MAX_CONNECTIONS_PER_TENANT', 100_000, 1, 100_000_000),
      maxMessageBytes: r.integer('MAX_MESSAGE_BYTES', 65_536, 256, 1_000_000),
      maxRoomsPerConnection: r.integer('MAX_ROOMS_PER_CONNECTION', 100, 1, 10_000),
    },
    trustProxy: r.boolean('TRUST_PROXY', false),
    redis: {
      url: r.url('REDIS_URL', ['redis:', 'rediss:']),
      streamName: r.string('REDIS_STREAM_NAME') ?? 'rtgw:stream',
      streamMaxLen,
    },
    nats: parseNats(r),
    recoveryWindowSeconds,
    recoveryMaxPublishRate,
    drainSeconds: r.integer('DRAIN_SECONDS', 20, 0, 3_600),
    pingIntervalMs: r.integer('PING_INTERVAL_MS', 25_000, 1_000, 300_000),
    pingTimeoutMs: r.integer('PING_TIMEOUT_MS', 20_000, 1_000, 300_000),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}
