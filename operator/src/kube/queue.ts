/**
 * A rate-limited work queue keyed by namespace/name, with client-go's workqueue semantics:
 *  - a key is queued at most once however many events name it (level-triggered: the reconcile reads
 *    the current state, not the event);
 *  - a key is processed by at most one worker at a time; an add while it is in flight marks it dirty
 *    and it is queued again when the worker finishes;
 *  - per-key exponential backoff after failures, reset by a success.
 * Timers are injectable so unit tests run without waiting.
 */

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, unknown>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly opts: Required<QueueOptions>;
  private shuttingDown = false;

  constructor(opts: QueueOptions = {}) {
    this.opts = {
      baseDelayMs: 200,
      maxDelayMs: 60_000,
      setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
      clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
      ...opts,
    };
  }

  /** Queued keys not yet picked up (the queue-depth metric). */
  get depth(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    const w = this.waiters.shift();
    if (w !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      w(key);
    } else this.queue.push(key);
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const prev = this.delayed.get(key);
    if (prev !== undefined) this.opts.clearTimer(prev);
    this.delayed.set(key, this.opts.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms));
  }

  /** Requeue after a failure, waiting base * 2^(failures-1), capped. Returns the delay. */
  addRateLimited(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (n - 1));
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Next key to work on; undefined once shut down. Call done(key) when finished. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.delayed.values()) this.opts.clearTimer(t);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
