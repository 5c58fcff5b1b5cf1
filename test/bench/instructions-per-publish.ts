/**
 * User-space instructions per publish and per delivery, counted by valgrind's callgrind, for our gateway and the
 * peers, publishing over HTTP in one of run.ts's two shapes. Not a test.
 *
 *   node_modules/.bin/node test/bench/instructions-per-publish.ts [targets] [shape] [publishes]
 *   targets: a comma-separated list of ours-ws, ours-sio, ws, socketio (default all four)
 *   shape: many-rooms (default: 200 connections, each in its personal room and a 10-member group room; even
 *          publishes to a group, odd ones to a person; 3000 publishes) or one-room (500 connections in one
 *          room; 300 publishes)
 *
 * Why: CPU time per delivery on this machine moves by 10 to 30 % from one minute to the next, for every system
 * alike, so the run.ts figure can only be compared within a run and over several rounds. Instruction counts repeat
 * to about 1 %: each server runs under callgrind with counting off, takes its connections and a warm-up of 4000
 * publishes (400 in one room; the JIT settles), and counts only while the measured publishes are sent one at a time.
 *
 * BENCH_CACHE_SIM=1 adds callgrind's cache simulator (this VM has no hardware counters) and prints last-level
 * misses (instruction fetch, data read, data write), the last level taken as a core's 512 KiB L2
 * (BENCH_LL_CACHE=size,ways,line to change it), and the source files they fall in (V8's --perf-basic-prof names
 * the JIT code). Where a miss falls is not what removing that code saves: a publish's working set sits just above
 * the L2, so what counts is its total size (README, Performance).
 * BENCH_CONNECTIONS sets the connection count (run.ts's many-rooms workload has 2000).
 * BENCH_KEEP_DUMP=DIR copies each server's callgrind dump there (and its perf map, with BENCH_CACHE_SIM=1), for
 * callgrind_annotate by function.
 *
 * What it leaves out: the kernel's share (the socket writes, the same for every system, are most of a delivery's
 * CPU time), so these ratios are larger than the CPU-time ratios; and instructions are not time (a cache miss
 * costs more than an add). JIT compilation and GC are counted (they are CPU the publishes cause) and shown apart.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE, REPO_ROOT } from '../harness/gateway.ts';
import { freePort } from '../harness/ports.ts';
import { start, waitFor } from '../harness/process.ts';
import { SERVICE_KEY, SERVICE_KEYS, TEST_SECRET, hsToken } from '../harness/tokens.ts';
import { LoadClient, openMany, type Protocol } from './lib/load-client.ts';
import { roomsSequence } from './lib/workloads.ts';

type Name = 'ours-ws' | 'ours-sio' | 'ws' | 'socketio';
const ALL: readonly Name[] = ['ours-ws', 'ours-sio', 'ws', 'socketio'];
const names = (process.argv[2]?.split(',') ?? ALL) as Name[];
for (const name of names) if (!ALL.includes(name)) throw new Error(`unknown target ${name}; use ${ALL.join(',')}`);
const shape = process.argv[3] ?? 'many-rooms';
if (shape !== 'many-rooms' && shape !== 'one-room') throw new Error(`unknown shape ${shape}; use many-rooms or one-room`);
const oneRoom = shape === 'one-room';
const PUBLISHES = Number(process.argv[4] ?? (oneRoom ? 300 : 3000));
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? (oneRoom ? 500 : 200));
// Every many-rooms group is full, so each group publish reaches GROUP_SIZE members.
if (!Number.isInteger(CONNECTIONS) || CONNECTIONS < 10 || CONNECTIONS % 10 !== 0) throw new Error('BENCH_CONNECTIONS must be a positive multiple of 10');
const CACHE_SIM = process.env['BENCH_CACHE_SIM'] === '1';
// valgrind takes the last level from the host, which on this VM reads as 512 MiB: a core's own L2 (EPYC) instead.
const LL_CACHE = process.env['BENCH_LL_CACHE'] ?? '524288,8,64';
const GROUP_SIZE = oneRoom ? CONNECTIONS : 10;
const WARM_UP = oneRoom ? 400 : 4000;
const TENANT = 'bench';

if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');

// valgrind and callgrind_control find each other through files named after $USER and $HOST: the same for both
// (HOST is also the address the gateway listens on).
const vgEnv = { USER: 'bench', LOGNAME: 'bench', HOST: '127.0.0.1' };

interface Counted {
  readonly name: Name;
  readonly total: number;
  readonly compiler: number;
  readonly gc: number;
  /** Totals of the events shown: Ir, and with the cache simulator ILmr, DLmr and DLmw. */
  readonly events: Record<string, number>;
  /** Last-level misses (instruction, data read, data write) by source file, with the cache simulator. */
  readonly missesByFile: Map<string, number[]>;
  readonly deliveries: number;
}

