/**
 * Counts deliveries on this replica, whatever replica published them, and how long after publishing they
 * arrived. socket.io's adapter encodes a broadcast (`_encode`) and then writes it to each local member
 * (`apply`); wrapping those two instance methods sees every broadcast once, with its packet, at no cost per
 * recipient beyond a counter increment.
 */
import type { GatewayMetrics, DeliverySource } from './metrics.ts';
import { timestampMs } from '../protocol/server-messages.ts';

interface Packet {
  data?: unknown[];
}

interface AdapterInternals {
  _encode(packet: Packet, options: unknown): unknown;
  apply(options: unknown, callback: (socket: unknown) => void): void;
}

/** Where a broadcast came from, read off its payload (bounded: four values). */
export function deliverySource(event: unknown, payload: unknown): DeliverySource | 'direct' {
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

export function countDeliveries(adapter: unknown, metrics: GatewayMetrics, now: () => number = Date.now): void {
  const internals = adapter as AdapterInternals;
  const encode = internals._encode.bind(internals);
  const apply = internals.apply.bind(internals);
  let current: Packet | undefined;
  internals._encode = (packet, options) => {
    current = packet;
    return encode(packet, options);
  };
  internals.apply = (options, callback) => {
    const packet = current;
    current = undefined;
    if (!packet) return apply(options, callback);
    let delivered = 0;
    apply(options, (socket) => {
      delivered += 1;
      callback(socket);
    });
    if (delivered === 0) return;
    const [event, payload] = packet.data ?? [];
    const source = deliverySource(event, payload);
    if (source === 'direct') return;
    const sent = timestampMs((payload as Record<string, unknown> | undefined)?.['timestamp']);
    metrics.publishBatch.delivered(source, delivered, Number.isFinite(sent) ? Math.max(0, now() - sent) / 1000 : NaN);
  };
}
