/**
 * Counts deliveries on this replica, whatever replica published them, and how long after publishing they
 * arrived: what fanout/local-delivery.ts reports once per broadcast, at no cost per recipient beyond a counter
 * increment.
 */
import type { GatewayMetrics, DeliverySource } from './metrics.ts';
import type { Delivered } from '../fanout/local-delivery.ts';
import { timestampMs } from '../protocol/server-messages.ts';

/** Where a broadcast came from, read off its payload (bounded: four values). */
function deliverySource(event: unknown, payload: unknown): DeliverySource | 'direct' {
  const body = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  switch (event) {
    case 'event':
      if (typeof body['subject'] === 'string') return 'nats';
      return typeof body['event_type'] === 'string' && body['event_type'].startsWith('chat.') ? 'client' : 'http';
    case 'message':
      return typeof (body['from'] as Record<string, unknown> | undefined)?.['service'] === 'string' ? 'http' : 'client';
    case 'notification':
      return 'http';
    case 'presence':
      return 'client';
    default:
      return 'direct';
  }
}

/** Records a broadcast's local deliveries and their latency (from its payload's timestamp), unless it was a direct message. */
export function recordDeliveries(metrics: GatewayMetrics, now: () => number = Date.now): Delivered {
  return ([event, payload], count) => {
    const source = deliverySource(event, payload);
    if (source === 'direct') return;
    const sent = timestampMs((payload as Record<string, unknown> | undefined)?.['timestamp']);
    metrics.publishBatch.delivered(source, count, Number.isFinite(sent) ? Math.max(0, now() - sent) / 1000 : NaN);
  };
}
