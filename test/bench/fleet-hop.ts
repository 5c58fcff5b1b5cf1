/**
 * Cross-replica hop benchmark (not a test): what the Redis Streams adapter adds between two replicas, and what
 * it costs Redis.
 *
 *   node_modules/.bin/node test/bench/fleet-hop.ts
 *
 * Environment: BENCH_CLIENTS (raw /ws subscribers per replica, default 200), BENCH_RATE (publishes a second,
 * default 20), BENCH_SECONDS (default 10).
 *
 * Starts Redis and two gateway processes A and B (the test harness; with taskset and two cores, Redis is pinned
 * to core 0 and both gateways to core 1; this script, the clients and the publisher float). BENCH_CLIENTS raw
 * clients on each replica join one room; the publisher POSTs /broadcast to A open-loop (on a fixed schedule,
 * not waiting for answers), each message carrying its sequence number and send time.
 * - hop: for each message, each B client's receipt time minus the median receipt time of A's clients (A
 *   delivers locally at once; B reads the stream entry), in one clock (this process) into an HdrHistogram;
 * - loss: messages x clients expected per side, minus what arrived;
 * - Redis CPU: used_cpu_user + used_cpu_sys from INFO cpu across the publishing phase, minus an idle phase of
 *   the same length (heartbeats, blocked XREADs), divided by the broadcasts, scaled to 1,000 broadcasts a
 *   second (a linear extrapolation: at low rates Redis's per-wake-up costs are not shared between commands, so
 *   the figure is an upper bound). Each /broadcast is one XADD plus one member count (PUBLISH and answers), read by both replicas.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import * as hdr from 'hdr-histogram-js';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startRedis } from '../harness/services.ts';
import { SERVICE_KEY, hsToken } from '../harness/tokens.ts';
import { positive } from './env.ts';

const CLIENTS = positive('BENCH_CLIENTS', 200);
const RATE = positive('BENCH_RATE', 20);
const SECONDS = positive('BENCH_SECONDS', 10);
const TENANT = 'bench';
const ROOM = 'field:hop';
const SIGNED_OFFSET_US = 1_000_000;

/** Pins every thread of a process to a core; false when taskset is missing or the machine has one core. */
function pin(pid: number | undefined, core: number): boolean {
  if (pid === undefined) return false;
  try {
    execFileSync('taskset', ['-a', '-cp', String(core), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** receipts[side][seq]: receipt times (performance.now(), ms) of that message on that side's clients. */
type Receipts = Map<number, number[]>;

async function subscribers(gateway: GatewayProcess, side: string, receipts: Receipts): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < CLIENTS; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, CLIENTS - i) }, async (_, j) => {
      const token = await hsToken({ sub: `${side}-${i + j}`, tenant: TENANT });
      const ws = new WebSocket(gateway.wsUrl({ tenant_id: TENANT }), { headers: { authorization: `Bearer ${token}` } });
      await new Promise<void>((resolve, reject) => {
        ws.on('message', (data) => {
          const now = performance.now();
          const message = JSON.parse(data.toString()) as { type?: string; data?: { seq?: number } };
          if (message.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', topics: [ROOM] }));
          else if (message.type === 'subscribed') resolve();
          else if (message.type === 'event' && typeof message.data?.seq === 'number') {
            const list = receipts.get(message.data.seq);
            if (list) list.push(now);
            else receipts.set(message.data.seq, [now]);
          }
        });
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      });
      return ws;
    }));
    sockets.push(...batch);
  }
  return sockets;
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  const redisService = await startRedis();
  const env = { REDIS_URL: redisService.url, RECOVERY_WINDOW_SECONDS: '60', LOG_LEVEL: 'warn', MAX_CONNECTIONS_PER_IP: '100000' };
  const a = await startGateway(env);
  const b = await startGateway(env);
  const pinned = pin(redisService.current().child.pid, 0) && pin(a.process.child.pid, 1) && pin(b.process.child.pid, 1);
  const redis = new Redis(redisService.url);
  const receipts = { a: new Map() as Receipts, b: new Map() as Receipts };
  const sockets = [...(await subscribers(a, 'a', receipts.a)), ...(await subscribers(b, 'b', receipts.b))];
  try {
    await sleep(1000);
    const idleStart = await redisCpuSeconds(redis);
    await sleep(SECONDS * 1000);
    const idleCpu = (await redisCpuSeconds(redis)) - idleStart;

    const total = RATE * SECONDS;
    const sentAt = new Map<number, number>();
    const answers: Promise<number>[] = [];
    const cpuStart = await redisCpuSeconds(redis);
    const t0 = performance.now();
    for (let seq = 0; seq < total; seq++) {
      const due = t0 + (seq * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sentAt.set(seq, performance.now());
      answers.push(fetch(`${a.httpUrl}/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SERVICE_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_id: TENANT, field_id: 'hop', message: { event_type: 'field.updated', seq, sent_at: Date.now() } }),
      }).then(async (res) => {
        await res.text();
        return res.status;
      }));
    }
    const statuses = await Promise.all(answers);
    // Let the last deliveries land, then read the CPU of exactly the publishing phase's work.
    const expected = total * CLIENTS;
    const deadline = performance.now() + 10_000;
    const count = (side: Receipts) => [...side.values()].reduce((sum, list) => sum + list.length, 0);
    while (performance.now() < deadline && (count(receipts.a) < expected || count(receipts.b) < expected)) await sleep(50);
    const elapsed = (performance.now() - t0) / 1000;
    const busyCpu = (await redisCpuSeconds(redis)) - cpuStart;

    const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const hop = histogram();
    const hopOfMedians = histogram();
    const endToEnd = { a: histogram(), b: histogram() };
    let negative = 0;
    // HdrHistogram holds positive values only: a hop (which B can win) is recorded shifted by one second.
    const signed = (deltaMs: number) => Math.max(1, Math.round(deltaMs * 1000) + SIGNED_OFFSET_US);
    for (let seq = 0; seq < total; seq++) {
      const onA = receipts.a.get(seq) ?? [];
      const onB = receipts.b.get(seq) ?? [];
      for (const t of onA) endToEnd.a.recordValue(Math.max(1, Math.round((t - sentAt.get(seq)!) * 1000)));
      for (const t of onB) endToEnd.b.recordValue(Math.max(1, Math.round((t - sentAt.get(seq)!) * 1000)));
      if (onA.length === 0) continue;
      const reference = median(onA);
      if (onB.length > 0) hopOfMedians.recordValue(signed(median(onB) - reference));
      for (const t of onB) {
        if (t < reference) negative += 1;
        hop.recordValue(signed(t - reference));
      }
    }
    const ms = (h: hdr.Histogram, p: number) => (h.getValueAtPercentile(p) / 1000).toFixed(2);
    const signedMs = (h: hdr.Histogram, p: number) => ((h.getValueAtPercentile(p) - SIGNED_OFFSET_US) / 1000).toFixed(2);
    const lost = (side: Receipts) => expected - count(side);
    const extraCpu = Math.max(0, busyCpu - idleCpu * (elapsed / SECONDS));
    const perThousand = (extraCpu / total) * 1000;

    console.log(`fleet-hop: Redis + 2 gateways, ${CLIENTS} raw /ws subscribers per replica in one room, ${RATE} publishes/s for ${SECONDS} s to A (open loop)`);
    console.log(`pinning:   ${pinned ? 'Redis on core 0, gateways A and B on core 1 (taskset); clients and publisher float' : 'none (taskset missing or failed)'}`);
    console.log(`publishes: ${total} sent, ${statuses.filter((s) => s === 200).length} answered 200`);
    console.log(`hop (B client receipt - median A receipt, same message): p50 ${signedMs(hop, 50)} ms, p99 ${signedMs(hop, 99)} ms, max ${signedMs(hop, 100)} ms (${hop.totalCount} samples, ${negative} where B was first)`);
    console.log(`hop per message (median B receipt - median A receipt): p50 ${signedMs(hopOfMedians, 50)} ms, p99 ${signedMs(hopOfMedians, 99)} ms (${hopOfMedians.totalCount} messages)`);
    console.log(`end to end (POST sent -> receipt): A p50 ${ms(endToEnd.a, 50)} ms p99 ${ms(endToEnd.a, 99)} ms; B p50 ${ms(endToEnd.b, 50)} ms p99 ${ms(endToEnd.b, 99)} ms`);
    console.log(`loss:      A ${lost(receipts.a)} of ${expected}, B ${lost(receipts.b)} of ${expected} deliveries`);
    console.log(`redis cpu: ${busyCpu.toFixed(3)} s while publishing (${elapsed.toFixed(1)} s), ${idleCpu.toFixed(3)} s idle over ${SECONDS} s`);
    console.log(`redis cpu per 1,000 broadcasts/s: ${(perThousand * 100).toFixed(1)}% of a core (${(extraCpu * 1e6 / total).toFixed(0)} µs per broadcast, two replicas reading)`);
  } finally {
    for (const ws of sockets) ws.terminate();
    redis.disconnect();
    await Promise.all([a.stop(), b.stop()]);
    await redisService.stop();
  }
}

await main();