/** Self counts by function from a callgrind dump: the function and one count per event shown, in `events` order. */
function byFunction(file: string, events: readonly string[]): Array<{ fn: string; counts: number[] }> {
  const text = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--auto=no', `--show=${events.join(',')}`, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  // A count with its share ("2,006 ( 0.8%)"), a zero between two counts ("0"), or no count (".").
  const column = String.raw`(?:([\d,]+)(?: \([^)]*\))?|\.)`;
  const line = new RegExp(String.raw`^\s*${Array(events.length).fill(column).join(String.raw`\s+`)}\s+(.+)$`);
  const rows: Array<{ fn: string; counts: number[] }> = [];
  for (const text_ of text.split('\n')) {
    const match = line.exec(text_);
    if (match) rows.push({ fn: match[events.length + 1]!, counts: events.map((_, i) => Number(match[i + 1]?.replaceAll(',', '') ?? 0)) });
  }
  return rows;
}

/** The total, and what V8's compilers and its GC took (the GC's by name patterns: a rough split). */
function compilerAndGc(rows: ReturnType<typeof byFunction>): { total: number; compiler: number; gc: number } {
  let total = 0;
  let compiler = 0;
  let gc = 0;
  for (const { fn, counts: [count = 0] } of rows) {
    if (fn.startsWith('PROGRAM TOTALS')) total = count;
    else if (/v8::internal::(compiler::|maglev::|turboshaft::|interpreter::|baseline::|Compiler::|(Parser|ParserBase|PreParser)\b|Scanner::|BytecodeGenerator)/.test(fn)) compiler += count;
    else if (/Heap::|Mark|Scaveng|Sweep|Evacuat|Compactor|RememberedSet|SlotSet|GCTracer|Worklist|IterateObjectCache|SizeFromMap|BodyDescriptor/.test(fn)) gc += count;
  }
  return { total, compiler, gc };
}

/**
 * Misses by source file: callgrind names JIT code by address only, and V8's perf map (`--perf-basic-prof`: start,
 * size, name per line) says whose code it is, e.g. "JS:*'broadcast file:///…/gateway/src/api/http.ts:190:21". Native
 * code (V8's builtins and runtime, Node's C++, libc) is one row.
 */
function missesByFile(rows: ReturnType<typeof byFunction>, perfMap: string): Map<string, number[]> {
  const code = readFileSync(perfMap, 'utf8').split('\n').flatMap((l) => {
    const [start, size, ...name] = l.split(' ');
    return start && size ? [{ start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), name: name.join(' ') }] : [];
  }).sort((a, b) => a.start - b.start);
  const jitName = (address: number) => {
    let lo = 0;
    let hi = code.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (code[mid]!.start <= address) lo = mid + 1;
      else hi = mid - 1;
    }
    // Code regions can be reused: the latest entry that covers the address.
    for (let i = hi; i >= 0 && i > hi - 64; i--) if (code[i]!.start <= address && address < code[i]!.end) return code[i]!.name;
    return undefined;
  };
  const files = new Map<string, number[]>();
  for (const { fn, counts } of rows) {
    if (fn.startsWith('PROGRAM TOTALS')) continue;
    const address = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(fn)?.[1];
    const name = address === undefined ? undefined : jitName(parseInt(address, 16));
    const file = address === undefined ? 'native (V8, Node, libc)'
      : name === undefined ? 'JIT code without a name'
      : (/\s(?:file:\/\/)?(\/[^\s:]+|node:[^\s:]+)/.exec(name)?.[1] ?? 'JIT code without a source file').replace(REPO_ROOT, '');
    const sums = files.get(file) ?? [0, 0, 0];
    counts.slice(1).forEach((c, i) => (sums[i]! += c));
    files.set(file, sums);
  }
  return files;
}

