/**
 * The servers a benchmark measures, started fresh for each workload on free loopback ports and pinned to the
 * server core: our gateway (over /ws JSON and over socket.io), plain socket.io 4.8 with the same Redis Streams
 * adapter, plain `ws` (the floor) and Centrifugo (when its binary could be built; see centrifugo.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, NODE, REPO_ROOT } from '../../harness/gateway.ts';
import { freePort } from '../../harness/ports.ts';
import { start, waitFor, type Started } from '../../harness/process.ts';
import { startNats, startRedis, type Service } from '../../harness/services.ts';
import { SERVICE_KEY, TEST_SECRET, hsToken } from '../../harness/tokens.ts';
import type { Endpoint, Protocol } from './load-client.ts';
import { PINNING, pin } from './system.ts';
import { centrifugoBinary, startCentrifugo } from './centrifugo.ts';

export type TargetName = 'ours-ws' | 'ours-sio' | 'ours-sio-polling' | 'socketio' | 'ws' | 'centrifugo';
export const ALL_TARGETS: readonly TargetName[] = ['ours-ws', 'ours-sio', 'ours-sio-polling', 'socketio', 'ws', 'centrifugo'];
export const TENANT = 'bench';

export const TARGET_LABELS: Record<TargetName, string> = {
  'ours-ws': 'gateway /ws',
  'ours-sio': 'gateway socket.io',
  'ours-sio-polling': 'gateway socket.io, polling first',
  socketio: 'socket.io 4.8',
  ws: 'plain ws',
  centrifugo: 'Centrifugo',
};

export interface ServerProcess {
  readonly pid: number;
  readonly httpUrl: string;
  readonly port: number;
}

export interface Target {
  readonly name: TargetName;
  readonly protocol: Protocol;
  readonly servers: readonly ServerProcess[];
  readonly redis?: Service;
  readonly nats?: Service;
  /** Where client `user` connects, on replica `replica`. */
  endpoint(replica: number): Endpoint;
  token(user: string): Promise<string>;
  /** What a client subscribes to be in its group rooms (and, where it is not automatic, its personal room). */
  topics(user: string, groups: readonly string[]): string[];
  /** Publishes `message` to a group room (`group`) or a user's personal room (`user`) over the HTTP API. */
  publish(replica: number, room: { group: string } | { user: string }, message: Record<string, unknown>): Promise<void>;
  /** Publishes over NATS (our gateway only). */
  publishNats?(room: { group: string }, message: Record<string, unknown>): void;
  stop(): Promise<void>;
}

export interface TargetOptions {
  /** The idle-capacity workload: the only one polling-first clients take part in (they cost the same once upgraded). */
  readonly idle?: boolean;
  readonly replicas?: number;
  /** Redis Streams adapter (two replicas unless `replicas` says otherwise). */
  readonly redis?: boolean;
  readonly nats?: boolean;
}

export function supports(name: TargetName, options: TargetOptions & { resume?: boolean }): boolean {
  if (name === 'centrifugo' && centrifugoBinary() === undefined) return false;
  if (name === 'ours-sio-polling' && !options.idle) return false;
  if ((options.redis || (options.replicas ?? 1) > 1) && (name === 'ws' || name === 'centrifugo')) return false;
  if (options.nats && name !== 'ours-ws' && name !== 'ours-sio') return false;
  if (options.resume && name === 'centrifugo') return false;
  return true;
}

/** POST /broadcast of the gateway and of the hand-written peers (same body, same service key). */
function broadcast(servers: readonly ServerProcess[]): Target['publish'] {
  const headers = { authorization: `Bearer ${SERVICE_KEY}` };
  return (replica, room, message) => post(`${servers[replica]!.httpUrl}/broadcast`, headers, {
    tenant_id: TENANT,
    room: 'group' in room ? `field:${room.group}` : `user:${room.user}`,
    message,
  });
}

/** One keep-alive HTTP publisher per run: open-loop callers never wait on it. */
async function post(url: string, headers: Record<string, string>, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`publish: HTTP ${res.status}`);
}

/**
 * What every Node server runs with, ours and the Node peers alike: the gateway image's NODE_OPTIONS (a small
 * young generation, see images/gateway.Containerfile) unless BENCH_NODE_OPTIONS says otherwise ("" for V8's
 * defaults).
 */
export const BENCH_NODE_OPTIONS = process.env['BENCH_NODE_OPTIONS'] ?? '--max-semi-space-size=8';

