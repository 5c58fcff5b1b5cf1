/**
 * The five workloads, each run against every target that supports it, each target started fresh.
 * Sizes come from `Plan` (run.ts: full or smoke). Every loop is bounded in count and time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { histogram, summarise, type LatencySummary } from './latency.ts';
import { LoadClient, openMany } from './load-client.ts';
import { runPhase, snapshot, cpuBetween, type PhaseResult } from './measure.ts';
import { rssKb, sampleLag } from './system.ts';
import { startTarget, supports, type Target, type TargetName, type TargetOptions } from './targets.ts';

export interface Plan {
  readonly targets: readonly TargetName[];
  readonly concurrency: number;
  readonly idle: { readonly connections: number; readonly settleMs: number };
  /** `cpuRounds`: how many times the step the CPU target is judged on (HTTP, largest room, highest rate) runs; its row is the median. */
  readonly fanout: { readonly sizes: readonly number[]; readonly rates: readonly number[]; readonly seconds: number; readonly cpuRounds: number };
  readonly cross: { readonly subscribers: number; readonly rates: readonly number[]; readonly seconds: number; readonly p99LimitMs: number; readonly minDelivery: number };
  readonly storm: { readonly clients: number; readonly rate: number; readonly seconds: number; readonly dropAtSeconds: number; readonly backWithinMs: number };
  readonly rooms: { readonly connections: number; readonly groupSize: number; readonly rate: number; readonly warmUpSeconds: number; readonly seconds: number; readonly rounds: number };
}

export type Log = (line: string) => void;

const round = (value: number, digits = 1) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : NaN);

/** Connection-open deadline: generous for the size, bounded. */
const openDeadline = (count: number) => Math.min(300_000, 30_000 + count * 20);

async function withTarget<T>(name: TargetName, options: TargetOptions, body: (target: Target) => Promise<T>): Promise<T> {
  const target = await startTarget(name, options);
  try {
    return await body(target);
  } finally {
    await target.stop();
  }
}

/** Opens `count` subscribed clients; `setup(i)` says which replica and which group rooms. */
async function openClients(
  target: Target,
  count: number,
  concurrency: number,
  setup: (i: number) => { replica: number; groups: readonly string[]; group?: number },
): Promise<{ clients: LoadClient[]; opened: Awaited<ReturnType<typeof openMany>> }> {
  const plans = Array.from({ length: count }, (_, i) => setup(i));
  const clients = plans.map((p, i) => new LoadClient(i, target.protocol, p.group ?? 0));
  const tokens = await Promise.all(clients.map((c) => target.token(`u${c.index}`)));
  const opened = await openMany(clients, (c) => ({
    endpoint: target.endpoint(plans[c.index]!.replica),
    token: tokens[c.index]!,
    topics: target.topics(`u${c.index}`, plans[c.index]!.groups),
  }), concurrency, openDeadline(count));
  if (opened.failures > 0) throw new Error(`${target.name}: ${opened.failures} of ${count} clients did not connect (${opened.firstError})`);
  return { clients, opened };
}

function closeAll(clients: readonly LoadClient[]): void {
  for (const client of clients) client.close();
}

function phaseRow(phase: PhaseResult) {
  return {
    rate: phase.rate,
    published: phase.published,
    publishErrors: phase.publishErrors,
    ...(phase.firstPublishError ? { firstPublishError: phase.firstPublishError } : {}),
    expected: phase.expected,
    delivered: phase.delivered,
    duplicates: phase.duplicates,
    loss: phase.loss,
    latency: phase.latency,
    scheduleLagMaxMs: round(phase.scheduleLagMaxMs),
    serverCpuUsPerDelivery: round(phase.serverCpuUsPerDelivery, 2),
    serverCpuCorePct: round((100 * phase.cpu.serverSeconds.reduce((a, b) => a + b, 0)) / phase.cpu.seconds),
    generatorCorePct: round(phase.cpu.generatorCorePct),
    generatorMachinePct: round(phase.cpu.generatorMachinePct),
    // What receiving one message cost the generator, to hold against what delivering it cost the server.
    generatorCpuUsPerReceipt: round((phase.cpu.generatorCorePct / 100) * phase.cpu.seconds * 1e6 / Math.max(1, phase.delivered), 2),
    ...(phase.cpu.redisCorePct !== undefined ? { redisCorePct: round(phase.cpu.redisCorePct) } : {}),
    serverRssMb: phase.cpu.rssMb.servers.map((mb) => round(mb)),
    generatorRssMb: round(phase.cpu.rssMb.generator),
    ...(phase.cpu.rssMb.redis !== undefined ? { redisRssMb: round(phase.cpu.rssMb.redis) } : {}),
    // The generator near a full core measures itself as much as the target.
    generatorBound: phase.cpu.generatorCorePct > 90,
  };
}
export type PhaseRow = ReturnType<typeof phaseRow>;

