/**
 * The benchmark harness: our gateway against its peers (plain socket.io 4.8 with the same Redis Streams
 * adapter, plain `ws`, Centrifugo) in one run on this machine, reported as figures and as ratios.
 *
 *   node test/bench/run.ts            full run (20 to 25 minutes): test/bench/results/{latest.json,results.md,*.svg}
 *   node test/bench/run.ts --smoke    small N, a few seconds per workload, ours + plain ws + socket.io: checks the
 *                                     harness works and its figures are sane (never that they are fast); output in
 *                                     test/bench/results/tmp/smoke/; exits non-zero on failure
 *
 * Options: --workloads=idle,fanout,cross,storm,rooms  --targets=ours-ws,ours-sio,ours-sio-polling,socketio,ws,centrifugo  --out=DIR
 *          --report-only (rewrite results.md and the charts from DIR/latest.json, measuring nothing)
 * Environment: BENCH_IDLE_CONNECTIONS (default 10000, capped by ulimit -n), RTGW_CACHE (Centrifugo's build),
 * CENTRIFUGO_VERSION, BENCH_NODE_OPTIONS (NODE_OPTIONS of every Node server; default the gateway image's, "" for V8's),
 * BENCH_GATEWAY_NODE_OPTIONS (added for our gateways only, e.g. --cpu-prof). Set by run.ts for its parts only:
 * BENCH_CORES (the parent's core count) and BENCH_RUN_STARTED (the parent's start, epoch ms, for the log clock).
 *
 * Workloads (test/bench/lib/workloads.ts): (1) idle capacity, (2) fan-out latency in one room over HTTP and
 * NATS, (3) cross-replica on Redis Streams up to the knee, (4) reconnect storm with resume, (5) many rooms.
 * The load generator is a fresh child of this process for each workload (`--part`): raw `ws` clients speaking
 * each framing by hand (lib/load-client.ts), open-loop publishing with the send time in every message,
 * HdrHistogram latencies. A fresh generator because one process that ran the earlier workloads carried their
 * heap into the next: the storm's reconnect p99 for /ws was 1,373 ms at the end of a full run and 129 ms run
 * alone. With taskset, servers run on core 0 and the generator, Redis and NATS on the last core; the report
 * says how much of the machine the generator took.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../harness/gateway.ts';
import { buildCentrifugo, centrifugoBinary, centrifugoNote } from './lib/centrifugo.ts';
import { framingMatchesStockClient } from './lib/correctness.ts';
import { writeResults, writeResultsJson, type Results } from './lib/report.ts';
import { CORES, PINNING, openFileLimit, pin } from './lib/system.ts';
import { ALL_TARGETS, BENCH_NODE_OPTIONS, TARGET_LABELS, type TargetName } from './lib/targets.ts';
import { crossReplica, fanout, idleCapacity, manyRooms, reconnectStorm, type Plan } from './lib/workloads.ts';

const WORKLOADS = ['idle', 'fanout', 'cross', 'storm', 'rooms'] as const;
type Workload = (typeof WORKLOADS)[number];

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    workloads: { type: 'string' },
    targets: { type: 'string' },
    out: { type: 'string' },
    'report-only': { type: 'boolean', default: false },
    // Internal: this process is the generator of one workload run by a parent run.ts; the parent reads its
    // latest.json, writes the report and runs the checks.
    part: { type: 'boolean', default: false },
  },
});
const smoke = args.smoke === true;
const part = args.part === true;

// JSON has no NaN (a figure not measured): it is written as null and read back as NaN.
const readResults = (dir: string) => JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'), (_k, v: unknown) => (v === null ? NaN : v)) as Results;
// Rewrites results.md and the charts from an existing latest.json (after a change to the report), measuring nothing.
if (args['report-only']) {
  const dir = args.out ?? join(REPO_ROOT, 'test/bench/results', smoke ? 'tmp/smoke' : '');
  const previous = readResults(dir);
  console.log(`rewrote ${writeResults(dir, previous).map((f) => relative(process.cwd(), f)).join(', ')}`);
  process.exit(0);
}

function list<T extends string>(raw: string | undefined, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (raw === undefined) return [...fallback];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`unknown "${item}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

const fdLimit = openFileLimit();
const idleWanted = Number(process.env['BENCH_IDLE_CONNECTIONS'] ?? 10_000);
if (!Number.isInteger(idleWanted) || idleWanted <= 0) throw new Error('BENCH_IDLE_CONNECTIONS must be a positive integer');
// Each side holds one descriptor per connection; keep room for Redis, NATS, HTTP and the warm-up.
const idleConnections = Math.max(100, Math.min(idleWanted, fdLimit - 1000));

const plan: Plan = smoke
  ? {
      targets: list(args.targets, ALL_TARGETS, ['ours-ws', 'ours-sio', 'ours-sio-polling', 'socketio', 'ws']),
      concurrency: 20,
      idle: { connections: 200, settleMs: 500 },
      fanout: { sizes: [100], rates: [10], seconds: 2, cpuRounds: 1 },
      cross: { subscribers: 100, rates: [5, 10], seconds: 2, p99LimitMs: 250, minDelivery: 0.999 },
      storm: { clients: 100, rate: 20, seconds: 4, dropAtSeconds: 1, backWithinMs: 1500 },
      rooms: { connections: 200, groupSize: 10, rate: 100, warmUpSeconds: 1, seconds: 2, rounds: 1 },
    }
  : {
      targets: list(args.targets, ALL_TARGETS, ALL_TARGETS),
      concurrency: 50,
      idle: { connections: idleConnections, settleMs: 2000 },
      fanout: { sizes: [1000, 5000], rates: [1, 10, 50], seconds: 5, cpuRounds: 3 },
      cross: { subscribers: 5000, rates: [1, 2, 5, 10, 25, 50, 100, 200, 400], seconds: 4, p99LimitMs: 250, minDelivery: 0.999 },
      storm: { clients: 2000, rate: 20, seconds: 14, dropAtSeconds: 3, backWithinMs: 5000 },
      rooms: { connections: 2000, groupSize: 10, rate: 1000, warmUpSeconds: 4, seconds: 12, rounds: 5 },
    };
const workloads = list(args.workloads, WORKLOADS, WORKLOADS);
const outDir = args.out ?? join(REPO_ROOT, 'test/bench/results', smoke ? 'tmp/smoke' : '');

// The run's start, epoch ms: a part's is its parent's (BENCH_RUN_STARTED), so one run's log reads as one clock.
const runStartedMs = part && process.env['BENCH_RUN_STARTED'] ? Number(process.env['BENCH_RUN_STARTED']) : Date.now();
const secondsSinceStart = () => (Date.now() - runStartedMs) / 1000;
const log = (line: string) => console.log(`[${secondsSinceStart().toFixed(0).padStart(4)} s] ${line}`);
const startedAt = new Date(runStartedMs).toISOString();
const loadAtStart = loadavg();

// Bounded in time whatever happens: a hung workload fails the run (children are killed on exit by the harness).
const WATCHDOG_MINUTES = smoke ? 6 : 35;
setTimeout(() => {
  console.log(`not ok: the run exceeded ${WATCHDOG_MINUTES} minutes`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}, WATCHDOG_MINUTES * 60_000).unref();

// This process on the generator's core before any child is spawned: the parts (the generators) inherit it.
pin(process.pid, PINNING.generator);

const notes: string[] = [];
if (!PINNING.enabled) notes.push(`Nothing pinned (${CORES} core(s), taskset ${CORES < 2 ? 'not useful' : 'missing'}): servers and generator share the cores.`);
// A part starts right after the workload before it: its load average says nothing about other processes.
if (!part && loadAtStart[0]! > 0.5) notes.push(`The machine was not idle at the start (load average ${loadAtStart[0]!.toFixed(2)}): other processes (e.g. concurrent test runs) competed for the cores, so absolute figures are pessimistic; ratios within this run are the comparable part.`);
notes.push('Gateways run with LOG_LEVEL=warn (the per-publish info line would measure pino); peers log nothing.');
notes.push(BENCH_NODE_OPTIONS
  ? `Every Node server (ours and the Node peers) runs with NODE_OPTIONS="${BENCH_NODE_OPTIONS}", as the gateway image ships (BENCH_NODE_OPTIONS= for V8's defaults, where the young generation grows to tens of MiB during the idle ramp and counts as per-connection RSS).`
  : 'Every Node server runs with V8\'s default heap settings (BENCH_NODE_OPTIONS is empty); the gateway image ships --max-semi-space-size=8.');

if (plan.targets.includes('centrifugo') && !part) {
  await buildCentrifugo(log);
  const why = centrifugoNote();
  if (why) notes.push(why);
  if (!centrifugoBinary()) notes.push('Centrifugo: not measured (see above).');
}
const labels: Partial<Record<TargetName, string>> = { ...TARGET_LABELS };
const cf = centrifugoBinary();
if (cf) labels.centrifugo = cf.label;

if (!part) log(`${smoke ? 'smoke' : 'full'} run: workloads ${workloads.join(', ')}; targets ${plan.targets.join(', ')}; ulimit -n ${fdLimit}; pinning ${PINNING.enabled ? `servers ${PINNING.server}, generator/Redis/NATS ${PINNING.generator}` : 'off'}`);

const results: { -readonly [K in keyof Results]: Results[K] } = {
  meta: {
    startedAt,
    mode: smoke ? 'smoke' : 'full',
    durationSeconds: 0,
    machine: `${CORES} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.version,
    pinning: PINNING.enabled ? `taskset: servers under test on core ${PINNING.server}; generator, Redis and NATS on core ${PINNING.generator}` : 'none',
    loadAverageAtStart: loadAtStart,
    notes,
    labels,
  },
};
const errors: string[] = [];
const runners: Record<Workload, () => Promise<void>> = {
  idle: async () => void (results.idle = await idleCapacity(plan, log)),
  fanout: async () => void (results.fanout = await fanout(plan, log)),
  cross: async () => void (results.cross = await crossReplica(plan, log)),
  storm: async () => void (results.storm = await reconnectStorm(plan, log)),
  rooms: async () => void (results.rooms = await manyRooms(plan, log)),
};
/** Runs one workload in this process (the part's generator). */
async function runHere(workload: Workload): Promise<void> {
  try {
    await runners[workload]();
  } catch (error) {
    const message = `${workload} failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`;
    errors.push(message);
    notes.push(`${workload} did not complete: ${error instanceof Error ? error.message : String(error)}`);
    log(message);
  }
}

