import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULT_NATS_SUBJECTS, parseConfig, type GatewayConfig } from '../../../gateway/src/config.ts';

const SECRET = 'a-test-secret-of-at-least-32-characters';
type Env = Record<string, string | undefined>;

/** The minimal valid environment: HS256 (the default) needs a secret. */
const env = (extra: Env = {}): Env => ({ JWT_SECRET_KEY: SECRET, ...extra });

/** The part of `actual` that has the keys of `shape`, recursively through plain objects. */
function pickLike(actual: unknown, shape: unknown): unknown {
  if (typeof shape !== 'object' || shape === null || Array.isArray(shape)) return actual;
  if (typeof actual !== 'object' || actual === null) return actual;
  const source = actual as Record<string, unknown>;
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, pickLike(source[k], v)]));
}

/** The problems parseConfig reports for an environment; fails when it does not throw ConfigError. */
function problemsOf(environment: Env): readonly string[] {
  try {
    parseConfig(environment);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(environment)} to be refused`);
}

/** Asserts exactly one problem, naming `variable`, and returns it. */
function oneProblem(environment: Env, variable: string): string {
  const problems = problemsOf(environment);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.ok(problems[0]!.startsWith(`${variable}: `), problems[0]);
  return problems[0]!;
}

describe('parseConfig defaults', () => {
  it('fills every setting from a minimal environment', () => {
    // Settings owned by the recovery stream (REDIS_STREAM_MAXLEN, RECOVERY_MAX_PUBLISH_RATE) are tested with it.
    const expected = {
      host: '0.0.0.0',
      port: 8081,
      logLevel: 'info',
      auth: {
        algorithms: ['HS256'],
        secret: SECRET,
        jwksUrl: undefined,
        issuer: undefined,
        audience: undefined,
        tenantClaim: 'tenant_id',
        clockToleranceSeconds: 30,
        ticketSecret: undefined,
        ticketTtlSeconds: 300,
      },
      allowedOrigins: [],
      serviceApiKeys: undefined,
      broadcastRoles: ['admin', 'publisher'],
      limits: {
        messagesPerSecond: 20,
        messageBurst: 40,
        maxConnectionsPerIp: 1000,
        maxConnectionsPerUser: 20,
        maxConnectionsPerTenant: 100_000,
        maxMessageBytes: 65_536,
        maxRoomsPerConnection: 100,
      },
      trustProxy: false,
      redis: { url: undefined, streamName: 'rtgw:stream' },
      nats: { url: undefined, subjects: [...DEFAULT_NATS_SUBJECTS] },
      recoveryWindowSeconds: 120,
      drainSeconds: 20,
      pingIntervalMs: 25_000,
      pingTimeoutMs: 20_000,
    };
    const config = parseConfig(env());
    assert.deepEqual(pickLike(config, expected), expected);
    assert.deepEqual(Object.keys(config.auth).sort(), Object.keys(expected.auth).sort());
    assert.deepEqual(Object.keys(config.limits).sort(), Object.keys(expected.limits).sort());
  });

  it('subscribes to seed 000\'s eleven NATS subjects by default', () => {
    assert.deepEqual(DEFAULT_NATS_SUBJECTS, [
      'sahool.fields.>', 'sahool.weather.>', 'sahool.satellite.>', 'sahool.ndvi.>', 'sahool.inventory.>', 'sahool.crop.>',
      'sahool.spray.>', 'sahool.chat.>', 'sahool.tasks.>', 'sahool.iot.>', 'sahool.alerts.>',
    ]);
  });

  it('treats empty and blank values as unset', () => {
    const config = parseConfig(env({ PORT: '', HOST: '   ', LOG_LEVEL: '', JWT_ALGORITHMS: ' ', BROADCAST_ROLES: '', REDIS_URL: '' }));
    assert.equal(config.port, 8081);
    assert.equal(config.host, '0.0.0.0');
    assert.deepEqual(config.auth.algorithms, ['HS256']);
    assert.deepEqual(config.broadcastRoles, ['admin', 'publisher']);
    assert.equal(config.redis.url, undefined);
  });

  it('accepts seed 000\'s example environment', () => {
    const config = parseConfig({
      PORT: '8081',
      NATS_URL: 'nats://nats:4222',
      REDIS_URL: 'redis://:password@redis:6379/0',
      JWT_SECRET_KEY: SECRET,
      JWT_ALGORITHM: 'HS256',
      LOG_LEVEL: 'INFO',
      ENVIRONMENT: 'production',
      CORS_ALLOWED_ORIGINS: 'https://app.sahool.com',
    });
    assert.equal(config.logLevel, 'info');
    assert.equal(config.nats.url, 'nats://nats:4222');
    assert.equal(config.redis.url, 'redis://:password@redis:6379/0');
    assert.deepEqual(config.allowedOrigins, ['https://app.sahool.com']);
  });
});

describe('parseConfig: plain values', () => {
  it('reads strings, trimmed', () => {
    const config = parseConfig(env({
      HOST: ' 127.0.0.1 ',
      JWT_ISSUER: 'https://idp/',
      JWT_AUDIENCE: 'gw',
      TENANT_CLAIM: 'org_tenant',
      SERVICE_API_KEYS: 'billing:k1',
      REDIS_STREAM_NAME: 's1',
    }));
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.auth.issuer, 'https://idp/');
    assert.equal(config.auth.audience, 'gw');
    assert.equal(config.auth.tenantClaim, 'org_tenant');
    assert.equal(config.serviceApiKeys, 'billing:k1');
    assert.equal(config.redis.streamName, 's1');
  });

  it('reads lists, trimming entries and dropping empty ones', () => {
    const config = parseConfig(env({ BROADCAST_ROLES: ' ops , ,admin,', NATS_SUBJECTS: 'a.>, b.*' }));
    assert.deepEqual(config.broadcastRoles, ['ops', 'admin']);
    assert.deepEqual(config.nats.subjects, ['a.>', 'b.*']);
  });

  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent', 'DEBUG', ' Warn ']) {
    it(`LOG_LEVEL ${JSON.stringify(level)} is accepted`, () => {
      assert.equal(parseConfig(env({ LOG_LEVEL: level })).logLevel, level.trim().toLowerCase());
    });
  }
  it('LOG_LEVEL refuses an unknown level', () => {
    assert.match(oneProblem(env({ LOG_LEVEL: 'verbose' }), 'LOG_LEVEL'), /"verbose" is not one of/);
  });

  for (const [value, expected] of [['1', true], ['true', true], ['YES', true], ['on', true], ['0', false], ['False', false], ['no', false], ['off', false]] as const) {
    it(`TRUST_PROXY ${value} is ${expected}`, () => assert.equal(parseConfig(env({ TRUST_PROXY: value })).trustProxy, expected));
  }
  it('TRUST_PROXY refuses anything else', () => {
    assert.match(oneProblem(env({ TRUST_PROXY: 'maybe' }), 'TRUST_PROXY'), /not a boolean/);
  });
});

describe('parseConfig: whole numbers', () => {
  const pick = {
    PORT: (c: GatewayConfig) => c.port,
    JWT_CLOCK_SKEW_SECONDS: (c: GatewayConfig) => c.auth.clockToleranceSeconds,
    WS_TICKET_TTL_SECONDS: (c: GatewayConfig) => c.auth.ticketTtlSeconds,
    RATE_LIMIT_MESSAGES_PER_SECOND: (c: GatewayConfig) => c.limits.messagesPerSecond,
    RATE_LIMIT_BURST: (c: GatewayConfig) => c.limits.messageBurst,
    MAX_CONNECTIONS_PER_IP: (c: GatewayConfig) => c.limits.maxConnectionsPerIp,
    MAX_CONNECTIONS_PER_USER: (c: GatewayConfig) => c.limits.maxConnectionsPerUser,
    MAX_CONNECTIONS_PER_TENANT: (c: GatewayConfig) => c.limits.maxConnectionsPerTenant,
    MAX_MESSAGE_BYTES: (c: GatewayConfig) => c.limits.maxMessageBytes,
    MAX_ROOMS_PER_CONNECTION: (c: GatewayConfig) => c.limits.maxRoomsPerConnection,
    RECOVERY_WINDOW_SECONDS: (c: GatewayConfig) => c.recoveryWindowSeconds,
    DRAIN_SECONDS: (c: GatewayConfig) => c.drainSeconds,
    PING_INTERVAL_MS: (c: GatewayConfig) => c.pingIntervalMs,
    PING_TIMEOUT_MS: (c: GatewayConfig) => c.pingTimeoutMs,
  } as const;
  /** variable: [min, max] */
  const RANGES: Readonly<Record<keyof typeof pick, readonly [number, number]>> = {
    PORT: [0, 65535],
    JWT_CLOCK_SKEW_SECONDS: [0, 600],
    WS_TICKET_TTL_SECONDS: [10, 300],
    RATE_LIMIT_MESSAGES_PER_SECOND: [1, 100_000],
    RATE_LIMIT_BURST: [1, 1_000_000],
    MAX_CONNECTIONS_PER_IP: [1, 10_000_000],
    MAX_CONNECTIONS_PER_USER: [1, 10_000_000],
    MAX_CONNECTIONS_PER_TENANT: [1, 100_000_000],
    MAX_MESSAGE_BYTES: [256, 1_000_000],
    MAX_ROOMS_PER_CONNECTION: [1, 10_000],
    RECOVERY_WINDOW_SECONDS: [0, 86_400],
    DRAIN_SECONDS: [0, 3_600],
    PING_INTERVAL_MS: [1_000, 300_000],
    PING_TIMEOUT_MS: [1_000, 300_000],
  };

  for (const [name, [min, max]] of Object.entries(RANGES) as [keyof typeof pick, readonly [number, number]][]) {
    it(`${name} accepts ${min} and ${max}, with surrounding spaces`, () => {
      assert.equal(pick[name](parseConfig(env({ [name]: String(min) }))), min);
      assert.equal(pick[name](parseConfig(env({ [name]: ` ${max} ` }))), max);
    });
    if (min > 0) {
      it(`${name} refuses ${min - 1}`, () => {
        assert.equal(oneProblem(env({ [name]: String(min - 1) }), name), `${name}: ${min - 1} is outside ${min}..${max}`);
      });
    }
    it(`${name} refuses ${max + 1}`, () => {
      assert.equal(oneProblem(env({ [name]: String(max + 1) }), name), `${name}: ${max + 1} is outside ${min}..${max}`);
    });
    for (const bad of ['-1', '1.5', '1e3', '0x10', 'ten', '12abc', '+5']) {
      it(`${name} refuses ${JSON.stringify(bad)} as not a whole number`, () => {
        assert.equal(oneProblem(env({ [name]: bad }), name), `${name}: "${bad}" is not a whole number`);
      });
    }
  }

  it('RATE_LIMIT_BURST defaults to twice the rate', () => {
    const config = parseConfig(env({ RATE_LIMIT_MESSAGES_PER_SECOND: '7' }));
    assert.equal(config.limits.messagesPerSecond, 7);
    assert.equal(config.limits.messageBurst, 14);
    assert.equal(parseConfig(env({ RATE_LIMIT_MESSAGES_PER_SECOND: '7', RATE_LIMIT_BURST: '3' })).limits.messageBurst, 3);
  });
});

describe('parseConfig: JWT algorithms', () => {
  it('reads seed 000\'s JWT_ALGORITHM as a one-item list', () => {
    assert.deepEqual(parseConfig(env({ JWT_ALGORITHM: 'HS512' })).auth.algorithms, ['HS512']);
  });

  it('prefers JWT_ALGORITHMS when both are set', () => {
    const config = parseConfig(env({ JWT_ALGORITHMS: 'HS384', JWT_ALGORITHM: 'RS256' }));
    assert.deepEqual(config.auth.algorithms, ['HS384']);
    // JWT_ALGORITHM is not read at all, so its bad value is no problem either.
    assert.deepEqual(parseConfig(env({ JWT_ALGORITHMS: 'HS256', JWT_ALGORITHM: 'none' })).auth.algorithms, ['HS256']);
  });

  it('reads a list', () => {
    const config = parseConfig(env({ JWT_ALGORITHMS: 'HS256, RS256,ES256', JWKS_URL: 'https://idp.example/jwks' }));
    assert.deepEqual(config.auth.algorithms, ['HS256', 'RS256', 'ES256']);
    assert.equal(config.auth.jwksUrl, 'https://idp.example/jwks');
  });

  for (const [variable, value] of [['JWT_ALGORITHMS', 'none'], ['JWT_ALGORITHMS', 'NONE'], ['JWT_ALGORITHM', 'None'], ['JWT_ALGORITHMS', 'HS256,none']] as const) {
    it(`refuses ${variable}=${value}`, () => {
      assert.equal(oneProblem(env({ [variable]: value }), 'JWT_ALGORITHMS'), 'JWT_ALGORITHMS: "none" is never allowed: tokens must be signed');
    });
  }

  for (const value of ['HS1', 'hs256', 'RSA', 'ES256K']) {
    it(`refuses the unknown algorithm ${value}`, () => {
      assert.match(oneProblem(env({ JWT_ALGORITHMS: value, JWKS_URL: 'https://idp/jwks' }), 'JWT_ALGORITHMS'), new RegExp(`unknown algorithm "${value}"`));
    });
  }

  for (const variable of ['JWT_ALGORITHMS', 'JWT_ALGORITHM']) {
    it(`refuses ${variable} set to a list with no algorithm in it`, () => {
      assert.equal(oneProblem(env({ [variable]: ' , ,' }), 'JWT_ALGORITHMS'), 'JWT_ALGORITHMS: lists no algorithm');
    });
  }

  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`${alg} needs JWT_SECRET_KEY`, () => {
      assert.equal(oneProblem({ JWT_ALGORITHMS: alg }, 'JWT_SECRET_KEY'), 'JWT_SECRET_KEY: required when JWT_ALGORITHMS has an HS algorithm');
    });
  }

  it('needs a secret of at least 32 characters (after trimming)', () => {
    assert.equal(oneProblem({ JWT_SECRET_KEY: 's'.repeat(31) }, 'JWT_SECRET_KEY'), 'JWT_SECRET_KEY: must be at least 32 characters for HMAC');
    assert.equal(oneProblem({ JWT_SECRET_KEY: ` ${'s'.repeat(31)} ` }, 'JWT_SECRET_KEY'), 'JWT_SECRET_KEY: must be at least 32 characters for HMAC');
    assert.equal(parseConfig({ JWT_SECRET_KEY: 's'.repeat(32) }).auth.secret, 's'.repeat(32));
  });

  it('never echoes the secret', () => {
    const short = 'short-secret-value';
    const problems = problemsOf({ JWT_SECRET_KEY: short });
    assert.ok(!problems.join('\n').includes(short));
  });

  for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']) {
    it(`${alg} needs JWKS_URL and no secret`, () => {
      assert.equal(oneProblem({ JWT_ALGORITHMS: alg }, 'JWKS_URL'), 'JWKS_URL: required when JWT_ALGORITHMS has an RS/PS/ES/EdDSA algorithm');
      const config = parseConfig({ JWT_ALGORITHMS: alg, JWKS_URL: 'http://idp.local/.well-known/jwks.json' });
      assert.deepEqual(config.auth.algorithms, [alg]);
      assert.equal(config.auth.secret, undefined);
    });
  }

  it('needs both a secret and JWKS_URL for a mixed list', () => {
    const problems = problemsOf({ JWT_ALGORITHMS: 'HS256,RS256' });
    assert.deepEqual(problems.map((p) => p.split(':')[0]), ['JWT_SECRET_KEY', 'JWKS_URL']);
  });

  it('reports a JWKS_URL that is not a URL once, not also as missing', () => {
    assert.equal(oneProblem({ JWT_ALGORITHMS: 'RS256', JWKS_URL: 'not a url' }, 'JWKS_URL'), 'JWKS_URL: not a valid URL');
    assert.equal(oneProblem({ JWT_ALGORITHMS: 'RS256', JWKS_URL: 'ftp://idp/jwks' }, 'JWKS_URL'), 'JWKS_URL: the scheme must be one of http:, https:');
  });

  it('WS_TICKET_SECRET must be at least 32 characters when set', () => {
    assert.equal(oneProblem(env({ WS_TICKET_SECRET: 't'.repeat(31) }), 'WS_TICKET_SECRET'), 'WS_TICKET_SECRET: must be at least 32 characters');
    assert.equal(parseConfig(env({ WS_TICKET_SECRET: 't'.repeat(32) })).auth.ticketSecret, 't'.repeat(32));
  });
});

describe('parseConfig: CORS_ALLOWED_ORIGINS', () => {
  it('reads exact origins', () => {
    assert.deepEqual(
      parseConfig(env({ CORS_ALLOWED_ORIGINS: 'https://app.sahool.com, http://localhost:3000' })).allowedOrigins,
      ['https://app.sahool.com', 'http://localhost:3000'],
    );
  });

  for (const value of ['*', ' * ', 'https://a.example,*']) {
    it(`reads ${JSON.stringify(value)} as any origin`, () => {
      assert.equal(parseConfig(env({ CORS_ALLOWED_ORIGINS: value })).allowedOrigins, '*');
    });
  }

  for (const origin of ['https://app.example/', 'https://app.example/path', 'https://app.example:443', 'HTTPS://APP.EXAMPLE', 'https://app.example?x=1']) {
    it(`refuses ${origin}, which is not an origin as browsers send it`, () => {
      assert.match(oneProblem(env({ CORS_ALLOWED_ORIGINS: origin }), 'CORS_ALLOWED_ORIGINS'), /is not an origin/);
    });
  }

  it('refuses a value that is not a URL at all', () => {
    assert.equal(oneProblem(env({ CORS_ALLOWED_ORIGINS: 'app.example' }), 'CORS_ALLOWED_ORIGINS'), 'CORS_ALLOWED_ORIGINS: "app.example" is not an origin');
  });

  it('reports every bad origin', () => {
    assert.equal(problemsOf(env({ CORS_ALLOWED_ORIGINS: 'a, https://ok.example, b/' })).length, 2);
  });
});

describe('parseConfig: URLs', () => {
  const urls: readonly [string, (c: GatewayConfig) => string | undefined, string, string][] = [
    ['REDIS_URL', (c) => c.redis.url, 'rediss://:pw@redis:6380/1', 'http://redis:6379'],
    ['NATS_URL', (c) => c.nats.url, 'tls://nats:4222', 'http://nats:4222'],
    ['JWKS_URL', (c) => c.auth.jwksUrl, 'https://idp/jwks', 'file:///etc/jwks'],
  ];
  for (const [name, read, good, wrongScheme] of urls) {
    it(`${name} accepts ${good}`, () => assert.equal(read(parseConfig(env({ [name]: good }))), good));
    it(`${name} refuses a wrong scheme`, () => assert.match(oneProblem(env({ [name]: wrongScheme }), name), /the scheme must be one of/));
    it(`${name} refuses a non-URL`, () => assert.equal(oneProblem(env({ [name]: 'redis' }), name), `${name}: not a valid URL`));
  }

  for (const scheme of ['nats:', 'tls:', 'ws:', 'wss:']) {
    it(`NATS_URL accepts ${scheme}`, () => assert.equal(parseConfig(env({ NATS_URL: `${scheme}//n:4222` })).nats.url, `${scheme}//n:4222`));
  }
});

