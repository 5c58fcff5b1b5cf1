/**
 * The composition root: parses the configuration once, builds every part, starts listening, and owns the
 * SIGTERM drain. The only module besides config.ts that touches process.env.
 */
import { ConfigError, parseConfig, type GatewayConfig } from './config.ts';
import { createTicketIssuer, createTokenVerifier, deriveTicketKey, parseServiceKeys } from './auth/index.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { createLogger, type Logger } from './log.ts';
import { createNatsBridge, type NatsBridge } from './bridge/nats.ts';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRedisFleet, type RedisFleet } from './fanout/redis-fleet.ts';
import { MemoryPresence, type PresenceStore } from './presence/presence.ts';
import { RedisPresence } from './presence/redis.ts';
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;

export interface Assembled {
  readonly gateway: Gateway;
  /** With NATS_URL: started after listen, closed after the drain. */
  readonly bridge?: NatsBridge;
  /** Everything to close after the gateway, in order. */
  readonly resources: readonly { close(): Promise<void> }[];
}

export function buildGateway(config: GatewayConfig, logger: Logger): Assembled {
  const secret = config.auth.secret === undefined ? undefined : new TextEncoder().encode(config.auth.secret);
  // Tickets need a key every replica shares: WS_TICKET_SECRET, else one derived from the JWT secret.
  const ticketMaterial = config.auth.ticketSecret ?? config.auth.secret;
  if (ticketMaterial === undefined) {
    throw new ConfigError(['WS_TICKET_SECRET: required when JWT_SECRET_KEY is not set (tickets need a key shared by every replica)']);
  }
  const ticketKey = config.auth.ticketSecret !== undefined ? new TextEncoder().encode(config.auth.ticketSecret) : deriveTicketKey(ticketMaterial);
  const verifier = createTokenVerifier({
    algorithms: config.auth.algorithms,
    ...(secret ? { secret } : {}),
    ...(config.auth.jwksUrl ? { jwksUrl: config.auth.jwksUrl } : {}),
    ...(config.auth.issuer ? { issuer: config.auth.issuer } : {}),
    ...(config.auth.audience ? { audience: config.auth.audience } : {}),
    tenantClaim: config.auth.tenantClaim,
    clockToleranceSeconds: config.auth.clockToleranceSeconds,
    ticketKey,
  });
  let serviceKeys;
  try {
    serviceKeys = config.serviceApiKeys === undefined ? undefined : parseServiceKeys(config.serviceApiKeys);
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  if (!serviceKeys) logger.warn('SERVICE_API_KEYS is not set: the service API answers 503');
  let fleet: RedisFleet | undefined;
  let presence: PresenceStore = new MemoryPresence();
  if (config.redis.url !== undefined) {
    fleet = createRedisFleet({
      url: config.redis.url,
      streamName: config.redis.streamName,
      maxLen: config.redis.streamMaxLen,
      recoveryWindowMs: config.recoveryWindowSeconds * 1000,
    }, logger);
    presence = new RedisPresence(fleet.redis, { prefix: `${config.redis.streamName}:presence:`, replicaId: randomUUID(), heartbeatMs: 2000 }, logger);
  }
  // Readiness reads the bridge lazily: the bridge needs the gateway's fan-out, so it is built after it.
  let bridge: NatsBridge | undefined;
  const gateway = createGateway({
    config,
    logger,
    ...(config.nats.url !== undefined ? { nats: true, dependencies: () => ({ nats: bridge?.healthy() ?? false }) } : {}),
    verifier,
    ticketIssuer: createTicketIssuer({ ticketKey, tenantClaim: config.auth.tenantClaim, ttlSeconds: config.auth.ticketTtlSeconds }),
    serviceKeys,
    presence,
    ...(fleet ? { fleet } : {}),
    version: VERSION,
  });
  if (config.nats.url !== undefined) {
    const { url, subjects, queueGroup, jetstream, credsFile } = config.nats;
    let creds: Uint8Array | undefined;
    try {
      creds = credsFile === undefined ? undefined : readFileSync(credsFile);
    } catch (error) {
      throw new ConfigError([`NATS_CREDS_FILE: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
    }
    bridge = createNatsBridge({ url, subjects, queueGroup, jetstream, creds }, { fanout: gateway.fanout, logger, metrics: gateway.metrics });
  }
  return { gateway, ...(bridge ? { bridge } : {}), resources: [presence, ...(fleet ? [fleet] : [])] };
}

/** Starts a gateway and drains it on SIGTERM/SIGINT. */
export async function run(config: GatewayConfig, logger: Logger): Promise<Gateway> {
  const { gateway, bridge, resources } = buildGateway(config, logger);
  const address = await gateway.listen();
  logger.info({ event: 'listening', port: address.port, version: VERSION }, `gateway listening on :${address.port}`);
  // Not awaited: NATS down at start-up leaves the replica unready (/readyz nats: false) until it is back.
  bridge?.start().catch((error: unknown) => logger.error({ err: error }, 'the NATS bridge failed to start'));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // The safety net: whatever happens below (a hung close, a log write failing on a broken pipe), the
    // process is gone within the drain budget, inside the pod's grace period.
    setTimeout(() => process.exit(0), config.drainSeconds * 1000 + 2000);
    try {
      logger.info({ event: 'shutdown', signal }, 'draining before exit');
      await gateway.drain();
      // After the drain (a draining replica still fans NATS events out to the fleet), before the fan-out closes.
      await bridge?.close();
      await gateway.close();
      for (const resource of resources) await resource.close();
      logger.flush?.();
    } catch (error) {
      try {
        logger.error({ err: error }, 'shutdown failed; exiting anyway');
      } catch {
        // the log itself may be what failed
      }
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return gateway;
}

if (import.meta.main) {
  let config: GatewayConfig;
  try {
    config = parseConfig(process.env);
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  run(config, logger).catch((error: unknown) => {
    if (error instanceof ConfigError) console.error(error.message);
    else logger.fatal({ err: error }, 'gateway failed to start');
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