/**
 * Of several runs of one step, the run with the median CPU per delivery, carrying every run's figure in run order,
 * the worst loss and the most publish errors: a few seconds of this machine's CPU per delivery move by 10 to 30 %
 * from one run to the next.
 */
function medianRun<R extends PhaseRow>(runs: readonly R[]): R & { roundsCpuUsPerDelivery: number[] } {
  const median = [...runs].sort((a, b) => a.serverCpuUsPerDelivery - b.serverCpuUsPerDelivery)[Math.floor((runs.length - 1) / 2)]!;
  return {
    ...median,
    roundsCpuUsPerDelivery: runs.map((run) => run.serverCpuUsPerDelivery),
    loss: Math.max(...runs.map((run) => run.loss)),
    publishErrors: Math.max(...runs.map((run) => run.publishErrors)),
  };
}

// --- (1) idle capacity -------------------------------------------------------------------------------------

export interface IdleRow {
  readonly target: TargetName;
  readonly connections: number;
  readonly rssBeforeMb: number;
  readonly rssAfterMb: number;
  readonly rssKbPerConnection: number;
  readonly connectsPerSecond: number;
  readonly connect: LatencySummary;
  readonly eventLoopLagMaxMs: number;
  readonly eventLoopLagMeanMs: number;
  readonly generatorCorePct: number;
}

export async function idleCapacity(plan: Plan, log: Log): Promise<IdleRow[]> {
  const rows: IdleRow[] = [];
  for (const name of plan.targets.filter((t) => supports(t, { idle: true }))) {
    rows.push(await withTarget(name, {}, async (target) => {
      const pid = target.servers[0]!.pid;
      // Warm-up: the first handshakes compile code paths; their cost is not per connection.
      const warm = await openClients(target, Math.min(100, plan.idle.connections), plan.concurrency, () => ({ replica: 0, groups: [] }));
      closeAll(warm.clients);
      await sleep(plan.idle.settleMs);
      const rssBefore = rssKb(pid);
      const lag = sampleLag(target.servers[0]!.httpUrl);
      const before = await snapshot(target);
      const { clients, opened } = await openClients(target, plan.idle.connections, plan.concurrency, () => ({ replica: 0, groups: [] }));
      const after = await snapshot(target);
      const lagStats = await lag.stop();
      await sleep(plan.idle.settleMs);
      const rssAfter = rssKb(pid);
      const h = histogram();
      for (const us of opened.connectUs) h.recordValue(Math.max(1, us));
      closeAll(clients);
      const row: IdleRow = {
        target: name,
        connections: plan.idle.connections,
        rssBeforeMb: round(rssBefore / 1024),
        rssAfterMb: round(rssAfter / 1024),
        rssKbPerConnection: round((rssAfter - rssBefore) / plan.idle.connections, 2),
        connectsPerSecond: round(plan.idle.connections / opened.seconds, 0),
        connect: summarise(h),
        eventLoopLagMaxMs: round(lagStats.maxMs, 2),
        eventLoopLagMeanMs: round(lagStats.meanMs, 2),
        generatorCorePct: round(cpuBetween(before, after).generatorCorePct),
      };
      log(`idle ${name}: ${row.rssKbPerConnection} KB/conn, ${row.connectsPerSecond} conn/s, connect p99 ${row.connect.p99Ms} ms, lag max ${row.eventLoopLagMaxMs} ms`);
      return row;
    }));
  }
  return rows;
}

