/**
 * deliverLocally against socket.io's real in-memory adapter and encoder: the same recipients as the stock walk, and
 * each broadcast's local recipients reported once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Adapter } from 'socket.io-adapter';
import { Encoder } from 'socket.io-parser';
import { deliverLocally } from '../../../../gateway/src/fanout/local-delivery.ts';

interface Reported {
  data: readonly unknown[];
  count: number;
}

function adapterWith(members: Record<string, string[]>, installed: boolean, reported: Reported[] = []) {
  const sockets = new Map<string, { id: string; client: { writeToEngine(): void } }>();
  const adapter = new Adapter({ sockets, name: '/', server: { encoder: new Encoder() } } as never);
  for (const [id, rooms] of Object.entries(members)) {
    sockets.set(id, { id, client: { writeToEngine: () => {} } });
    adapter.addAll(id, new Set([id, ...rooms]));
  }
  if (installed) deliverLocally(adapter, (data, count) => reported.push({ data, count }));
  return adapter;
}

/** What the adapter's apply reaches (broadcast calls it for every delivery; private in the typings). */
function recipients(adapter: Adapter, rooms: string[], except: string[] = []): string[] {
  const got: string[] = [];
  const { apply } = adapter as unknown as { apply(options: unknown, callback: (socket: { id: string }) => void): void };
  apply.call(adapter, { rooms: new Set(rooms), except: new Set(except) }, (socket) => got.push(socket.id));
  return got.sort();
}

function broadcast(adapter: Adapter, data: unknown[], rooms: string[], except: string[] = []): void {
  adapter.broadcast({ type: 2, nsp: '/', data } as never, { rooms: new Set(rooms), except: new Set(except), flags: {} });
}

describe('deliverLocally', () => {
  const members = { a: ['r1', 'r2'], b: ['r1'], c: ['r2'], d: [] };
  const cases: [string, string[], string[]][] = [
    ['one room', ['r1'], []],
    ['one room, except a member', ['r1'], ['a']],
    ['one room, except another room', ['r1'], ['r2']],
    ['an unknown room', ['nobody'], []],
    ['two overlapping rooms (the stock walk, once each)', ['r1', 'r2'], []],
    ['everyone', [], []],
    ['everyone except a room', [], ['r1']],
  ];
  for (const [name, rooms, except] of cases) {
    it(`reaches the same connections as the stock adapter: ${name}`, () => {
      assert.deepEqual(recipients(adapterWith(members, true), rooms, except), recipients(adapterWith(members, false), rooms, except));
    });
  }

  it('skips members whose socket is gone', () => {
    const adapter = adapterWith(members, true);
    (adapter.nsp.sockets as Map<string, unknown>).delete('b');
    assert.deepEqual(recipients(adapter, ['r1']), ['a']);
    assert.deepEqual(recipients(adapter, ['r2']), ['a', 'c']);
  });

  it('reports each broadcast once with its data and how many local connections it reached', () => {
    const reported: Reported[] = [];
    const adapter = adapterWith(members, true, reported);
    const data = ['event', { n: 1 }];
    broadcast(adapter, data, ['r1']);
    broadcast(adapter, data, ['r1'], ['a']);
    broadcast(adapter, data, ['r1', 'r2']);
    broadcast(adapter, data, []);
    assert.deepEqual(reported.map((r) => r.count), [2, 1, 3, 4]);
    assert.equal(reported[0]!.data, data);
  });

  it('reports nothing for a broadcast that reached no one, or for a walk that was not a broadcast (fetchSockets)', async () => {
    const reported: Reported[] = [];
    const adapter = adapterWith(members, true, reported);
    broadcast(adapter, ['event', {}], ['nobody']);
    assert.equal((await adapter.fetchSockets({ rooms: new Set(['r2']) })).length, 2);
    broadcast(adapter, ['event', {}], ['r1'], ['r1']);
    assert.equal((await adapter.fetchSockets({ rooms: new Set(['r1']) })).length, 2);
    assert.equal((await adapter.fetchSockets({ rooms: new Set(['r1', 'r2']) })).length, 3);
    assert.deepEqual(reported, []);
  });

  it('leaves nothing to count when a broadcast\'s encoding throws', async () => {
    const reported: Reported[] = [];
    const adapter = adapterWith(members, true, reported);
    (adapter as unknown as { encoder: unknown }).encoder = { encode: () => { throw new Error('unencodable'); } };
    assert.throws(() => broadcast(adapter, ['event', {}], ['r1']), /unencodable/);
    assert.equal((await adapter.fetchSockets({ rooms: new Set(['r1']) })).length, 2);
    assert.deepEqual(reported, []);
  });
});
