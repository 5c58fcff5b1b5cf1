import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Informer, type Meta } from '../../../operator/src/kube/informer.ts';
import { KubeApiError, type KubeClientLike, type WatchEvent } from '../../../operator/src/kube/client.ts';

type Obj = Meta & { v: number };
const obj = (name: string, rv: string, v = 0): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion: rv }, v });

/** A scripted API server: each list() and watch() call takes the next step. */
function fakeClient(lists: Obj[][], watches: ((emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) => Promise<void>)[]) {
  const calls: string[] = [];
  const client: KubeClientLike = {
    async request<T>(): Promise<T> {
      const items = lists.shift();
      if (items === undefined) throw new Error('no more lists');
      calls.push('list');
      return { metadata: { resourceVersion: String(100 + calls.length) }, items } as T;
    },
    async watch<T>(_p: string, q: Record<string, unknown>, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
      calls.push(`watch@${String(q.resourceVersion)}`);
      const w = watches.shift();
      if (w === undefined) return new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
      return w(onEvent as (e: WatchEvent<Obj>) => void, signal);
    },
  };
  return { client, calls };
}

test('list, then watch from the list resourceVersion; events update the cache and reach handlers', async () => {
  const { client, calls } = fakeClient([[obj('a', '1')]], [async (emit) => {
    emit({ type: 'ADDED', object: obj('b', '2') });
    emit({ type: 'MODIFIED', object: obj('a', '3', 1) });
    emit({ type: 'BOOKMARK', object: obj('', '4') });
    emit({ type: 'DELETED', object: obj('b', '5') });
  }]);
  const inf = new Informer<Obj>(client, { path: '/x', backoffMs: 1 });
  const seen: string[] = [];
  inf.on((ev, o) => seen.push(`${ev}:${o.metadata.name}`));
  await inf.start();
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(seen, ['add:a', 'add:b', 'update:a', 'delete:b']);
  assert.equal(inf.get('ns/a')?.v, 1);
  assert.equal(inf.list().length, 1);
  assert.equal(calls[1], 'watch@101');
  assert.equal(calls[2], 'watch@5', 'the next watch resumes from the last resourceVersion seen, bookmarks included');
  await inf.close();
});

test('410 Gone relists, and the relist is diffed: only real changes reach handlers, never a replay', async () => {
  const { client, calls } = fakeClient(
    [[obj('a', '1'), obj('b', '1')], [obj('a', '1'), obj('c', '7')]],
    [async () => { throw new KubeApiError('Gone', 410, 'too old'); }],
  );
  let relisted = 0;
  const inf = new Informer<Obj>(client, { path: '/x', backoffMs: 1, random: () => 0, onRelist: () => relisted++ });
  const seen: string[] = [];
  await inf.start();
  inf.on((ev, o) => seen.push(`${ev}:${o.metadata.name}`));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(calls.slice(0, 3), ['list', 'watch@101', 'list']);
  assert.deepEqual(seen.sort(), ['add:c', 'delete:b']);
  assert.equal(inf.relists, 2);
  assert.equal(relisted, 2, 'onRelist (rtgw_operator_informer_relists_total) hears each relist');
  await inf.close();
});

test('the watchdog aborts a watch that went silent (a dead connection) and relists', async () => {
  let aborted = 0;
  const { client, calls } = fakeClient([[obj('a', '1')], [obj('a', '2', 9)]], [
    (_emit, signal) => new Promise((resolve) => signal.addEventListener('abort', () => { aborted++; resolve(); })),
  ]);
  const inf = new Informer<Obj>(client, { path: '/x', watchSeconds: 0, watchdogMarginMs: 20, backoffMs: 1, random: () => 0 });
  await inf.start();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(aborted, 1);
  assert.equal(calls[2], 'list');
  assert.equal(inf.get('ns/a')?.v, 9);
  await inf.close();
});

test('a watch error event (expired) is a relist too', async () => {
  const { client, calls } = fakeClient([[], []], [async (emit) => {
    emit({ type: 'ERROR', object: { code: 410, message: 'expired' } as unknown as Obj });
  }]);
  const inf = new Informer<Obj>(client, { path: '/x', backoffMs: 1, random: () => 0 });
  await inf.start();
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(calls.slice(0, 3), ['list', 'watch@101', 'list']);
  assert.ok(inf.healthy());
  await inf.close();
});
