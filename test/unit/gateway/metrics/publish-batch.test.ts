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
    // A second scrape adds nothing: the batch was emptied.
    assert.equal(await sample(metrics, 'rtgw_publishes_total', 'source="http"'), 2);
  });

  it('flushes by itself when full, so an unscraped gateway holds at most one batch', () => {
    const seen: number[] = [];
    const counter = { inc: (_labels: unknown, value = 1) => void seen.push(value) };
    const histogram = { observe: () => undefined };
    const batch = new PublishBatch(() => ({ publishes: counter, messagesOut: counter, deliveries: counter, publishDuration: histogram, fanoutLatency: histogram } as never), 4);
    for (let i = 0; i < 3; i++) batch.delivered('http', i + 1, 0.001);
    assert.deepEqual(seen, []);
    batch.delivered('http', 4, 0.001);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    batch.delivered('http', 5, 0.001);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    batch.flush();
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  });

  it('is emptied even when prom-client refuses a record, so the record is not handed over again', () => {
    let calls = 0;
    const refusing = { inc: () => { calls += 1; throw new TypeError('refused'); } };
    const histogram = { observe: () => undefined };
    const batch = new PublishBatch(() => ({ publishes: refusing, messagesOut: refusing, deliveries: refusing, publishDuration: histogram, fanoutLatency: histogram } as never));
    batch.delivered('http', 1, 0.001);
    assert.throws(() => batch.flush(), /refused/);
    batch.flush();
    assert.equal(calls, 1);
  });
});