// --- (2) fan-out latency -----------------------------------------------------------------------------------

export interface FanoutRow extends PhaseRow {
  readonly target: TargetName;
  readonly source: 'http' | 'nats';
  readonly subscribers: number;
  /** The step the CPU target is judged on: each run's CPU per delivery; the row's other figures are the median run's. */
  readonly roundsCpuUsPerDelivery?: number[];
}

export async function fanout(plan: Plan, log: Log): Promise<FanoutRow[]> {
  const rows: FanoutRow[] = [];
  const sizes = [...plan.fanout.sizes].sort((a, b) => a - b);
  const largest = sizes.at(-1)!;
  const topRate = Math.max(...plan.fanout.rates);
  for (const name of plan.targets.filter((t) => supports(t, {}))) {
    const nats = supports(name, { nats: true }) && name === 'ours-ws';
    await withTarget(name, { nats }, async (target) => {
      // One set of clients: client i is in room `fan{size}` for every size above i.
      const { clients } = await openClients(target, largest, plan.concurrency, (i) => ({ replica: 0, groups: sizes.filter((s) => i < s).map((s) => `fan${s}`) }));
      try {
        for (const size of sizes) {
          for (const source of nats ? (['http', 'nats'] as const) : (['http'] as const)) {
            for (const rate of plan.fanout.rates) {
              const runs = size === largest && source === 'http' && rate === topRate ? plan.fanout.cpuRounds : 1;
              const results: FanoutRow[] = [];
              for (let run = 0; run < runs; run++) {
                const phase = await runPhase({
                  target,
                  clients,
                  rate,
                  seconds: plan.fanout.seconds,
                  publish: (_seq, message) => ({
                    recipients: size,
                    sent: source === 'http' ? target.publish(0, { group: `fan${size}` }, message) : target.publishNats!({ group: `fan${size}` }, message),
                  }),
                });
                const row: FanoutRow = { target: name, source, subscribers: size, ...phaseRow(phase) };
                results.push(row);
                log(`fanout ${name} ${source} ${size} subs @${rate}/s${runs > 1 ? ` run ${run + 1}/${runs}` : ''}: p50 ${row.latency[0]!.p50Ms} p99 ${row.latency[0]!.p99Ms} p99.9 ${row.latency[0]!.p999Ms} ms, loss ${(row.loss * 100).toFixed(3)} %, ${row.serverCpuUsPerDelivery} µs CPU/delivery, generator ${row.generatorCorePct} %`);
              }
              rows.push(runs > 1 ? medianRun(results) : results[0]!);
            }
          }
        }
      } finally {
        closeAll(clients);
      }
    });
  }
  return rows;
}

// --- (3) cross-replica -------------------------------------------------------------------------------------

export interface CrossRow {
  readonly target: TargetName;
  readonly subscribers: number;
  readonly steps: Array<PhaseRow & { hopAddedP50Ms: number; hopAddedP99Ms: number; passed: boolean }>;
  /** The highest rate that kept p99 and delivery within the limits (0 when even the first did not). */
  readonly kneeRate: number;
  readonly firstFailingRate?: number;
  readonly failedBecause?: string;
}

