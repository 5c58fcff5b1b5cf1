/**
 * Measuring one publishing phase: open-loop publishing at a fixed rate, every receipt checked against what
 * was published (loss and duplicates exactly, per client and message), latency from the send time in each
 * message, and the CPU every process spent meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { histogram, nowUs, summarise, type Histogram, type LatencySummary } from './latency.ts';
import type { LoadClient, MarkerSink } from './load-client.ts';
import { cpuSeconds, redisCpuSeconds, rssKb, selfCpuSeconds, CORES } from './system.ts';
import type { Target } from './targets.ts';

/** Receipts of one phase: seq numbers [base, base + count). */
export class Receipts implements MarkerSink {
  readonly histograms: Histogram[];
  readonly base: number;
  readonly count: number;
  unique = 0;
  duplicates = 0;
  /** Markers of another phase (late stragglers) or unknown clients. */
  strays = 0;
  private readonly seen: Uint8Array;
  private readonly clients: number;

  constructor(clients: number, base: number, count: number, groups = 1) {
    this.clients = clients;
    this.base = base;
    this.count = count;
    this.seen = new Uint8Array(clients * count);
    this.histograms = Array.from({ length: groups }, () => histogram());
  }

  marker(client: LoadClient, seq: number, sentUs: number, receivedUs: number): void {
    const offset = seq - this.base;
    if (offset < 0 || offset >= this.count || client.index >= this.clients) {
      this.strays += 1;
      return;
    }
    const at = client.index * this.count + offset;
    if (this.seen[at] === 1) {
      this.duplicates += 1;
      return;
    }
    this.seen[at] = 1;
    this.unique += 1;
    this.histograms[client.group]!.recordValue(Math.max(1, receivedUs - sentUs));
  }

  /** The seq numbers a client never got, among those it should have (`member(seq)`). */
  missedBy(clientIndex: number, member: (seq: number) => boolean = () => true): number[] {
    const missed: number[] = [];
    for (let i = 0; i < this.count; i++) if (member(this.base + i) && this.seen[clientIndex * this.count + i] === 0) missed.push(this.base + i);
    return missed;
  }
}

export interface CpuSnapshot {
  readonly wall: number;
  readonly servers: number[];
  readonly generator: number;
  readonly redis?: number;
  /** VmRSS, MB: each server, the generator, Redis. */
  readonly rssMb: { servers: number[]; generator: number; redis?: number };
}

export async function snapshot(target: Target): Promise<CpuSnapshot> {
  return {
    wall: performance.now() / 1000,
    servers: target.servers.map((s) => cpuSeconds(s.pid)),
    generator: selfCpuSeconds(),
    ...(target.redis ? { redis: await redisCpuSeconds(target.redis.port).catch(() => NaN) } : {}),
    rssMb: {
      servers: target.servers.map((s) => rssKb(s.pid) / 1024),
      generator: process.memoryUsage.rss() / 2 ** 20,
      ...(target.redis ? { redis: rssKb(target.redis.current().child.pid!) / 1024 } : {}),
    },
  };
}

export interface CpuUse {
  readonly seconds: number;
  /** Each server's CPU, seconds. */
  readonly serverSeconds: number[];
  /** The generator's share of one core and of the whole machine, %. */
  readonly generatorCorePct: number;
  readonly generatorMachinePct: number;
  /** Redis's CPU (INFO cpu), % of one core. */
  readonly redisCorePct?: number;
  /** VmRSS at the end, MB. */
  readonly rssMb: CpuSnapshot['rssMb'];
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds = b.wall - a.wall;
  const generator = b.generator - a.generator;
  return {
    seconds,
    serverSeconds: b.servers.map((s, i) => s - a.servers[i]!),
    generatorCorePct: (100 * generator) / seconds,
    generatorMachinePct: (100 * generator) / seconds / CORES,
    ...(a.redis !== undefined && b.redis !== undefined ? { redisCorePct: (100 * (b.redis - a.redis)) / seconds } : {}),
    rssMb: b.rssMb,
  };
}

let nextSeq = 0;
/** Reserves `count` sequence numbers: every phase of a run has its own, so stragglers are recognised. */
export function reserveSeqs(count: number): number {
  const base = nextSeq;
  nextSeq += count;
  return base;
}

