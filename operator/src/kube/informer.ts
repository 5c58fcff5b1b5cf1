/**
 * List+watch cache of one resource type, with a watchdog.
 *
 * Why not client-node's makeInformer: its informers are known to stop silently (a watch whose TCP
 * connection dies without a FIN never ends, so no error and no restart), to give up after an error
 * unless restarted by hand, and to replay ADDED for every object on restart. This one:
 *  - relists on start, on 410 Gone and on any watch error, diffing the new list against the cache so
 *    handlers see only real changes (a relist never replays the world as new objects);
 *  - asks the server to end each watch after a jittered timeoutSeconds, and a watchdog aborts a
 *    watch that has been silent (no event, no bookmark) for longer than that plus a margin;
 *  - reports `healthy()` for the operator's /healthz: synced and not stuck.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isCode, type KubeClientLike, type WatchEvent } from './client.ts';

export interface Meta {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions {
  /** Collection path, e.g. /apis/apps/v1/deployments (all namespaces). */
  path: string;
  labelSelector?: string;
  /** Server-side watch length in seconds; each watch gets this plus up to 20% jitter. */
  watchSeconds?: number;
  /** Extra silence past the watch length before the watchdog aborts it. */
  watchdogMarginMs?: number;
  /** Delay after an error before relisting (grows up to 30 s). */
  backoffMs?: number;
  onError?: (err: unknown) => void;
  /** Called after each full relist (the operator counts them in rtgw_operator_informer_relists_total). */
  onRelist?: () => void;
  random?: () => number;
}

export function keyOf(o: Meta): string {
  return o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`;
}

interface List<T> {
  metadata: { resourceVersion: string };
  items: T[];
}

export class Informer<T extends Meta> {
  private readonly store = new Map<string, T>();
  private readonly handlers: ((ev: InformerEvent, obj: T, old: T | undefined) => void)[] = [];
  private readonly client: KubeClientLike;
  private readonly opts: Required<Omit<InformerOptions, 'labelSelector' | 'onError' | 'onRelist'>> & Pick<InformerOptions, 'labelSelector' | 'onError' | 'onRelist'>;
  private readonly stop = new AbortController();
  private synced = false;
  private lastActivity = Date.now();
  private resourceVersion = '';
  private running: Promise<void> | undefined;
  private syncWaiters: (() => void)[] = [];
  /** Relists so far; tests and metrics read it. */
  relists = 0;

  constructor(client: KubeClientLike, opts: InformerOptions) {
    this.client = client;
    this.opts = { watchSeconds: 300, watchdogMarginMs: 30_000, backoffMs: 500, random: Math.random, ...opts };
  }

  on(handler: (ev: InformerEvent, obj: T, old: T | undefined) => void): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Synced and the watch has shown a sign of life within the watchdog window. */
  healthy(now = Date.now()): boolean {
    return this.synced && now - this.lastActivity < this.opts.watchSeconds * 1200 + this.opts.watchdogMarginMs * 2;
  }

  start(): Promise<void> {
    this.running ??= this.loop();
    return this.waitForSync();
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.running?.catch(() => undefined);
  }

  private emit(ev: InformerEvent, obj: T, old: T | undefined): void {
    for (const h of this.handlers) {
      try {
        h(ev, obj, old);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.request<List<T>>('GET', this.opts.path, {
      query: { labelSelector: this.opts.labelSelector },
      signal: this.stop.signal,
    });
    this.relists++;
    this.opts.onRelist?.();
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = keyOf(item);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, item);
      if (old === undefined) this.emit('add', item, undefined);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit('update', item, old);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('delete', old, old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
    this.lastActivity = Date.now();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private apply(e: WatchEvent<T>): void {
    this.lastActivity = Date.now();
    if (e.type === 'ERROR') {
      const status = e.object as unknown as { code?: number; message?: string };
      throw Object.assign(new Error(`watch error ${status.code ?? ''}: ${status.message ?? ''}`), { gone: status.code === 410 });
    }
    const rv = e.object.metadata.resourceVersion;
    if (rv !== undefined) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return;
    const key = keyOf(e.object);
    const old = this.store.get(key);
    if (e.type === 'DELETED') {
      this.store.delete(key);
      this.emit('delete', e.object, old);
    } else {
      this.store.set(key, e.object);
      this.emit(old === undefined ? 'add' : 'update', e.object, old);
    }
  }

  private async watchOnce(): Promise<void> {
    const seconds = Math.round(this.opts.watchSeconds * (1 + 0.2 * this.opts.random()));
    const ctl = new AbortController();
    const onStop = () => ctl.abort();
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    this.lastActivity = Date.now();
    // The watchdog: a silent watch past its own deadline is a dead connection nobody told us about.
    const dog = setInterval(() => {
      if (Date.now() - this.lastActivity > seconds * 1000 + this.opts.watchdogMarginMs) ctl.abort();
    }, Math.min(5_000, this.opts.watchdogMarginMs));
    try {
      await this.client.watch<T>(
        this.opts.path,
        { labelSelector: this.opts.labelSelector, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: seconds },
        (e) => this.apply(e),
        ctl.signal,
      );
    } finally {
      clearInterval(dog);
      this.stop.signal.removeEventListener('abort', onStop);
    }
    if (ctl.signal.aborted && !this.stop.signal.aborted) throw new Error('watchdog: watch went silent');
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let needList = true;
    while (!this.stop.signal.aborted) {
      try {
        if (needList) await this.relist();
        needList = false;
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stop.signal.aborted) break;
        // 410 Gone: our resourceVersion is too old to watch from. Anything else: assume we missed
        // events. Either way the cure is a relist, which diffs against the cache.
        needList = true;
        if (!isCode(err, 'Gone') && (err as { gone?: boolean }).gone !== true) this.opts.onError?.(err);
        failures++;
        const delay = Math.min(30_000, this.opts.backoffMs * 2 ** Math.min(failures - 1, 6));
        await sleep(delay * (0.5 + this.opts.random()), undefined, { signal: this.stop.signal }).catch(() => undefined);
      }
    }
  }
}