export async function crossReplica(plan: Plan, log: Log): Promise<CrossRow[]> {
  const rows: CrossRow[] = [];
  for (const name of plan.targets.filter((t) => supports(t, { redis: true }))) {
    rows.push(await withTarget(name, { redis: true, replicas: 2 }, async (target) => {
      // Even clients on the replica that gets the publishes (group 0, local), odd ones on the other (group 1, hop).
      const { clients } = await openClients(target, plan.cross.subscribers, plan.concurrency, (i) => ({ replica: i % 2, groups: ['cross'], group: i % 2 }));
      const steps: CrossRow['steps'] = [];
      let kneeRate = 0;
      let firstFailingRate: number | undefined;
      let failedBecause: string | undefined;
      try {
        for (const rate of plan.cross.rates) {
          const phase = await runPhase({
            target,
            clients,
            rate,
            seconds: plan.cross.seconds,
            groups: 2,
            publish: (_seq, message) => ({ recipients: clients.length, sent: target.publish(0, { group: 'cross' }, message) }),
          });
          const row = phaseRow(phase);
          const [local, hop] = row.latency as [LatencySummary, LatencySummary];
          const all = summarise((() => {
            const h = histogram();
            h.add(phase.receipts.histograms[0]!);
            h.add(phase.receipts.histograms[1]!);
            return h;
          })());
          const delivery = 1 - row.loss;
          const passed = all.p99Ms <= plan.cross.p99LimitMs && delivery >= plan.cross.minDelivery;
          steps.push({ ...row, latency: [local, hop, all], hopAddedP50Ms: round(hop.p50Ms - local.p50Ms, 2), hopAddedP99Ms: round(hop.p99Ms - local.p99Ms, 2), passed });
          log(`cross ${name} @${rate}/s: local p50/p99 ${local.p50Ms}/${local.p99Ms} ms, hop ${hop.p50Ms}/${hop.p99Ms} ms, delivery ${(delivery * 100).toFixed(3)} %, Redis ${row.redisCorePct} % core${passed ? '' : ' (past the knee)'}`);
          if (!passed) {
            firstFailingRate ??= rate;
            failedBecause ??= all.p99Ms > plan.cross.p99LimitMs ? `p99 ${all.p99Ms} ms > ${plan.cross.p99LimitMs} ms` : `delivery ${(delivery * 100).toFixed(3)} % < ${plan.cross.minDelivery * 100} %`;
          } else if (firstFailingRate === undefined) kneeRate = rate;
          // Stop past the knee, but not before 10 msg/s: the issue's target is measured there.
          if (firstFailingRate !== undefined && rate >= 10) break;
        }
      } finally {
        closeAll(clients);
      }
      return {
        target: name,
        subscribers: plan.cross.subscribers,
        steps,
        kneeRate,
        ...(firstFailingRate !== undefined ? { firstFailingRate } : {}),
        ...(failedBecause ? { failedBecause } : {}),
      };
    }));
  }
  return rows;
}

// --- (4) reconnect storm -----------------------------------------------------------------------------------

export interface StormRow {
  readonly target: TargetName;
  readonly clients: number;
  readonly dropped: number;
  readonly recovered: number;
  readonly reconnectFailures: number;
  /** From the drop until the last dropped client was connected again (subscribed or recovered), ms. */
  readonly timeToRecoverMs: number;
  /** Reconnect handshakes under the storm. */
  readonly reconnect: LatencySummary;
  readonly published: number;
  /** Messages the dropped clients never got (stayers in brackets: they should miss nothing). */
  readonly missedByDropped: number;
  /** Of those, published while the client's resuming handshake was under way (a recovery race shows here). */
  readonly missedDuringHandshake: number;
  readonly missedByStayers: number;
  readonly duplicates: number;
  readonly loss: number;
  readonly latency: LatencySummary;
  readonly recovery: string;
}