/** Runs one workload in a fresh generator (run.ts --part) and takes its rows and notes into these results. */
async function runPart(workload: Workload): Promise<void> {
  const dir = join(outDir, `part-${workload}`);
  rmSync(dir, { recursive: true, force: true });
  // Not through the harness's start(): that SIGKILLs its children on exit, and a part killed so would leave the
  // servers it started running. SIGTERM lets the part's own harness stop them; the IPC channel tells a part
  // that this process died without an exit handler (SIGKILL).
  const child = spawn(process.execPath, [
    ...process.execArgv, process.argv[1]!, '--part', `--workloads=${workload}`, `--targets=${plan.targets.join(',')}`, `--out=${dir}`,
    ...(smoke ? ['--smoke'] : []),
  ], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, BENCH_RUN_STARTED: String(runStartedMs), BENCH_CORES: String(CORES) } });
  const stopPart = () => child.kill('SIGTERM');
  process.once('exit', stopPart);
  const code = await new Promise<number | string>((resolve) => {
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal ?? -1));
    child.once('error', (error) => resolve(String(error)));
  });
  process.off('exit', stopPart);
  let partResults: Results | undefined;
  try {
    partResults = readResults(dir);
  } catch (error) {
    errors.push(`${workload} failed: its generator (exit ${code}) wrote no results: ${String(error)}`);
    notes.push(`${workload} did not complete: its generator exited with ${code}`);
    return;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (partResults[workload]) (results as Record<Workload, unknown>)[workload] = partResults[workload];
  for (const note of partResults.meta.notes) if (!notes.includes(note)) notes.push(note);
  if (code !== 0) errors.push(`${workload} failed: its generator exited with ${code} (its log is above)`);
  // The part pins its servers itself: a part that saw fewer cores would measure servers and generator on one.
  if (partResults.meta.pinning !== results.meta.pinning) errors.push(`${workload} failed: its generator pinned "${partResults.meta.pinning}", not "${results.meta.pinning}"`);
}

