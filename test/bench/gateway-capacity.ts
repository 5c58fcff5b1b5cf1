/**
 * Capacity benchmark (not a test): how much memory an idle authenticated connection costs a gateway, and how
 * fast a gateway accepts authenticated connections, per transport (raw /ws, socket.io over WebSocket).
 *
 *   node_modules/.bin/node test/bench/gateway-capacity.ts
 *
 * Environment: BENCH_CONNECTIONS (default 2000), BENCH_CONCURRENCY (handshakes in flight, default 50),
 * BENCH_SETTLE_MS (pause before each RSS reading, default 2000), BENCH_TRANSPORTS (default "ws,socketio").
 *
 * Each transport gets a fresh gateway process (the test harness: node gateway/src/main.ts, in-memory state).
 * RSS is the gateway's VmRSS from /proc/<pid>/status after a warm-up and a settle, before and after opening N
 * connections that each received their `connected` welcome: first as it is (what a pod's graph shows, garbage
 * included), then after a full GC run through the gateway's inspector (--inspect on a free local port), with
 * the live V8 heap and external memory from its /metrics.
 * Both ends count against `ulimit -n` (one file descriptor per connection in each process).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { freePort } from '../harness/ports.ts';
import { hsToken } from '../harness/tokens.ts';
import { positive } from './env.ts';

type Transport = 'ws' | 'socketio';

const N = positive('BENCH_CONNECTIONS', 2000);
const CONCURRENCY = positive('BENCH_CONCURRENCY', 50);
const SETTLE_MS = positive('BENCH_SETTLE_MS', 2000);
const TRANSPORTS = (process.env['BENCH_TRANSPORTS'] ?? 'ws,socketio').split(',').map((t) => t.trim()) as Transport[];
const WARM_UP = 100;
const TENANT = 'bench';

/** VmRSS of a process, in KiB. */
function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** The soft limit on open files of this process (the gateway inherits the same). */
function openFileLimit(): number | undefined {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return match?.[1] === 'unlimited' ? Infinity : match ? Number(match[1]) : undefined;
}

interface Connection {
  close(): void;
}