export interface PhaseOptions {
  readonly target: Target;
  readonly clients: readonly LoadClient[];
  readonly rate: number;
  readonly seconds: number;
  /** Latency groups (e.g. local replica and the other one). */
  readonly groups?: number;
  /** Publishes message `seq`; returns how many clients should receive it. */
  publish(seq: number, message: Record<string, unknown>): { recipients: number; sent: Promise<void> | void };
  /** Called at the given offsets (s) into the phase: for the reconnect storm. */
  readonly events?: ReadonlyArray<{ atSeconds: number; run(): void }>;
  /** Longest wait for stragglers after the last publish. */
  readonly drainMs?: number;
  /** Awaited after the last publish, before the drain (e.g. clients still reconnecting). */
  readonly beforeDrain?: () => Promise<void>;
  /** Updated with the last seq published so far (for events that need to know where the stream is). */
  readonly progress?: { lastSeq: number };
}

export interface PhaseResult {
  readonly rate: number;
  readonly published: number;
  readonly publishErrors: number;
  readonly firstPublishError?: string;
  readonly expected: number;
  readonly delivered: number;
  readonly duplicates: number;
  /** 1 - delivered / expected: never received, or not within the drain (at most drainMs after the last publish). */
  readonly loss: number;
  readonly latency: LatencySummary[];
  /** How late the open loop sent its messages at worst (generator saturation shows here first), ms. */
  readonly scheduleLagMaxMs: number;
  readonly cpu: CpuUse;
  /** Gateway (all replicas) CPU per delivered message, µs. */
  readonly serverCpuUsPerDelivery: number;
  readonly receipts: Receipts;
}

const PAD = 'x'.repeat(96);

/**
 * Waits until the servers are quiet (under 10 % of a core over 500 ms), at most `maxMs`: a step that overloaded
 * a server leaves frames queued, and the next step must not pay for them.
 */
export async function quiet(target: Target, maxMs = 30_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = target.servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);
    await sleep(500);
    const after = target.servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);
    if (after - before < 0.05) return;
  }
}

export async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  await quiet(options.target);
  const count = Math.max(1, Math.round(options.rate * options.seconds));
  const base = reserveSeqs(count);
  const receipts = new Receipts(options.clients.length, base, count, options.groups ?? 1);
  for (const client of options.clients) client.sink = receipts;
  const pending = new Set<Promise<void>>();
  let expected = 0;
  let errors = 0;
  let firstError: string | undefined;
  let scheduleLagMaxMs = 0;
  const events = [...(options.events ?? [])].sort((a, b) => a.atSeconds - b.atSeconds);

  const before = await snapshot(options.target);
  const startMs = performance.now();
  for (let i = 0; i < count; i++) {
    const due = startMs + (i * 1000) / options.rate;
    while (events.length > 0 && events[0]!.atSeconds * 1000 + startMs <= due) events.shift()!.run();
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    scheduleLagMaxMs = Math.max(scheduleLagMaxMs, performance.now() - due);
    const seq = base + i;
    // The marker first: the receivers find it by its bytes, whatever the target wraps around it.
    const { recipients, sent } = options.publish(seq, { bs: seq, bt: nowUs(), text: PAD });
    if (options.progress) options.progress.lastSeq = seq;
    expected += recipients;
    if (sent) {
      const tracked = sent.catch((error: unknown) => {
        errors += 1;
        firstError ??= String(error);
      }).finally(() => pending.delete(tracked));
      pending.add(tracked);
    }
  }
  for (const event of events) event.run();
  await Promise.race([Promise.all(pending), sleep(30_000)]);
  if (options.beforeDrain) await Promise.race([options.beforeDrain(), sleep(60_000)]);

  // Drain: wait while receipts still arrive, at most drainMs.
  const drainDeadline = performance.now() + (options.drainMs ?? 10_000);
  let last = -1;
  let still = 0;
  while (receipts.unique < expected && performance.now() < drainDeadline) {
    await sleep(100);
    still = receipts.unique === last ? still + 1 : 0;
    if (still >= 15) break; // 1.5 s without a single receipt
    last = receipts.unique;
  }
  const after = await snapshot(options.target);
  const cpu = cpuBetween(before, after);
  for (const client of options.clients) client.sink = undefined;
  const serverSeconds = cpu.serverSeconds.reduce((a, b) => a + b, 0);
  return {
    rate: options.rate,
    published: count,
    publishErrors: errors,
    ...(firstError ? { firstPublishError: firstError } : {}),
    expected,
    delivered: receipts.unique,
    duplicates: receipts.duplicates,
    loss: expected === 0 ? NaN : 1 - receipts.unique / expected,
    latency: receipts.histograms.map(summarise),
    scheduleLagMaxMs,
    cpu,
    serverCpuUsPerDelivery: receipts.unique === 0 ? NaN : (serverSeconds * 1e6) / receipts.unique,
    receipts,
  };
}
