/**
 * The in-memory session store (one replica without Redis) against socket.io's own SessionAwareAdapter, both built
 * by a real socket.io Server: the same broadcasts kept, the same missed packets on resume, the same bytes to
 * members; and what is its own: offsets found without a search, broadcasts dropped one window after they were
 * kept, encodings that are not one string kept as they are.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from 'socket.io';
import { MemorySessionStore } from '../../../../gateway/src/fanout/memory-store.ts';

const WINDOW_MS = 120_000;

interface TestAdapter {
  addAll(id: string, rooms: Set<string>): void;
  broadcast(packet: { type: number; data: unknown[]; id?: number }, options: { rooms: Set<string>; except: Set<string>; flags?: Record<string, boolean> }): void;
  persistSession(session: { sid: string; pid: string; rooms: string[]; data: unknown }): void;
  restoreSession(pid: string, offset: string): Promise<{ sid: string; rooms: string[]; missedPackets: unknown[][] } | null>;
}

/** An adapter of a real socket.io Server, with members that record what the adapter writes to them. */
function storeOf(kind: 'ours' | 'stock', members: Record<string, string[]> = {}) {
  const io = new Server({ connectionStateRecovery: { maxDisconnectionDuration: WINDOW_MS }, ...(kind === 'ours' ? { adapter: MemorySessionStore as never } : {}) });
  const nsp = io.of('/');
  const adapter = nsp.adapter as unknown as TestAdapter;
  const written = new Map<string, unknown[][]>();
  for (const [id, rooms] of Object.entries(members)) {
    written.set(id, []);
    (nsp.sockets as unknown as Map<string, unknown>).set(id, { id, client: { writeToEngine: (encoded: unknown[]) => written.get(id)!.push(encoded) } });
    adapter.addAll(id, new Set([id, ...rooms]));
  }
  /** Broadcasts `data` and returns the offset it was given (the last element, when kept). */
  const send = (rooms: string[], data: unknown[], options: { except?: string[]; flags?: Record<string, boolean>; ackId?: number } = {}): unknown => {
    const packet = { type: 2, data: [...data], ...(options.ackId !== undefined ? { id: options.ackId } : {}) };
    adapter.broadcast(packet, { rooms: new Set(rooms), except: new Set(options.except ?? []), ...(options.flags ? { flags: options.flags } : {}) });
    return packet.data.length > data.length ? packet.data.at(-1) : undefined;
  };
  return { adapter, written, send };
}

/** The same broadcasts, in the same order, to both stores. */
const script: { rooms: string[]; data: unknown[]; except?: string[]; flags?: Record<string, boolean>; ackId?: number }[] = [
  { rooms: ['room:a'], data: ['message', { text: 'one room' }] },
  { rooms: ['room:b'], data: ['message', { text: 'another room' }] },
  { rooms: ['room:a', 'room:b'], data: ['event', { text: 'two rooms' }] },
  { rooms: [], data: ['notification', { text: 'everyone' }] },
  { rooms: [], data: ['notification', { text: 'everyone but room:a' }], except: ['room:a'] },
  { rooms: ['room:b'], data: ['message', { text: 'room:b but not room:a' }], except: ['room:a'] },
  { rooms: ['room:a'], data: ['message', { text: 'volatile: not kept' }], flags: { volatile: true } },
  { rooms: ['room:a'], data: ['message', { text: 'with an ack: not kept' }], ackId: 7 },
  { rooms: ['room:a'], data: ['message', { text: 'نص عربي, emoji 🎉, quotes "\\' }] },
  { rooms: ['room:a'], data: ['file', { bytes: Buffer.from([1, 2, 3]) }] },
  { rooms: ['sid-1'], data: ['connected', { to: 'one socket' }] },
  { rooms: ['room:c'], data: ['message', { text: 'a room the session is not in' }] },
];

/** A missed packet without its offset (the two stores give different ones). */
const withoutOffset = (packet: unknown[]) => packet.slice(0, -1);