describe('parseConfig: passwords in URLs never reach an error', () => {
  const PASSWORD = 'hunter2-s3cret';
  const cases: readonly [string, string][] = [
    ['REDIS_URL', `http://:${PASSWORD}@redis:6379/0`],
    ['REDIS_URL', `redis://:${PASSWORD}@[not-a-host:6379/0`],
    ['NATS_URL', `http://user:${PASSWORD}@nats:4222`],
    ['NATS_URL', `nats://user:${PASSWORD}@nats:port`],
    ['JWKS_URL', `ftp://user:${PASSWORD}@idp/jwks`],
    ['CORS_ALLOWED_ORIGINS', `https://user:${PASSWORD}@app.example`],
    ['CORS_ALLOWED_ORIGINS', `https://user:${PASSWORD}@[bad`],
    ['CORS_ALLOWED_ORIGINS', `user:${PASSWORD}@app.example`],
  ];
  for (const [name, value] of cases) {
    it(`${name}=${value.replace(PASSWORD, '***')}`, () => {
      let caught: unknown;
      try {
        parseConfig(env({ [name]: value }));
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof ConfigError, 'expected a ConfigError');
      assert.equal(caught.problems.length, 1);
      assert.ok(caught.problems[0]!.startsWith(`${name}: `));
      assert.ok(!caught.message.includes(PASSWORD), caught.message);
      assert.ok(!caught.problems.join('\n').includes(PASSWORD));
    });
  }
});

