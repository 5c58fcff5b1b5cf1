/**
 * The load generator's hand-written framing checked against the stock client: a socket.io-client and a raw
 * LoadClient subscribe to the same room of a socket.io target, one message is published, and both must see the
 * same marker. socket.io-client is used here only, never for load.
 */
import { io } from 'socket.io-client';
import { LoadClient, type MarkerSink } from './load-client.ts';
import { nowUs } from './latency.ts';
import { startTarget, TENANT, type TargetName } from './targets.ts';

export async function framingMatchesStockClient(name: TargetName): Promise<{ ok: boolean; detail: string }> {
  const target = await startTarget(name);
  const socket = io(target.servers[0]!.httpUrl, {
    auth: { token: await target.token('stock') },
    query: { tenant_id: TENANT },
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
  });
  const raw = new LoadClient(0, target.protocol);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket.io-client: no connect within 10 s')), 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('connect_error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    await socket.timeout(5000).emitWithAck('subscribe', { topics: target.topics('stock', ['check']) });
    await raw.connect({ endpoint: target.endpoint(0), token: await target.token('raw'), topics: target.topics('raw', ['check']) });
    const seen: { stock?: number; raw?: number } = {};
    socket.on('event', (payload: { data?: { bs?: number } }) => {
      seen.stock = payload.data?.bs;
    });
    const sink: MarkerSink = { marker: (_c, seq) => void (seen.raw = seq) };
    raw.sink = sink;
    const seq = 424242;
    await target.publish(0, { group: 'check' }, { bs: seq, bt: nowUs(), text: 'framing check' });
    const deadline = Date.now() + 5000;
    while ((seen.stock === undefined || seen.raw === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ok = seen.stock === seq && seen.raw === seq;
    return { ok, detail: `socket.io-client saw ${seen.stock}, raw client saw ${seen.raw}, published ${seq}` };
  } finally {
    socket.close();
    raw.close();
    await target.stop();
  }
}