/** Opens one authenticated connection; resolves once the gateway's `connected` welcome arrived. */
function connect(gateway: GatewayProcess, transport: Transport, token: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${transport}: no welcome within 30 s`)), 30_000).unref();
    if (transport === 'ws') {
      const ws = new WebSocket(gateway.wsUrl({ tenant_id: TENANT }), { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
      ws.once('message', (data) => {
        clearTimeout(timer);
        const type = (JSON.parse(data.toString()) as { type?: string }).type;
        if (type === 'connected') resolve({ close: () => ws.terminate() });
        else reject(new Error(`ws: first frame was ${type}`));
      });
      ws.once('close', (code) => reject(new Error(`ws: closed with ${code}`)));
      ws.once('error', (error) => reject(error));
      return;
    }
    const socket: Socket = io(gateway.httpUrl, { auth: { token }, query: { tenant_id: TENANT }, transports: ['websocket'], forceNew: true, reconnection: false });
    socket.once('connected', () => {
      clearTimeout(timer);
      resolve({ close: () => socket.disconnect() });
    });
    socket.once('connect_error', (error) => reject(error));
  });
}

/** Opens one connection per token, at most CONCURRENCY handshakes in flight; resolves with them and the time taken. */
async function openAll(gateway: GatewayProcess, transport: Transport, tokens: readonly string[]): Promise<{ connections: Connection[]; seconds: number }> {
  const connections: Connection[] = [];
  let next = 0;
  const startedAt = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, tokens.length) }, async () => {
    while (next < tokens.length) {
      const token = tokens[next++]!;
      connections.push(await connect(gateway, transport, token));
    }
  }));
  return { connections, seconds: Number(process.hrtime.bigint() - startedAt) / 1e9 };
}

/** The gateway's own figures from /metrics (prom-client's default process metrics), in KiB. */
async function heapKb(gateway: GatewayProcess): Promise<{ heapUsed: number; external: number }> {
  const text = String((await gateway.api('/metrics', { serviceKey: null })).body);
  const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { heapUsed: sample('nodejs_heap_size_used_bytes'), external: sample('nodejs_external_memory_bytes') };
}

/**
 * Runs a full GC in the gateway through its inspector (Chrome DevTools Protocol, HeapProfiler.collectGarbage),
 * so heap figures count live objects only. The gateway is started with --inspect on a free port for this.
 */
async function collectGarbage(inspectPort: number): Promise<void> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      if ((JSON.parse(data.toString()) as { id?: number }).id === 1) resolve();
    });
    ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
  });
  ws.close();
}

async function openConnections(gateway: GatewayProcess): Promise<number> {
  const res = await gateway.api('/readyz', { serviceKey: null });
  return res.body.connections.total_connections as number;
}

interface Reading {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

/** RSS as it is, then RSS and heap after a full GC, all in KiB. */
async function read(gateway: GatewayProcess, inspectPort: number): Promise<{ asIs: number; collected: Reading }> {
  const pid = gateway.process.child.pid!;
  const asIs = rssKb(pid);
  await collectGarbage(inspectPort);
  return { asIs, collected: { rss: rssKb(pid), ...(await heapKb(gateway)) } };
}

async function bench(transport: Transport): Promise<void> {
  const inspectPort = await freePort();
  const gateway = await startGateway({
    LOG_LEVEL: 'warn',
    // One client address, many users: lift the per-IP limit well above N.
    MAX_CONNECTIONS_PER_IP: String(N * 2 + WARM_UP),
    MAX_CONNECTIONS_PER_TENANT: String(N * 2 + WARM_UP),
    NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
  });
  try {
    const tokens = await Promise.all(Array.from({ length: N + WARM_UP }, (_, i) => hsToken({ sub: `bench-${i}`, tenant: TENANT, expiresIn: 3600 })));

    // Warm-up: the first handshakes load and compile code paths; their cost is not per connection.
    const warm = await openAll(gateway, transport, tokens.slice(N));
    for (const connection of warm.connections) connection.close();
    await sleep(SETTLE_MS);
    if ((await openConnections(gateway)) !== 0) throw new Error('warm-up connections are still open');
    const before = await read(gateway, inspectPort);

    const { connections, seconds } = await openAll(gateway, transport, tokens.slice(0, N));
    await sleep(SETTLE_MS);
    const open = await openConnections(gateway);
    if (open !== N) throw new Error(`the gateway reports ${open} connections, expected ${N}`);
    const after = await read(gateway, inspectPort);

    const label = `{transport=${transport}}`;
    const perConnection = (kb: number) => (kb / N).toFixed(1);
    console.log(`connections${label} ${N}`);
    console.log(`gateway_rss_mb${label} before=${(before.asIs / 1024).toFixed(1)} after=${(after.asIs / 1024).toFixed(1)}`);
    // What a pod's memory graph shows: garbage included, as the process runs.
    console.log(`idle_rss_per_connection_kb${label} ${perConnection(after.asIs - before.asIs)}`);
    // After a full GC on both sides: the cost of what stays alive per connection.
    console.log(`idle_rss_per_connection_after_gc_kb${label} ${perConnection(after.collected.rss - before.collected.rss)}`);
    console.log(`live_heap_per_connection_kb${label} ${perConnection(after.collected.heapUsed - before.collected.heapUsed)}`);
    console.log(`external_per_connection_kb${label} ${perConnection(after.collected.external - before.collected.external)}`);
    console.log(`connections_accepted_per_second${label} ${(N / seconds).toFixed(0)}`);
    for (const connection of connections) connection.close();
  } finally {
    await gateway.stop();
  }
}

const limit = openFileLimit();
console.log(`# ${N} connections per transport, ${CONCURRENCY} handshakes in flight, settle ${SETTLE_MS} ms, ulimit -n ${limit ?? 'unknown'}, node ${process.version}`);
if (limit !== undefined && limit < N + WARM_UP + 200) {
  console.error(`ulimit -n is ${limit}: each side needs one file descriptor per connection. Raise it (ulimit -n ${N * 2}) or lower BENCH_CONNECTIONS.`);
  process.exit(1);
}
for (const transport of TRANSPORTS) {
  if (transport !== 'ws' && transport !== 'socketio') throw new Error(`unknown transport "${transport}" (ws, socketio)`);
  await bench(transport);
}
