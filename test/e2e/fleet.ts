/** A fleet for end-to-end tests: Redis (+ NATS) and N gateway processes sharing them. */
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startNats, startRedis, type Service } from '../harness/services.ts';

export interface Fleet {
  readonly redis: Service;
  readonly nats: Service | undefined;
  readonly gateways: GatewayProcess[];
  /** Starts one more replica with the fleet's environment. */
  add(env?: Record<string, string>): Promise<GatewayProcess>;
  stop(): Promise<void>;
}

export async function startFleet(replicas: number, options: { nats?: boolean; env?: Record<string, string> } = {}): Promise<Fleet> {
  const redis = await startRedis();
  const nats = options.nats ? await startNats() : undefined;
  const env = {
    REDIS_URL: redis.url,
    ...(nats ? { NATS_URL: nats.url } : {}),
    RECOVERY_WINDOW_SECONDS: '60',
    ...options.env,
  };
  const gateways: GatewayProcess[] = [];
  const fleet: Fleet = {
    redis,
    nats,
    gateways,
    async add(extra = {}) {
      const gateway = await startGateway({ ...env, ...extra });
      gateways.push(gateway);
      return gateway;
    },
    async stop() {
      await Promise.all(gateways.map((g) => g.stop()));
      await nats?.stop();
      await redis.stop();
    },
  };
  for (let i = 0; i < replicas; i++) await fleet.add();
  return fleet;
}