export async function reconnectStorm(plan: Plan, log: Log): Promise<StormRow[]> {
  const rows: StormRow[] = [];
  for (const name of plan.targets.filter((t) => supports(t, { resume: true }))) {
    // Ours and socket.io with the Redis Streams adapter (one replica: the storm, not the hop); plain ws has neither.
    const fleet = supports(name, { redis: true });
    const recovery = name === 'ws' ? 'none (plain ws has no recovery: reconnect and re-subscribe)' : fleet ? 'connection-state recovery, Redis Streams adapter' : 'n/a';
    rows.push(await withTarget(name, fleet ? { redis: true, replicas: 1 } : {}, async (target) => {
      const { clients } = await openClients(target, plan.storm.clients, plan.concurrency, () => ({ replica: 0, groups: ['storm'] }));
      for (const client of clients) client.trackOffsets = true;
      const tokens = await Promise.all(clients.map((c) => target.token(`u${c.index}`)));
      const dropped = clients.filter((c) => c.index % 2 === 0);
      const reconnectHist = histogram();
      const progress = { lastSeq: -1 };
      /** Per dropped client: the seqs published while its resuming handshake was under way. */
      const handshakes = new Map<number, { from: number; to: number }>();
      let recovered = 0;
      let failures = 0;
      let dropAt = 0;
      let lastBack = 0;
      const returns: Promise<void>[] = [];
      const storm = () => {
        dropAt = performance.now();
        for (const client of dropped) client.drop();
        for (const client of dropped) {
          const delay = Math.random() * plan.storm.backWithinMs;
          returns.push(sleep(delay).then(async () => {
            const from = progress.lastSeq;
            try {
              const opened = await client.connect({ endpoint: target.endpoint(0), token: tokens[client.index]!, topics: target.topics(`u${client.index}`, ['storm']), resume: true });
              reconnectHist.recordValue(Math.max(1, opened.connectUs));
              if (opened.recovered) recovered += 1;
              lastBack = Math.max(lastBack, performance.now());
              handshakes.set(client.index, { from, to: progress.lastSeq });
            } catch {
              failures += 1;
            }
          }));
        }
      };
      try {
        const phase = await runPhase({
          target,
          clients,
          rate: plan.storm.rate,
          seconds: plan.storm.seconds,
          progress,
          events: [{ atSeconds: plan.storm.dropAtSeconds, run: storm }],
          beforeDrain: () => Promise.all(returns).then(() => undefined),
          publish: (_seq, message) => ({ recipients: clients.length, sent: target.publish(0, { group: 'storm' }, message) }),
        });
        let missedByDropped = 0;
        let missedByStayers = 0;
        let missedDuringHandshake = 0;
        for (const client of clients) {
          const missed = phase.receipts.missedBy(client.index);
          if (client.index % 2 !== 0) {
            missedByStayers += missed.length;
            continue;
          }
          missedByDropped += missed.length;
          const window = handshakes.get(client.index);
          // Published after the handshake began and at most one message after it completed.
          if (window) missedDuringHandshake += missed.filter((seq) => seq > window.from && seq <= window.to + 1).length;
        }
        const row: StormRow = {
          target: name,
          clients: clients.length,
          dropped: dropped.length,
          recovered,
          reconnectFailures: failures,
          timeToRecoverMs: round(lastBack - dropAt, 0),
          reconnect: summarise(reconnectHist),
          published: phase.published,
          missedByDropped,
          missedDuringHandshake,
          missedByStayers,
          duplicates: phase.duplicates,
          loss: phase.loss,
          latency: phase.latency[0]!,
          recovery,
        };
        log(`storm ${name}: ${recovered}/${dropped.length} recovered, back within ${row.timeToRecoverMs} ms, reconnect p99 ${row.reconnect.p99Ms} ms, missed ${missedByDropped} (dropped; ${missedDuringHandshake} published during their handshake) + ${missedByStayers} (stayers), ${row.duplicates} duplicates`);
        return row;
      } finally {
        closeAll(clients);
      }
    }));
  }
  return rows;
}

// --- (5) many rooms ----------------------------------------------------------------------------------------

/** The many-rooms workload's choice of room, a fixed pseudo-random sequence (also instructions-per-publish.ts's). */
export function roomsSequence(): (n: number) => number {
  let state = 12345;
  return (n) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
}

export interface RoomsRow extends PhaseRow {
  readonly target: TargetName;
  readonly connections: number;
  readonly groupRooms: number;
  /** Each round's CPU per delivery, in the order run; the row's other figures are the median round's. */
  readonly roundsCpuUsPerDelivery: number[];
  /** The median round's warm-up, not counted in the row's other figures; absent in runs made before it existed. */
  readonly warmUp?: RoomsWarmUp;
}