describe('parseConfig: all problems at once', () => {
  it('reports every bad variable in one ConfigError', () => {
    const bad: Env = {
      LOG_LEVEL: 'loud',
      JWT_ALGORITHMS: 'none,RS256',
      WS_TICKET_SECRET: 'short',
      CORS_ALLOWED_ORIGINS: 'https://x.example/',
      PORT: '70000',
      TRUST_PROXY: 'sometimes',
      REDIS_URL: 'http://r',
      NATS_URL: '::',
      DRAIN_SECONDS: '-5',
    };
    let caught: unknown;
    try {
      parseConfig(bad);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.name, 'ConfigError');
    const named = caught.problems.map((p) => p.slice(0, p.indexOf(':')));
    assert.deepEqual(new Set(named), new Set([
      'LOG_LEVEL', 'JWT_ALGORITHMS', 'JWKS_URL', 'WS_TICKET_SECRET', 'CORS_ALLOWED_ORIGINS', 'PORT', 'TRUST_PROXY', 'REDIS_URL', 'NATS_URL', 'DRAIN_SECONDS',
    ]));
    assert.equal(caught.problems.length, 10);
    for (const problem of caught.problems) assert.ok(caught.message.includes(problem));
    assert.ok(caught.message.startsWith('invalid configuration:'));
  });

  it('reports nothing for a good environment', () => {
    assert.doesNotThrow(() => parseConfig(env()));
  });
});
