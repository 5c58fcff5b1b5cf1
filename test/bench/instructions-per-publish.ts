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
 * to about 1 %: each server runs under callgrind with counting off, takes 200 connections and a warm-up of 4000
 * publishes (the JIT settles), and counts only while the measured publishes are sent one at a time.
 *
 * What it leaves out: the kernel's share (the socket writes, the same for every system, are most of a delivery's
 * CPU time), so these ratios are larger than the CPU-time ratios; and instructions are not time (a cache miss
 * costs more than an add). JIT compilation and GC are counted (they are CPU the publishes cause) and shown apart.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
const CONNECTIONS = oneRoom ? 500 : 200;
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
  readonly deliveries: number;
}

/** Self instructions by function from a callgrind dump: the total, and what V8's compilers and its GC took (the GC's by name patterns: a rough split). */
function split(file: string): { total: number; compiler: number; gc: number } {
  const text = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--auto=no', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let total = 0;
  let compiler = 0;
  let gc = 0;
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (!match) continue;
    const count = Number(match[1]!.replaceAll(',', ''));
    const fn = match[2]!;
    if (fn.startsWith('PROGRAM TOTALS')) total = count;
    else if (/v8::internal::(compiler::|maglev::|turboshaft::|interpreter::|baseline::|Compiler::|(Parser|ParserBase|PreParser)\b|Scanner::|BytecodeGenerator)/.test(fn)) compiler += count;
    else if (/Heap::|Mark|Scaveng|Sweep|Evacuat|Compactor|RememberedSet|SlotSet|GCTracer|Worklist|IterateObjectCache|SizeFromMap|BodyDescriptor/.test(fn)) gc += count;
  }
  return { total, compiler, gc };
}

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
    NODE_OPTIONS: '--max-semi-space-size=8',
  };
  const server = start('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`, NODE, script], { cwd: REPO_ROOT, env });
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
    const counted = split(dumps[0]!);
    return { name, ...counted, deliveries };
  } finally {
    for (const client of clients) client.close();
    server.child.kill('SIGKILL');
    for (const f of readdirSync(tmpdir()).filter((f) => f.startsWith(`callgrind.${name}.${process.pid}`))) rmSync(join(tmpdir(), f), { force: true });
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
process.exit(0);
