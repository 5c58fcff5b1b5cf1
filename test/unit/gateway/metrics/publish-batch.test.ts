/**
 * The fan-out's publish and delivery figures reach prom-client in batches: nothing on the publish path, all of
 * it at a scrape or when the batch is full.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../../../gateway/src/metrics/metrics.ts';
import { PublishBatch } from '../../../../gateway/src/metrics/publish-batch.ts';

const sample = async (metrics: ReturnType<typeof createMetrics>, name: string, labels: string): Promise<number | undefined> => {
  const line = (await metrics.metricsText()).split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('PublishBatch', () => {
  it('hands publishes and deliveries to prom-client when scraped, each once', async () => {
    const metrics = createMetrics(() => ({ ready: true, redisConnected: undefined, connectionsByTransport: new Map(), rooms: 0, connectionsByRoomType: new Map() }));
    metrics.publishBatch.published('http', 'event', 0.0003);
    metrics.publishBatch.published('http', 'event', 0.002);
    metrics.publishBatch.published('nats', 'message', 0.0001);
    metrics.publishBatch.delivered('http', 10, 0.004);
    metrics.publishBatch.delivered('nats', 3, NaN);
    assert.equal(await sample(metrics, 'rtgw_publishes_total', 'source="http"'), 2);
    assert.equal(await sample(metrics, 'rtgw_publishes_total', 'source="nats"'), 1);
    assert.equal(await sample(metrics, 'rtgw_messages_out_total', 'type="event"'), 2);
    assert.equal(await sample(metrics, 'rtgw_messages_out_total', 'type="message"'), 1);
    assert.equal(await sample(metrics, 'rtgw_publish_duration_seconds_bucket', 'le="0.0005",source="http"'), 1);
    assert.equal(await sample(metrics, 'rtgw_publish_duration_seconds_count', 'source="http"'), 2);
    assert.equal(await sample(metrics, 'rtgw_deliveries_total', 'source="http"'), 10);
    assert.equal(await sample(metrics, 'rtgw_deliveries_total', 'source="nats"'), 3);
    assert.equal(await sample(metrics, 'rtgw_fanout_latency_seconds_count', 'source="http"'), 1);
    // A broadcast without a timestamp has no latency to observe.
    assert.equal(await sample(metrics, 'rtgw_fanout_latency_seconds_count', 'source="nats"'), undefined);
    // Later scrapes (each sample() is one) add nothing: the batch was emptied.
    assert.equal(await sample(metrics, 'rtgw_publishes_total', 'source="http"'), 2);
  });

  it('flushes by itself soon after it is full, outside the publish that filled it, and at once at four times full', async () => {
    const seen: number[] = [];
    const counter = { inc: (_labels: unknown, value = 1) => void seen.push(value) };
    const histogram = { observe: () => undefined };
    const batch = new PublishBatch(() => ({ publishes: counter, messagesOut: counter, deliveries: counter, publishDuration: histogram, fanoutLatency: histogram } as never), 4);
    for (let i = 1; i <= 4; i++) batch.delivered('http', i, 0.001);
    assert.deepEqual(seen, [], 'not inside the call that filled it');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [1, 2, 3, 4]);
    for (let i = 5; i <= 20; i++) batch.delivered('http', i, 0.001);
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 1), 'synchronously at 16 records');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen.length, 20, 'the flush scheduled meanwhile finds nothing left');
  });

  it('never throws: a record prom-client refuses is dropped on its own, the others count, none is handed over twice', () => {
    const seen: number[] = [];
    const refusing = { inc: (_labels: unknown, value = 1) => { if (value === 2) throw new TypeError('refused'); seen.push(value); } };
    const histogram = { observe: () => undefined };
    const batch = new PublishBatch(() => ({ publishes: refusing, messagesOut: refusing, deliveries: refusing, publishDuration: histogram, fanoutLatency: histogram } as never));
    for (const count of [1, 2, 3]) batch.delivered('http', count, 0.001);
    batch.flush();
    batch.flush();
    assert.deepEqual(seen, [1, 3]);
  });
});
