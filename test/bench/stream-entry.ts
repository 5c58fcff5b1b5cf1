/**
 * What one broadcast costs the Redis stream in memory (not a test; the figures behind docs/reference/recovery.md).
 *
 *   node_modules/.bin/node test/bench/stream-entry.ts
 *
 * Environment: BENCH_ENTRIES (broadcasts per payload size, default 2000).
 *
 * Starts Redis and one gateway (the test harness), POSTs /broadcast with seed-000-like payloads of a few sizes,
 * and reads back: one entry as the adapter wrote it (its fields and their sizes), MEMORY USAGE of the stream
 * (SAMPLES 0: every node counted) before and after, divided by the entries added, and XINFO STREAM.
 */
import { Redis } from 'ioredis';
import { startGateway } from '../harness/gateway.ts';
import { startRedis } from '../harness/services.ts';
import { positive } from './env.ts';

const ENTRIES = positive('BENCH_ENTRIES', 2000);
const STREAM = 'rtgw:stream';

/** A seed 000 field update with `padding` characters of description, so the payload grows on purpose. */
const message = (seq: number, padding: number) => ({
  event_type: 'field.updated',
  field_id: `f-${seq}`,
  name: 'North Field',
  updated_at: '2024-01-15T10:30:00Z',
  ...(padding > 0 ? { description: 'x'.repeat(padding) } : {}),
});

async function main(): Promise<void> {
  const redisService = await startRedis();
  const gateway = await startGateway({ REDIS_URL: redisService.url, LOG_LEVEL: 'warn' });
  const redis = new Redis(redisService.url);
  try {
    console.log(`stream-entry: ${ENTRIES} broadcasts per payload size through one gateway; stream ${STREAM}`);
    for (const padding of [0, 900, 4000]) {
      const before = Number(await redis.call('MEMORY', 'USAGE', STREAM, 'SAMPLES', '0') ?? 0);
      const lengthBefore = await redis.xlen(STREAM);
      let envelopeBytes = 0;
      for (let seq = 0; seq < ENTRIES; seq++) {
        const res = await gateway.api('/broadcast', { json: { tenant_id: 'bench', field_id: 'mem', message: message(seq, padding) } });
        if (res.status !== 200) throw new Error(`broadcast answered ${res.status}`);
      }
      const added = (await redis.xlen(STREAM)) - lengthBefore;
      const after = Number(await redis.call('MEMORY', 'USAGE', STREAM, 'SAMPLES', '0'));
      const [id, fields] = (await redis.xrevrange(STREAM, '+', '-', 'COUNT', 1))[0]!;
      const entry: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!;
      // What a client receives: the event envelope the gateway built around the message.
      const data = JSON.parse(entry['data']!) as { packet: { data: [string, unknown] } };
      envelopeBytes = Buffer.byteLength(JSON.stringify(data.packet.data[1]));
      const fieldBytes = Object.entries(entry).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      const perEntry = (after - before) / added;
      console.log(`payload: message ${Buffer.byteLength(JSON.stringify(message(0, padding)))} B, event envelope ${envelopeBytes} B`);
      console.log(`  entry ${id}: fields ${Object.entries(entry).map(([k, v]) => `${k}=${Buffer.byteLength(v)} B`).join(', ')} (${fieldBytes} B of field names and values, ${fieldBytes - envelopeBytes} B beyond the envelope)`);
      console.log(`  memory: ${added} entries added ${after - before} B (MEMORY USAGE): ${perEntry.toFixed(0)} B an entry, ${(perEntry - envelopeBytes).toFixed(0)} B beyond the envelope`);
    }
    const info = (await redis.call('XINFO', 'STREAM', STREAM)) as unknown[];
    const pairs: string[] = [];
    for (let i = 0; i < info.length; i += 2) if (typeof info[i + 1] !== 'object' || info[i + 1] === null) pairs.push(`${String(info[i])}=${String(info[i + 1])}`);
    console.log(`XINFO STREAM: ${pairs.join(' ')}`);
    console.log(`sample entry data: ${(await redis.xrevrange(STREAM, '+', '-', 'COUNT', 1))[0]![1].join(' | ').slice(0, 400)}…`);
  } finally {
    redis.disconnect();
    await gateway.stop();
    await redisService.stop();
  }
}

await main();
