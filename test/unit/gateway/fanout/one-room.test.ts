/** The single-room delivery path against socket.io's real in-memory adapter: same recipients as the stock path. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Adapter } from 'socket.io-adapter';
import { deliverOneRoomDirectly } from '../../../../gateway/src/fanout/one-room.ts';

function adapterWith(members: Record<string, string[]>, fast: boolean) {
  const sockets = new Map<string, { id: string }>();
  const adapter = new Adapter({ sockets, name: '/', server: { encoder: { encode: () => [] } } } as never);
  for (const [id, rooms] of Object.entries(members)) {
    sockets.set(id, { id });
    adapter.addAll(id, new Set([id, ...rooms]));
  }
  if (fast) deliverOneRoomDirectly(adapter);
  return adapter;
}

function recipients(adapter: Adapter, rooms: string[], except: string[] = []): string[] {
  const got: string[] = [];
  // apply is what broadcast() calls for every delivery; private in the typings.
  const { apply } = adapter as unknown as { apply(options: unknown, callback: (socket: { id: string }) => void): void };
  apply.call(adapter, { rooms: new Set(rooms), except: new Set(except) }, (socket) => got.push(socket.id));
  return got.sort();
}

describe('deliverOneRoomDirectly', () => {
  const members = { a: ['r1', 'r2'], b: ['r1'], c: ['r2'], d: [] };
  const cases: [string, string[], string[]][] = [
    ['one room', ['r1'], []],
    ['one room, except a member', ['r1'], ['a']],
    ['one room, except another room', ['r1'], ['r2']],
    ['an unknown room', ['nobody'], []],
    ['two overlapping rooms (the stock path, once each)', ['r1', 'r2'], []],
    ['everyone', [], []],
    ['everyone except a room', [], ['r1']],
  ];
  for (const [name, rooms, except] of cases) {
    it(`reaches the same connections as the stock adapter: ${name}`, () => {
      assert.deepEqual(recipients(adapterWith(members, true), rooms, except), recipients(adapterWith(members, false), rooms, except));
    });
  }
  it('skips members whose socket is gone, and reaches each member once', () => {
    const adapter = adapterWith(members, true);
    (adapter.nsp.sockets as Map<string, unknown>).delete('b');
    assert.deepEqual(recipients(adapter, ['r1']), ['a']);
    assert.deepEqual(recipients(adapter, ['r2']), ['a', 'c']);
  });
});
