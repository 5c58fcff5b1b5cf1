/**
 * What every publish and every delivered broadcast records, kept as plain numbers and handed to prom-client in
 * batches: at each scrape (the metrics' collect hook) and every `limit` records. Why: five labelled prom-client
 * calls a publish (label checks, label hashing, the bucket search) made the publish path's code too big for a
 * core's L2 cache. Batched, that code runs once a batch: `BENCH_CACHE_SIM=1 node_modules/.bin/node
 * test/bench/instructions-per-publish.ts` counted about 1,000 fewer simulated L2 misses a publish, of 6,400.
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

  /** Hands every record to prom-client. */
  flush(): void {
    const n = this.#sources.length;
    if (n === 0) return;
    const targets = this.#targets();
    try {
      this.#apply(targets, n);
    } finally {
      // Emptied whatever happens: a record prom-client refused must not be handed to it again and again.
      this.#sources.length = 0;
      this.#types.length = 0;
      this.#seconds.length = 0;
      this.#counts.length = 0;
    }
  }

  #apply(targets: PublishBatchTargets, n: number): void {
    for (let i = 0; i < n; i++) {
      const source = this.#sources[i]!;
      const type = this.#types[i];
      const seconds = this.#seconds[i]!;
      if (type !== undefined) {
        targets.publishDuration.observe({ source }, seconds);
        targets.publishes.inc({ source });
        targets.messagesOut.inc({ type });
      } else {
        targets.deliveries.inc({ source }, this.#counts[i]!);
        if (!Number.isNaN(seconds)) targets.fanoutLatency.observe({ source }, seconds);
      }
    }
  }

  #record(source: DeliverySource, type: string | undefined, seconds: number, count: number): void {
    this.#sources.push(source);
    this.#types.push(type);
    this.#seconds.push(seconds);
    this.#counts.push(count);
    if (this.#sources.length >= this.#limit) this.flush();
  }
}