/** Where V8's --perf-basic-prof writes a process's map (valgrind runs node in the same process). */
const perfMapOf = (pid: number | undefined) => `/tmp/perf-${pid}.map`;

async function measure(name: Name): Promise<Counted> {
  const port = await freePort();
  const ours = name.startsWith('ours');
  const out = join(tmpdir(), `callgrind.${name}.${process.pid}`);
  const script = ours ? 'gateway/src/main.ts' : `test/bench/peers/${name === 'ws' ? 'ws' : 'socketio'}-server.ts`;
  const env = {
    ...vgEnv,
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    PORT: String(port),
    JWT_SECRET_KEY: TEST_SECRET,
    SERVICE_API_KEYS: SERVICE_KEYS,
    SERVICE_KEY,
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS_PER_IP: '1000000',
    MAX_CONNECTIONS_PER_TENANT: '1000000',
    // Keep-alive pings would land in a window valgrind stretches to minutes (plain ws sends none).
    PING_INTERVAL_MS: '300000',
    NODE_OPTIONS: `--max-semi-space-size=8${CACHE_SIM ? ' --perf-basic-prof' : ''}`,
  };
  const server = start('valgrind', ['--tool=callgrind', '--instr-atstart=no', ...(CACHE_SIM ? ['--cache-sim=yes', `--LL=${LL_CACHE}`] : []), `--callgrind-out-file=${out}`, NODE, script], { cwd: REPO_ROOT, env });
  const httpUrl = `http://127.0.0.1:${port}`;
  const clients: LoadClient[] = [];
  try {
    await waitFor(`${name} under valgrind`, async () => {
      if (server.child.exitCode !== null) throw new Error(`${name} exited with ${server.child.exitCode}:\n${server.output()}`);
      return (await fetch(`${httpUrl}/healthz`).catch(() => undefined))?.ok;
    }, 300_000, 500);
    const protocol: Protocol = name === 'ours-sio' || name === 'socketio' ? 'eio' : 'json';
    const url = protocol === 'eio'
      ? `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&tenant_id=${TENANT}`
      : ours ? `ws://127.0.0.1:${port}/ws?tenant_id=${TENANT}` : `ws://127.0.0.1:${port}/`;
    for (let i = 0; i < CONNECTIONS; i++) clients.push(new LoadClient(i, protocol, 0));
    const tokens = await Promise.all(clients.map((c) => hsToken({ sub: `u${c.index}`, tenant: TENANT, expiresIn: 3600 })));
    const opened = await openMany(clients, (c) => ({
      endpoint: { url },
      token: tokens[c.index]!,
      topics: [`field:g${Math.floor(c.index / GROUP_SIZE)}`],
    }), 4, 600_000);
    if (opened.failures > 0) throw new Error(`${name}: ${opened.failures} clients did not connect (${opened.firstError})`);

    // The same sequence for every target, as in run.ts's many-rooms workload.
    const random = roomsSequence();
    let seq = 0;
    let deliveries = 0;
    const groups = Math.ceil(CONNECTIONS / GROUP_SIZE);
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const s = seq++;
        const toGroup = oneRoom || s % 2 === 0;
        const room = toGroup ? `field:g${random(groups)}` : `user:u${random(CONNECTIONS)}`;
        deliveries += toGroup ? GROUP_SIZE : 1;
        const res = await fetch(`${httpUrl}/broadcast`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE_KEY}` },
          body: JSON.stringify({ tenant_id: TENANT, room, message: { bs: s, bt: Date.now() * 1000, text: 'hello from the bench, a short chat-sized message' } }),
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${name}: publish answered HTTP ${res.status}`);
      }
    };
    await publish(WARM_UP);
    await sleep(500);
    deliveries = 0;
    const control = (...args: string[]) => execFileSync('callgrind_control', [...args, String(server.child.pid)], { env: { ...process.env, ...vgEnv }, stdio: 'ignore' });
    control('--instr=on');
    await publish(PUBLISHES);
    // The last deliveries' writes, and GC work they left, before counting stops.
    await sleep(1000);
    control('--instr=off');
    control('--dump');
    await sleep(500);
    const dumps = readdirSync(tmpdir()).filter((f) => f.startsWith(`callgrind.${name}.${process.pid}.`)).map((f) => join(tmpdir(), f));
    if (dumps.length !== 1) throw new Error(`${name}: expected one callgrind dump, found ${dumps.length}`);
    const shown = CACHE_SIM ? ['Ir', 'ILmr', 'DLmr', 'DLmw'] : ['Ir'];
    const keepIn = process.env['BENCH_KEEP_DUMP'];
    if (keepIn) {
      mkdirSync(keepIn, { recursive: true });
      for (const file of [dumps[0]!, ...(CACHE_SIM ? [perfMapOf(server.child.pid)] : [])]) copyFileSync(file, join(keepIn, basename(file)));
    }
    const rows = byFunction(dumps[0]!, shown);
    const totals = rows.find((r) => r.fn.startsWith('PROGRAM TOTALS'))?.counts ?? [];
    return {
      name,
      ...compilerAndGc(rows),
      events: Object.fromEntries(shown.map((e, i) => [e, totals[i] ?? 0])),
      missesByFile: CACHE_SIM ? missesByFile(rows, perfMapOf(server.child.pid)) : new Map(),
      deliveries,
    };
  } finally {
    for (const client of clients) client.close();
    server.child.kill('SIGKILL');
    for (const f of readdirSync(tmpdir()).filter((f) => f.startsWith(`callgrind.${name}.${process.pid}`))) rmSync(join(tmpdir(), f), { force: true });
    rmSync(perfMapOf(server.child.pid), { force: true });
  }
}