describe('MemorySessionStore', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date', 'setInterval'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('is the adapter socket.io uses when recovery is on', () => {
    assert.ok(storeOf('ours').adapter instanceof MemorySessionStore);
    assert.ok(!(storeOf('stock').adapter instanceof MemorySessionStore));
  });

  it('writes members the same encodings as the stock store, and keeps the same broadcasts', () => {
    const members = { 'sid-1': ['room:a'], 'sid-2': ['room:b'], 'sid-3': [] };
    const ours = storeOf('ours', members);
    const stock = storeOf('stock', members);
    const offsets = script.map((step) => [ours.send(step.rooms, step.data, step), stock.send(step.rooms, step.data, step)]);
    assert.deepEqual(offsets.map(([o]) => o === undefined), offsets.map(([, s]) => s === undefined), 'the same broadcasts are given offsets');
    assert.equal((ours.adapter as unknown as MemorySessionStore).keptBroadcasts, offsets.filter(([o]) => o !== undefined).length);
    for (const id of Object.keys(members)) {
      const strip = (encodings: unknown[][]) => encodings.map((parts) => parts.map((part) => (typeof part === 'string' ? part.replace(/,"[^"]+"\]$/, ']') : part)));
      assert.deepEqual(strip(ours.written.get(id)!), strip(stock.written.get(id)!), `member ${id} got the same bytes`);
    }
  });

  it('replays the same missed packets as the stock store from every offset, in order, each with its own offset', async () => {
    const ours = storeOf('ours');
    const stock = storeOf('stock');
    const offsets = script.map((step) => [ours.send(step.rooms, step.data, step), stock.send(step.rooms, step.data, step)] as const).filter(([o]) => o !== undefined);
    const session = { sid: 'sid-1', pid: 'pid-1', rooms: ['sid-1', 'room:a', 'room:b'], data: { user: 'u1' } };
    const ourOffsetOf = new Map(offsets.map(([o, s]) => [s, o]));
    for (const [i, [ourOffset, stockOffset]] of offsets.entries()) {
      ours.adapter.persistSession(session);
      stock.adapter.persistSession(session);
      const got = await ours.adapter.restoreSession('pid-1', ourOffset as string);
      const want = await stock.adapter.restoreSession('pid-1', stockOffset as string);
      assert.ok(got && want, `resumes from the broadcast #${i}`);
      assert.deepEqual({ ...got, missedPackets: got.missedPackets.map(withoutOffset) }, { ...want, missedPackets: want.missedPackets.map(withoutOffset) });
      assert.deepEqual(got.missedPackets.map((packet) => packet.at(-1)), want.missedPackets.map((packet) => ourOffsetOf.get(packet.at(-1))), 'each carries the offset it was sent with');
    }
    ours.adapter.persistSession(session);
    const binary = (await ours.adapter.restoreSession('pid-1', offsets[0]![0] as string))!.missedPackets.find((packet) => packet[0] === 'file');
    assert.ok(Buffer.isBuffer((binary![1] as { bytes: unknown }).bytes), 'a broadcast with binary data is kept as it was');
  });

  it('keeps encodings across its buffers and larger than them', async () => {
    const { adapter, send } = storeOf('ours');
    const texts = [...Array.from({ length: 15 }, (_, i) => `${i}`.repeat(100_000)), 'a'.repeat(300_000), 'ع'.repeat(700_000), 'after'];
    const first = send(['room:a'], ['message', { text: 'before' }]);
    for (const text of texts) send(['room:a'], ['message', { text }]);
    adapter.persistSession({ sid: 's', pid: 'p', rooms: ['room:a'], data: {} });
    const got = await adapter.restoreSession('p', first as string);
    assert.deepEqual(got!.missedPackets.map((packet) => (packet[1] as { text: string }).text), texts);
  });

  it('refuses an offset it did not give, a session it does not have, a session past its window, and a session twice', async () => {
    const { adapter, send } = storeOf('ours');
    const offset = send(['room:a'], ['message', {}]) as string;
    const persist = () => adapter.persistSession({ sid: 's', pid: 'p', rooms: ['room:a'], data: {} });
    const prefix = offset.slice(0, offset.indexOf('.') + 1);
    for (const bad of ['', 'x', `${prefix}`, `${prefix}1`, `${prefix}-1`, `${prefix}zzzzzzzzzzzz`, `${prefix}0.5`, `X${offset}`, `${prefix}A`, 42 as unknown as string]) {
      persist();
      assert.equal(await adapter.restoreSession('p', bad), null, `offset ${JSON.stringify(bad)}`);
    }
    assert.equal(await adapter.restoreSession('unknown', offset), null);
    persist();
    assert.deepEqual((await adapter.restoreSession('p', offset))!.missedPackets, []);
    assert.equal(await adapter.restoreSession('p', offset), null, 'a session is taken once, as the Redis fleet takes it');
    persist();
    mock.timers.tick(WINDOW_MS + 1);
    assert.equal(await adapter.restoreSession('p', offset), null);
  });

  it('lets go of everything when socket.io closes it', async () => {
    const { adapter, send } = storeOf('ours');
    const offset = send(['room:a'], ['message', {}]) as string;
    adapter.persistSession({ sid: 's', pid: 'p', rooms: ['room:a'], data: {} });
    (adapter as unknown as MemorySessionStore).close();
    assert.equal((adapter as unknown as MemorySessionStore).keptBroadcasts, 0);
    assert.equal(await adapter.restoreSession('p', offset), null);
  });

  it('drops broadcasts one window after they were kept, and finds the later ones after the arrays are cut', async () => {
    const { adapter, send } = storeOf('ours');
    const store = adapter as unknown as MemorySessionStore;
    for (let i = 0; i < 3000; i += 1) send(['room:a'], ['message', { n: i }]);
    mock.timers.tick(WINDOW_MS / 2);
    const offsets = Array.from({ length: 10 }, (_, i) => send(['room:a'], ['message', { n: 3000 + i }]) as string);
    mock.timers.tick(WINDOW_MS / 2 + 1);
    const last = send(['room:a'], ['message', { n: 'last' }]);
    assert.equal(store.keptBroadcasts, 11, 'the 3,000 older ones are gone');
    adapter.persistSession({ sid: 's', pid: 'p', rooms: ['room:a'], data: {} });
    const got = await adapter.restoreSession('p', offsets[4]!);
    assert.deepEqual(got!.missedPackets.map((packet) => (packet[1] as { n: unknown }).n), [3005, 3006, 3007, 3008, 3009, 'last']);
    assert.equal(got!.missedPackets.at(-1)!.at(-1), last);
    mock.timers.tick(WINDOW_MS + 60_000);
    assert.equal(store.keptBroadcasts, 0, 'with nothing broadcast, the periodic sweep drops them');
  });

  it('finds offsets after some broadcasts expired and before the arrays are cut', async () => {
    const { adapter, send } = storeOf('ours');
    const store = adapter as unknown as MemorySessionStore;
    for (let i = 0; i < 10; i += 1) send(['room:a'], ['message', { n: i }]);
    mock.timers.tick(1000);
    const offsets = Array.from({ length: 5 }, (_, i) => send(['room:a'], ['message', { n: 10 + i }]) as string);
    mock.timers.tick(WINDOW_MS - 500);
    send(['room:b'], ['message', { n: 'other room' }]);
    assert.equal(store.keptBroadcasts, 6, 'the first 10 expired');
    adapter.persistSession({ sid: 's', pid: 'p', rooms: ['room:a'], data: {} });
    const got = await adapter.restoreSession('p', offsets[1]!);
    assert.deepEqual(got!.missedPackets.map((packet) => (packet[1] as { n: unknown }).n), [12, 13, 14]);
    assert.deepEqual(got!.missedPackets.map((packet) => packet.at(-1)), offsets.slice(2));
  });

  it('hands out its newest broadcast as a new connection\'s offset only within a second of keeping it', () => {
    const { adapter, send } = storeOf('ours');
    const store = adapter as unknown as MemorySessionStore;
    assert.equal(store.latestOffset(), undefined, 'nothing kept yet');
    send(['room:a'], ['message', {}]);
    const newest = send(['room:b'], ['message', {}]);
    assert.equal(store.latestOffset(), newest);
    mock.timers.tick(1000);
    assert.equal(store.latestOffset(), newest);
    mock.timers.tick(1);
    assert.equal(store.latestOffset(), undefined, 'it would leave the store before the new connection\'s window ends');
  });
});