/** NODE_OPTIONS for a Node server, plus `extra` (BENCH_GATEWAY_NODE_OPTIONS, ours only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
function nodeOptions(extra?: string): { NODE_OPTIONS?: string } {
  const options = [BENCH_NODE_OPTIONS, extra].filter(Boolean).join(' ');
  return options ? { NODE_OPTIONS: options } : {};
}

async function startNodePeer(script: string, env: Record<string, string>): Promise<{ child: Started; server: ServerProcess }> {
  const port = await freePort();
  const child = start(NODE, [script], {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'] ?? '', PORT: String(port), JWT_SECRET_KEY: TEST_SECRET, SERVICE_KEY, ...nodeOptions(), ...env },
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitFor(`${script} on :${port}`, async () => {
    if (child.child.exitCode !== null) throw new Error(`${script} exited with ${child.child.exitCode}:\n${child.output()}`);
    return (await fetch(`${httpUrl}/healthz`).catch(() => undefined))?.ok;
  }, 20_000);
  pin(child.child.pid!, PINNING.server);
  return { child, server: { pid: child.child.pid!, httpUrl, port } };
}

export async function startTarget(name: TargetName, options: TargetOptions = {}): Promise<Target> {
  const replicas = options.replicas ?? (options.redis ? 2 : 1);
  const redis = options.redis ? await startRedis() : undefined;
  const nats = options.nats ? await startNats() : undefined;
  for (const service of [redis, nats]) if (service) pin(service.current().child.pid!, PINNING.services);
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await redis?.stop().catch(() => {});
    await nats?.stop().catch(() => {});
  };
  try {
    const servers: ServerProcess[] = [];
    const userToken = (user: string) => hsToken({ sub: user, tenant: TENANT, expiresIn: 3 * 3600 });

    if (name === 'ours-ws' || name === 'ours-sio' || name === 'ours-sio-polling') {
      for (let i = 0; i < replicas; i++) {
        const gateway = await startGateway({
          // Per-publish info lines would measure pino, not fan-out; production runs at info.
          LOG_LEVEL: 'warn',
          MAX_CONNECTIONS_PER_IP: '1000000',
          MAX_CONNECTIONS_PER_TENANT: '1000000',
          ...(redis ? { REDIS_URL: redis.url, RECOVERY_MAX_PUBLISH_RATE: '2000' } : {}),
          ...(nats ? { NATS_URL: nats.url, NATS_SUBJECTS: 'bench.>' } : {}),
          ...nodeOptions(process.env['BENCH_GATEWAY_NODE_OPTIONS']),
        });
        stops.push(() => gateway.stop());
        pin(gateway.process.child.pid!, PINNING.server);
        servers.push({ pid: gateway.process.child.pid!, httpUrl: gateway.httpUrl, port: gateway.port });
        if (nats) {
          await waitFor('the gateway to be ready on NATS', async () => (await gateway.api('/readyz', { serviceKey: null })).status === 200, 20_000);
        }
      }
      let natsConnection: { publish(subject: string, data: string): void; close(): Promise<void> } | undefined;
      if (nats) {
        const { connect } = await import('@nats-io/transport-node');
        natsConnection = await connect({ servers: nats.url });
        stops.unshift(async () => natsConnection?.close());
      }
      const sio = name !== 'ours-ws';
      return {
        name,
        protocol: name === 'ours-sio-polling' ? 'eio-polling' : sio ? 'eio' : 'json',
        servers,
        ...(redis ? { redis } : {}),
        ...(nats ? { nats } : {}),
        endpoint: (replica) => (sio
          ? { url: `ws://127.0.0.1:${servers[replica]!.port}/socket.io/?EIO=4&transport=websocket&tenant_id=${TENANT}` }
          : { url: `ws://127.0.0.1:${servers[replica]!.port}/ws?tenant_id=${TENANT}` }),
        token: userToken,
        topics: (_user, groups) => groups.map((g) => `field:${g}`),
        publish: broadcast(servers),
        publishNats: natsConnection
          ? (room, message) => natsConnection!.publish('bench.fanout', JSON.stringify({ ...message, tenant_id: TENANT, room: `field:${room.group}` }))
          : undefined,
        stop: stopAll,
      } as Target;
    }

    if (name === 'socketio' || name === 'ws') {
      for (let i = 0; i < replicas; i++) {
        const peer = await startNodePeer(`test/bench/peers/${name === 'ws' ? 'ws' : 'socketio'}-server.ts`, redis ? { REDIS_URL: redis.url } : {});
        stops.push(() => peer.child.stop());
        servers.push(peer.server);
      }
      // The socket.io adapter's readers start on their first XREAD; give them a moment.
      if (redis) await sleep(500);
      return {
        name,
        protocol: name === 'ws' ? 'json' : 'eio',
        servers,
        ...(redis ? { redis } : {}),
        endpoint: (replica) => (name === 'ws'
          ? { url: `ws://127.0.0.1:${servers[replica]!.port}/` }
          : { url: `ws://127.0.0.1:${servers[replica]!.port}/socket.io/?EIO=4&transport=websocket` }),
        token: userToken,
        topics: (_user, groups) => groups.map((g) => `field:${g}`),
        publish: broadcast(servers),
        stop: stopAll,
      };
    }

    const centrifugo = await startCentrifugo();
    stops.push(() => centrifugo.child.stop());
    pin(centrifugo.server.pid, PINNING.server);
    servers.push(centrifugo.server);
    return {
      name,
      protocol: 'centrifuge',
      servers,
      endpoint: () => ({ url: `ws://127.0.0.1:${centrifugo.server.port}/connection/websocket` }),
      token: (user) => hsToken({ sub: user, tenant: TENANT, expiresIn: 3 * 3600, secret: centrifugo.secret }),
      topics: (user, groups) => [`bench:user_${user}`, ...groups.map((g) => `bench:${g}`)],
      publish: (_replica, room, message) => post(`${centrifugo.server.httpUrl}/api/publish`, { 'x-api-key': centrifugo.apiKey }, {
        channel: 'group' in room ? `bench:${room.group}` : `bench:user_${room.user}`,
        data: message,
      }),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
