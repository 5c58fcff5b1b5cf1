/**
 * What the recovery window costs one replica without Redis (not a test; the figures behind
 * docs/reference/recovery.md): socket.io's own SessionAwareAdapter against ours (gateway/src/fanout/memory-store.ts).
 *
 *   node_modules/.bin/node --expose-gc test/bench/memory-store.ts
 *
 * Environment: BENCH_BROADCASTS (broadcasts kept, default 120000: two minutes at 1,000 a second).
 *
 * Each store is the adapter of a real socket.io Server with recovery on. It keeps BENCH_BROADCASTS seed 000
 * event envelopes (a field update, each parsed from JSON as a published one is), each to a room of its own. Then,
 * after a full GC: heap and off-heap bytes per kept broadcast, and how long a full GC takes with them kept (what
 * every major GC of a busy replica pays).
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Server } from 'socket.io';
import { MemorySessionStore } from '../../gateway/src/fanout/memory-store.ts';
import { eventEnvelope } from '../../gateway/src/protocol/server-messages.ts';
import { positive } from './env.ts';

const BROADCASTS = positive('BENCH_BROADCASTS', 120_000);
const exposedGc = (globalThis as { gc?: () => void }).gc;
if (!exposedGc) throw new Error('run with --expose-gc');
const gc: () => void = exposedGc;

interface Store {
  broadcast(packet: { type: number; data: unknown[] }, options: { rooms: Set<string>; except: Set<string> }): void;
}

const memory = () => {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return { heapUsed, external };
};

/** A full GC's duration, the median of five. */
function fullGcMs(): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const start = performance.now();
    gc();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[2]!;
}

function measure(kind: 'socket.io SessionAwareAdapter' | 'MemorySessionStore'): void {
  const io = new Server({ connectionStateRecovery: { maxDisconnectionDuration: 3_600_000 }, ...(kind === 'MemorySessionStore' ? { adapter: MemorySessionStore as never } : {}) });
  const store = io.of('/').adapter as unknown as Store;
  const emptyGcMs = fullGcMs();
  const before = memory();
  let envelopeBytes = 0;
  for (let i = 0; i < BROADCASTS; i += 1) {
    const published = `{"field_id":"f-${i}","name":"North Field","status":"irrigating","updated_at":"2024-01-15T10:30:00Z"}`;
    const envelope = eventEnvelope({ eventType: 'field.updated', data: JSON.parse(published) });
    if (i === 0) envelopeBytes = Buffer.byteLength(JSON.stringify(envelope));
    store.broadcast({ type: 2, data: ['event', envelope] }, { rooms: new Set([`user:bench:u${i}`]), except: new Set() });
  }
  const after = memory();
  const gcMs = fullGcMs();
  const perBroadcast = (bytes: number) => `${(bytes / BROADCASTS).toFixed(0)} B`;
  console.log(
    `${kind}: ${BROADCASTS} broadcasts kept (envelope ${envelopeBytes} B of JSON): heap ${perBroadcast(after.heapUsed - before.heapUsed)} and off-heap ` +
      `${perBroadcast(after.external - before.external)} per broadcast; a full GC takes ${gcMs.toFixed(1)} ms (${emptyGcMs.toFixed(1)} ms with none kept)`,
  );
}

// Each store in a process of its own: a store's sweep timer keeps it alive, and its heap would weigh on the
// other's GC.
const KINDS = ['socket.io SessionAwareAdapter', 'MemorySessionStore'] as const;
const kind = process.argv[2];
if (kind === undefined) {
  for (const each of KINDS) execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, each], { stdio: 'inherit' });
} else {
  if (!KINDS.includes(kind as (typeof KINDS)[number])) throw new Error(`unknown store "${kind}"`);
  measure(kind as (typeof KINDS)[number]);
  process.exit(0);
}
