/**
 * The recovery offset a new connection gets on one replica without Redis: the in-memory store's newest broadcast,
 * only while it is fresh (the store drops it one window after it was kept).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keepsPackets, latestBufferedOffset } from '../../../../gateway/src/fanout/memory-store.ts';

describe('latestBufferedOffset', () => {
  const now = 1_000_000;
  it('is the newest kept broadcast when it was kept within the last second', () => {
    assert.equal(latestBufferedOffset({ packets: [{ id: 'a', emittedAt: now - 5000 }, { id: 'b', emittedAt: now - 1000 }] }, now), 'b');
  });
  it('is undefined when the newest is older (it would expire before the new connection\'s window ends), or none is kept', () => {
    assert.equal(latestBufferedOffset({ packets: [{ id: 'a', emittedAt: now - 1001 }] }, now), undefined);
    assert.equal(latestBufferedOffset({ packets: [] }, now), undefined);
    assert.equal(latestBufferedOffset({}, now), undefined);
  });
});

describe('keepsPackets', () => {
  it('tells socket.io\'s in-memory store (a packets array) from adapters without one', () => {
    assert.equal(keepsPackets({ packets: [] }), true);
    assert.equal(keepsPackets({ rooms: new Map() }), false);
  });
});
