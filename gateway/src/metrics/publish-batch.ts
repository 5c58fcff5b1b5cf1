/**
 * What every publish and every delivered broadcast records, kept as plain numbers and handed to prom-client in
 * batches: at each scrape (the metrics' collect hook), and soon after `limit` records (on setImmediate, so no
 * publish waits for it or times it; synchronously only at four times the limit, to bound memory).
 *
 * Why: five labelled prom-client calls a publish (label checks, label hashing, the bucket search) made the
 * publish path's code too big for a core's L2 cache. Batched, that code runs once a batch: `BENCH_CACHE_SIM=1
 * node_modules/.bin/node test/bench/instructions-per-publish.ts` counted about 1,000 fewer simulated L2 misses a
 * publish, of 6,400.
 */
import type { Counter, Histogram } from 'prom-client';
import type { DeliverySource } from './metrics.ts';

/** The prom-client metrics the batch feeds. */
export interface PublishBatchTargets {
  readonly publishes: Counter<'source'>;
  readonly messagesOut: Counter<'type'>;
  readonly publishDuration: Histogram<'source'>;
  readonly deliveries: Counter<'source'>;
  readonly fanoutLatency: Histogram<'source'>;
}

export class PublishBatch {
  readonly #targets: () => PublishBatchTargets;
  readonly #limit: number;
  #flushScheduled = false;
  // One record per entry: a publish (type set) or a delivered broadcast (type undefined).
  readonly #sources: DeliverySource[] = [];
  readonly #types: (string | undefined)[] = [];
  /** A publish: how long its hand-off took, seconds. A delivery: publish-to-delivery latency, seconds (NaN: none). */
  readonly #seconds: number[] = [];
  /** A delivery: how many connections got it. */
  readonly #counts: number[] = [];

  /** `targets` is read at flush time: the metrics are built after the batch their collect hooks flush. */
  constructor(targets: () => PublishBatchTargets, limit = 512) {
    this.#targets = targets;
    this.#limit = limit;
  }

  /** A publish handed to the fan-out: its source, its event type, and how long the hand-off took. */
  published(source: DeliverySource, type: string, seconds: number): void {
    this.#record(source, type, seconds, 0);
  }

  /** A broadcast delivered to `count` connections on this replica, `latencySeconds` after its timestamp (NaN: it had none). */
  delivered(source: DeliverySource, count: number, latencySeconds: number): void {
    this.#record(source, undefined, latencySeconds, count);
  }

  /**
   * Hands every record to prom-client. Never throws: a record prom-client refuses (none of ours can be) is
   * dropped on its own, the others still count, and whoever flushed (a publish, a scrape) is not disturbed.
   */
  flush(): void {
    const n = this.#sources.length;
    if (n === 0) return;
    const targets = this.#targets();
    for (let i = 0; i < n; i++) {
      try {
        this.#apply(targets, this.#sources[i]!, this.#types[i], this.#seconds[i]!, this.#counts[i]!);
      } catch {
        // Dropped: see above.
      }
    }
    this.#sources.length = 0;
    this.#types.length = 0;
    this.#seconds.length = 0;
    this.#counts.length = 0;
  }

  #apply(targets: PublishBatchTargets, source: DeliverySource, type: string | undefined, seconds: number, count: number): void {
    if (type !== undefined) {
      targets.publishDuration.observe({ source }, seconds);
      targets.publishes.inc({ source });
      targets.messagesOut.inc({ type });
    } else {
      targets.deliveries.inc({ source }, count);
      if (!Number.isNaN(seconds)) targets.fanoutLatency.observe({ source }, seconds);
    }
  }

  #record(source: DeliverySource, type: string | undefined, seconds: number, count: number): void {
    this.#sources.push(source);
    this.#types.push(type);
    this.#seconds.push(seconds);
    this.#counts.push(count);
    const size = this.#sources.length;
    if (size >= 4 * this.#limit) this.flush();
    else if (size >= this.#limit && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
  }
}