// A part whose parent died (even by SIGKILL) exits, and its harness stops the servers it started.
if (part) {
  process.once('disconnect', () => process.exit(1));
  process.channel?.unref();
}

for (const workload of workloads) {
  if (!part) log(`--- ${workload}`);
  await (part ? runHere(workload) : runPart(workload));
}
(results.meta as { durationSeconds: number }).durationSeconds = secondsSinceStart();
if (part) {
  // The parent reads latest.json, then writes the report and runs the checks.
  writeResultsJson(outDir, results);
  process.exit(errors.length > 0 ? 1 : 0);
}
const files = writeResults(outDir, results);
log(`wrote ${files.map((f) => relative(process.cwd(), f)).join(', ')}`);

// --- checks: the harness works and its figures are sane (never that they are fast) ---------------------------
let passed = 0;
let failed = 0;
const check = (name: string, ok: boolean, detail = '') => {
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`not ok: ${name}${detail ? ` (${detail})` : ''}`);
  }
};
const positive = (v: number | undefined) => v !== undefined && Number.isFinite(v) && v > 0;
const nonNegative = (v: number | undefined) => v !== undefined && Number.isFinite(v) && v >= 0;
const lossOk = (v: number) => Number.isFinite(v) && v >= 0 && v <= 1;

for (const workload of workloads) check(`${workload} completed`, !errors.some((e) => e.startsWith(`${workload} failed`)), errors.find((e) => e.startsWith(`${workload} failed`))?.split('\n')[0]);
for (const r of results.idle ?? []) {
  check(`idle ${r.target}: RSS per connection`, positive(r.rssKbPerConnection), String(r.rssKbPerConnection));
  check(`idle ${r.target}: connects per second`, positive(r.connectsPerSecond), String(r.connectsPerSecond));
  check(`idle ${r.target}: connect p99`, positive(r.connect.p99Ms), String(r.connect.p99Ms));
  // Go servers have no event loop to lag.
  if (r.target !== 'centrifugo') check(`idle ${r.target}: event-loop lag`, nonNegative(r.eventLoopLagMaxMs), String(r.eventLoopLagMaxMs));
}
const phaseChecks = (label: string, r: { latency: readonly { p50Ms: number; p99Ms: number; p999Ms: number }[]; loss: number; expected: number; serverCpuUsPerDelivery: number; generatorCorePct: number }) => {
  check(`${label}: messages expected`, r.expected > 0, String(r.expected));
  check(`${label}: latency p50/p99/p99.9`, r.latency.every((l) => positive(l.p50Ms) && positive(l.p99Ms) && positive(l.p999Ms) && l.p50Ms <= l.p99Ms && l.p99Ms <= l.p999Ms), JSON.stringify(r.latency));
  check(`${label}: loss computed`, lossOk(r.loss), String(r.loss));
  check(`${label}: server CPU per delivery`, nonNegative(r.serverCpuUsPerDelivery), String(r.serverCpuUsPerDelivery));
  check(`${label}: generator CPU`, positive(r.generatorCorePct), String(r.generatorCorePct));
};
for (const r of results.fanout ?? []) phaseChecks(`fanout ${r.target} ${r.source} ${r.subscribers}@${r.rate}`, r);
for (const r of results.cross ?? []) {
  check(`cross ${r.target}: steps ran`, r.steps.length > 0);
  for (const s of r.steps) {
    phaseChecks(`cross ${r.target} @${s.rate}`, s);
    check(`cross ${r.target} @${s.rate}: Redis CPU`, nonNegative(s.redisCorePct), String(s.redisCorePct));
    check(`cross ${r.target} @${s.rate}: hop's added latency`, Number.isFinite(s.hopAddedP50Ms) && Number.isFinite(s.hopAddedP99Ms));
  }
}
for (const r of results.storm ?? []) {
  check(`storm ${r.target}: half dropped`, r.dropped > 0 && r.dropped * 2 === r.clients, `${r.dropped}/${r.clients}`);
  check(`storm ${r.target}: every dropped client came back`, r.reconnectFailures === 0, String(r.reconnectFailures));
  check(`storm ${r.target}: time to recover`, positive(r.timeToRecoverMs), String(r.timeToRecoverMs));
  check(`storm ${r.target}: missed counted`, nonNegative(r.missedByDropped) && nonNegative(r.missedByStayers), `${r.missedByDropped}/${r.missedByStayers}`);
  check(`storm ${r.target}: loss computed`, lossOk(r.loss), String(r.loss));
}
for (const r of results.rooms ?? []) {
  phaseChecks(`rooms ${r.target}`, r);
  // The warm-up and the counted seconds are two phases: each published its own count, and the warm-up was delivered.
  check(`rooms ${r.target}: counted phase published its own count`, r.published === Math.round(plan.rooms.rate * plan.rooms.seconds), String(r.published));
  const warmUp = r.warmUp;
  check(`rooms ${r.target}: warm-up measured apart`, warmUp !== undefined && warmUp.published === Math.round(plan.rooms.rate * plan.rooms.warmUpSeconds) && warmUp.delivered > 0
    && nonNegative(warmUp.serverCpuUsPerDelivery) && lossOk(warmUp.loss) && positive(warmUp.p99Ms), JSON.stringify(warmUp));
}
try {
  const written = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8')) as Results;
  check('latest.json written', written.meta.mode === (smoke ? 'smoke' : 'full'));
  check('results.md and one SVG per workload written', files.some((f) => f.endsWith('results.md')) && workloads.every((w) => files.some((f) => f.endsWith(`${w}.svg`))));
} catch (error) {
  check('results written', false, String(error));
}
if (smoke) {
  // The raw framing the load uses, against socket.io-client on the same targets.
  for (const name of (['ours-sio', 'socketio'] as const).filter((t) => plan.targets.includes(t))) {
    const result = await framingMatchesStockClient(name).catch((error: unknown) => ({ ok: false, detail: String(error) }));
    check(`framing ${name}: the raw client and socket.io-client see the same message`, result.ok, result.detail);
  }
  const measured = new Set([...(results.idle ?? []), ...(results.fanout ?? []), ...(results.cross ?? []), ...(results.storm ?? []), ...(results.rooms ?? [])].map((r) => r.target));
  check('smoke: ours and plain ws both measured', (measured.has('ours-ws') || measured.has('ours-sio')) && (measured.has('ws') || !plan.targets.includes('ws')));
}

log(`done in ${secondsSinceStart().toFixed(0)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
