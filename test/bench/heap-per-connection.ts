/**
 * Where an idle authenticated connection's memory goes: heap snapshots of a gateway (through its inspector)
 * before and after opening N connections, diffed by object constructor, per connection. Not a test.
 *
 *   node_modules/.bin/node test/bench/heap-per-connection.ts [ws|socketio|socketio-polling] [N]
 *   (socketio: clients that open with a WebSocket, served without engine.io; socketio-polling: stock
 *   socket.io-client that starts with long-polling, served by engine.io until it upgrades, then taken over)
 *   (HEAP_SNAPSHOT_OUT=file also writes the second snapshot, for a closer look in DevTools)
 *
 * Prints the top constructors by retained-size growth per connection (self sizes; a "closure" row is a
 * function created per connection, "system / Context" the variables those closures capture).
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { io as ioClient } from 'socket.io-client';
import WebSocket from 'ws';
import { startGateway } from '../harness/gateway.ts';
import { freePort } from '../harness/ports.ts';
import { LoadClient, openMany } from './lib/load-client.ts';
import { hsToken } from '../harness/tokens.ts';

const transport = ['socketio', 'socketio-polling'].includes(process.argv[2] ?? '') ? process.argv[2]! : 'ws';
const N = Number(process.argv[3] ?? 2000);
const TENANT = 'bench';

async function inspector(port: number): Promise<{ call(method: string): Promise<string>; close(): void }> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  return {
    call(method) {
      const my = ++id;
      const chunks: string[] = [];
      return new Promise((resolve) => {
        const onMessage = (data: WebSocket.RawData) => {
          const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: { chunk: string } };
          if (message.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(message.params!.chunk);
          if (message.id === my) {
            ws.off('message', onMessage);
            resolve(chunks.join(''));
          }
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id: my, method }));
      });
    },
    close: () => ws.close(),
  };
}

/** Self size per "type:name" (constructor) in a heap snapshot. */
function bySize(text: string): Map<string, { size: number; count: number }> {
  const snapshot = JSON.parse(text) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snapshot.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    let name = snapshot.strings[snapshot.nodes[i + nameAt]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(strings)';
    else if (type === 'closure') name = `closure ${name || '(anonymous)'}`;
    else if (type === 'number' || type === 'hidden' || type === 'array' || type === 'code') name = `(${type}) ${name.length > 40 ? '' : name}`;
    const key = `${type}:${name}`;
    const entry = out.get(key) ?? { size: 0, count: 0 };
    entry.size += snapshot.nodes[i + sizeAt]!;
    entry.count += 1;
    out.set(key, entry);
  }
  return out;
}

const inspectPort = await freePort();
const gateway = await startGateway({ LOG_LEVEL: 'warn', MAX_CONNECTIONS_PER_IP: '1000000', MAX_CONNECTIONS_PER_TENANT: '1000000', NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}` });
try {
  const protocol = transport === 'ws' ? 'json' : 'eio';
  const endpoint = transport === 'ws' ? { url: gateway.wsUrl({ tenant_id: TENANT }) } : { url: `ws://127.0.0.1:${gateway.port}/socket.io/?EIO=4&transport=websocket&tenant_id=${TENANT}` };
  const openPolling = async (count: number, offset: number) => {
    const clients: { close(): void }[] = [];
    for (let i = 0; i < count; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
        const client = ioClient(gateway.httpUrl, { forceNew: true, reconnection: false, transports: ['polling', 'websocket'], query: { tenant_id: TENANT }, auth: { token: await hsToken({ sub: `u${offset + i + j}`, tenant: TENANT }) } });
        clients.push(client);
        await new Promise<void>((resolve, reject) => {
          client.once('connect_error', reject);
          client.once('connect', () => (client.io.engine.transport.name === 'websocket' ? resolve() : client.io.engine.once('upgrade', () => resolve())));
        });
      }));
    }
    return clients;
  };
  const open = async (count: number, offset: number): Promise<{ close(): void }[]> => {
    if (transport === 'socketio-polling') return openPolling(count, offset);
    const clients = Array.from({ length: count }, (_, i) => new LoadClient(offset + i, protocol));
    const tokens = await Promise.all(clients.map((c) => hsToken({ sub: `u${c.index}`, tenant: TENANT })));
    const result = await openMany(clients, (c) => ({ endpoint, token: tokens[c.index - offset]!, topics: [] }), 50, 120_000);
    if (result.failures > 0) throw new Error(`${result.failures} failed: ${result.firstError}`);
    return clients;
  };
  for (const c of await open(100, 1_000_000)) c.close();
  await sleep(1000);
  const debug = await inspector(inspectPort);
  await debug.call('HeapProfiler.collectGarbage');
  const before = bySize(await debug.call('HeapProfiler.takeHeapSnapshot'));
  const clients = await open(N, 0);
  await sleep(1000);
  await debug.call('HeapProfiler.collectGarbage');
  const afterText = await debug.call('HeapProfiler.takeHeapSnapshot');
  if (process.env['HEAP_SNAPSHOT_OUT']) writeFileSync(process.env['HEAP_SNAPSHOT_OUT'], afterText);
  const after = bySize(afterText);
  debug.close();
  const rows = [...after].map(([key, a]) => {
    const b = before.get(key) ?? { size: 0, count: 0 };
    return { key, bytes: (a.size - b.size) / N, objects: (a.count - b.count) / N };
  }).sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  console.log(`# ${transport}: ${N} idle authenticated connections; JS heap (self sizes) per connection: ${(total / 1024).toFixed(2)} KB`);
  for (const r of rows.slice(0, 40)) console.log(`${r.bytes.toFixed(0).padStart(7)} B  ${r.objects.toFixed(2).padStart(6)} objects  ${r.key}`);
  for (const c of clients) c.close();
} finally {
  await gateway.stop();
}
