import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../../operator/src/kube/queue.ts';

function fakeTimers() {
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  let id = 0;
  return {
    timers,
    setTimer: (fn: () => void, ms: number) => { timers.push({ fn, ms, id: ++id }); return id; },
    clearTimer: (t: unknown) => { const i = timers.findIndex((x) => x.id === t); if (i >= 0) timers.splice(i, 1); },
    fire: () => { for (const t of timers.splice(0)) t.fn(); },
  };
}

test('a key added many times is queued once', async () => {
  const q = new WorkQueue();
  q.add('a/x'); q.add('a/x'); q.add('a/y'); q.add('a/x');
  assert.equal(q.depth, 2);
  assert.equal(await q.get(), 'a/x');
  assert.equal(await q.get(), 'a/y');
});

test('one reconcile in flight per key: an add during processing requeues after done', async () => {
  const q = new WorkQueue();
  q.add('k');
  const k = await q.get();
  q.add('k');
  assert.equal(q.depth, 0, 'not handed to a second worker while in flight');
  q.done(k!);
  assert.equal(q.depth, 1);
  assert.equal(await q.get(), 'k');
});

test('a waiting worker gets a key as soon as it is added', async () => {
  const q = new WorkQueue();
  const next = q.get();
  q.add('k');
  assert.equal(await next, 'k');
  q.add('k');
  assert.equal(q.depth, 0);
  q.done('k');
  assert.equal(await q.get(), 'k');
});

test('per-key exponential backoff, capped, reset by forget', () => {
  const t = fakeTimers();
  const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, setTimer: t.setTimer, clearTimer: t.clearTimer });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('k')), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(q.addRateLimited('other'), 100);
  assert.equal(t.timers.length, 2, 'one pending timer per key');
  t.fire();
  assert.equal(q.depth, 2);
  q.forget('k');
  assert.equal(q.addRateLimited('k'), 100);
});

test('shutDown releases waiting workers and drops delayed adds', async () => {
  const t = fakeTimers();
  const q = new WorkQueue({ setTimer: t.setTimer, clearTimer: t.clearTimer });
  const w = q.get();
  q.addAfter('k', 50);
  q.shutDown();
  assert.equal(await w, undefined);
  assert.equal(t.timers.length, 0);
  q.add('k');
  assert.equal(await q.get(), undefined);
});