/** A round's warm-up (on the row: the median round's, with the worst round's loss and publish errors). */
export interface RoomsWarmUp {
  readonly seconds: number;
  readonly published: number;
  readonly delivered: number;
  readonly publishErrors: number;
  readonly loss: number;
  readonly p99Ms: number;
  readonly serverCpuUsPerDelivery: number;
}

/** A round as run: its warm-up always measured. */
type RoomsRound = RoomsRow & { readonly warmUp: RoomsWarmUp };

/**
 * Rounds interleave the targets, each round starting with the next one (a, b, c; b, c, a; ...), so that a slow
 * spell of the machine lands on every target and in every position; each target's row is its median round
 * (medianRun). Each round starts its target afresh and publishes for `warmUpSeconds` before the counted seconds:
 * the counted figure is a server past the bulk of its JIT compilation (V8 compiles most of the publish path in
 * the first seconds, and keeps at it for some seconds more), not a cold one. The warm-up is measured too and kept
 * on the row. The generator, a process that lives through the run, is warmed by the first round's warm-up.
 */
export async function manyRooms(plan: Plan, log: Log): Promise<RoomsRow[]> {
  const { connections, groupSize, rounds } = plan.rooms;
  const groups = Math.ceil(connections / groupSize);
  const names = plan.targets.filter((t) => supports(t, {}));
  const byTarget = new Map<TargetName, RoomsRound[]>(names.map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
      const row = await withTarget(name, {}, async (target) => {
        const { clients } = await openClients(target, connections, plan.concurrency, (i) => ({ replica: 0, groups: [`g${Math.floor(i / groupSize)}`] }));
        try {
          const run = (seconds: number) => {
            // The same sequence for every target and round: even messages to a group room, odd to a person.
            const random = roomsSequence();
            return runPhase({
              target,
              clients,
              rate: plan.rooms.rate,
              seconds,
              publish: (seq, message) => {
                if (seq % 2 === 0) {
                  const g = random(groups);
                  const members = Math.min(groupSize, connections - g * groupSize);
                  return { recipients: members, sent: target.publish(0, { group: `g${g}` }, message) };
                }
                return { recipients: 1, sent: target.publish(0, { user: `u${random(connections)}` }, message) };
              },
            });
          };
          const warmUp = await run(plan.rooms.warmUpSeconds);
          const phase = await run(plan.rooms.seconds);
          const row: RoomsRound = {
            target: name,
            connections,
            groupRooms: groups,
            roundsCpuUsPerDelivery: [],
            warmUp: {
              seconds: plan.rooms.warmUpSeconds,
              published: warmUp.published,
              delivered: warmUp.delivered,
              publishErrors: warmUp.publishErrors,
              loss: warmUp.loss,
              p99Ms: warmUp.latency[0]!.p99Ms,
              serverCpuUsPerDelivery: round(warmUp.serverCpuUsPerDelivery, 2),
            },
            ...phaseRow(phase),
          };
          log(`rooms ${name}${rounds > 1 ? ` round ${r + 1}/${rounds}` : ''}: p50 ${row.latency[0]!.p50Ms} p99 ${row.latency[0]!.p99Ms} ms, loss ${(row.loss * 100).toFixed(3)} %, ${row.serverCpuUsPerDelivery} µs CPU/delivery (warm-up ${row.warmUp.serverCpuUsPerDelivery}, loss ${(row.warmUp.loss * 100).toFixed(3)} %), server ${row.serverCpuCorePct} % core, generator ${row.generatorCorePct} %`);
          return row;
        } finally {
          closeAll(clients);
        }
      });
      byTarget.get(name)!.push(row);
    }
  }
  return names.map((name) => {
    const runs = byTarget.get(name)!;
    const row = medianRun(runs);
    const warmUps = runs.map((run) => run.warmUp);
    return { ...row, warmUp: { ...row.warmUp, loss: Math.max(...warmUps.map((w) => w.loss)), publishErrors: Math.max(...warmUps.map((w) => w.publishErrors)) } };
  });
}
