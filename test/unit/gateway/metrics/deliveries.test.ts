/** What a broadcast's local deliveries record: its source (read off the payload), the count, and the latency. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordDeliveries } from '../../../../gateway/src/metrics/deliveries.ts';

function recorder(nowMs: number) {
  const recorded: [string, number, number][] = [];
  const metrics = { publishBatch: { delivered: (source: string, count: number, latency: number) => recorded.push([source, count, latency]) } };
  return { recorded, delivered: recordDeliveries(metrics as never, () => nowMs) };
}

describe('recordDeliveries', () => {
  const sent = '2026-11-24T03:00:00.000Z';
  const sentMs = Date.parse(sent);

  it('records each broadcast once, by source, with the time since its timestamp', () => {
    const { recorded, delivered } = recorder(sentMs + 250);
    delivered(['event', { event_type: 'field.updated', subject: null, timestamp: sent }], 10);
    delivered(['event', { event_type: 'field.updated', subject: 'farm.1.field', timestamp: sent }], 3);
    delivered(['event', { event_type: 'chat.message', timestamp: sent }], 2);
    delivered(['message', { from: { service: 'billing' }, timestamp: sent }], 1);
    delivered(['message', { from: { user_id: 'u1' }, timestamp: sent }], 4);
    delivered(['notification', { title: 't', timestamp: sent }], 5);
    delivered(['presence', { user_id: 'u1', timestamp: sent }], 6);
    assert.deepEqual(recorded, [
      ['http', 10, 0.25], ['nats', 3, 0.25], ['client', 2, 0.25], ['http', 1, 0.25], ['client', 4, 0.25], ['http', 5, 0.25], ['client', 6, 0.25],
    ]);
  });

  it('records no latency without a timestamp, none below zero, and nothing for a direct message', () => {
    const { recorded, delivered } = recorder(sentMs - 1000);
    delivered(['event', { event_type: 'field.updated' }], 1);
    delivered(['event', { event_type: 'field.updated', timestamp: sent }], 1);
    delivered(['connected', { session_id: 's' }], 1);
    delivered(['error', { code: 'x' }], 1);
    assert.equal(recorded.length, 2);
    assert.ok(Number.isNaN(recorded[0]![2]));
    assert.equal(recorded[1]![2], 0);
  });
});