const rows: Counted[] = [];
for (const name of names) {
  const started = Date.now();
  rows.push(await measure(name));
  console.error(`${name}: counted in ${Math.round((Date.now() - started) / 1000)} s`);
}
const floor = rows.find((r) => r.name === 'ws');
const k = (n: number) => (n / PUBLISHES / 1000).toFixed(1);
console.log(`User-space instructions per publish (thousands), ${shape}: ${PUBLISHES} publishes, ${CONNECTIONS} connections, ${rows[0]!.deliveries / PUBLISHES} deliveries per publish:`);
console.log('| target | total | of which JIT compilers | of which GC | rest | per delivery | total ÷ plain ws | rest ÷ plain ws |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const rest = r.total - r.compiler - r.gc;
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : 'n/a');
  console.log(`| ${r.name} | ${k(r.total)} | ${k(r.compiler)} | ${k(r.gc)} | ${k(rest)} | ${(r.total / r.deliveries / 1000).toFixed(2)} | ${ratio(r.total, floor?.total)} | ${ratio(rest, floor ? floor.total - floor.compiler - floor.gc : undefined)} |`);
}
if (CACHE_SIM) {
  // Last-level misses are what cost time: an L2 miss waits tens of cycles, where an instruction takes about one.
  const per = (n: number | undefined) => ((n ?? 0) / PUBLISHES).toFixed(0);
  console.log(`\nSimulated last-level (${LL_CACHE}) misses per publish: instruction fetch, data read, data write:`);
  console.log('| target | instructions | data read | data write | all | ÷ plain ws |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const all = (r: Counted) => (r.events['ILmr'] ?? 0) + (r.events['DLmr'] ?? 0) + (r.events['DLmw'] ?? 0);
  for (const r of rows) console.log(`| ${r.name} | ${per(r.events['ILmr'])} | ${per(r.events['DLmr'])} | ${per(r.events['DLmw'])} | ${per(all(r))} | ${floor ? `${(all(r) / all(floor)).toFixed(2)}x` : 'n/a'} |`);
  for (const r of rows) {
    console.log(`\n${r.name}: last-level misses per publish by source file (instruction, data), the 15 largest:`);
    const files = [...r.missesByFile].sort((a, b) => b[1].reduce((x, y) => x + y) - a[1].reduce((x, y) => x + y)).slice(0, 15);
    for (const [file, [i = 0, dr = 0, dw = 0]] of files) console.log(`  ${per(i).padStart(6)} ${per(dr + dw).padStart(6)}  ${file}`);
  }
}
process.exit(0);
