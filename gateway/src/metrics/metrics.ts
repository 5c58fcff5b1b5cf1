/**
 * The gateway's Prometheus metrics (they replace seed 000's /stats). One registry per gateway instance, passed
 * explicitly: no default global registry. Gauges that describe current state are computed at scrape time from a
 * snapshot function, so the hot path only increments counters; the fan-out's per-publish figures are batched
 * (publish-batch.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PublishBatch } from './publish-batch.ts';

export interface GatewaySnapshot {
  /** What /readyz answers: not draining and every dependency healthy. */
  readonly ready: boolean;
  /** undefined without REDIS_URL. */
  readonly redisConnected: boolean | undefined;
  readonly connectionsByTransport: ReadonlyMap<string, number>;
  readonly rooms: number;
  readonly connectionsByRoomType: ReadonlyMap<string, number>;
}

export type DeliverySource = 'client' | 'http' | 'nats';

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly connects: Counter<'transport'>;
  readonly disconnects: Counter<'transport' | 'reason'>;
  readonly messagesIn: Counter<'type'>;
  readonly messagesOut: Counter<'type'>;
  readonly publishes: Counter<'source'>;
  readonly deliveries: Counter<'source'>;
  readonly errorReplies: Counter<'code'>;
  readonly authFailures: Counter<'reason'>;
  readonly authSuccesses: Counter<'source'>;
  readonly rateLimited: Counter<'scope'>;
  readonly deprecatedTokenUse: Counter;
  readonly sessionRecoveries: Counter<'transport' | 'result'>;
  readonly publishDuration: Histogram<'source'>;
  /** NATS bridge: messages handled, by outcome (delivered, dropped). */
  readonly natsMessages: Counter<'outcome'>;
  /** NATS bridge: dropped messages, by reason (invalid_payload, no_tenant, invalid_tenant, publish_failed). */
  readonly natsDropped: Counter<'reason'>;
  /** NATS bridge: 1 while connected (and subscribed), else 0. */
  readonly natsConnected: Gauge;
  readonly fanoutLatency: Histogram<'source'>;
  /** How the fan-out records publishes and deliveries (publishes, messagesOut, publishDuration, deliveries, fanoutLatency): batched. */
  readonly publishBatch: PublishBatch;
  metricsText(): Promise<string>;
}

/** prom-client's default gauges that end in _total, which Prometheus's naming rules (promtool) refuse; each has a correctly named twin. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetrics(snapshot: () => GatewaySnapshot, options: { redis: boolean; nats?: boolean } = { redis: false }): GatewayMetrics {
  const registry = new Registry();
  // Without NATS_URL the bridge's metrics exist (the bridge code needs no branches) but are not exported, so a
  // gateway without NATS does not look like one whose NATS is down.
  const natsRegistries = options.nats ? [registry] : [];
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);

  new Gauge({
    name: 'rtgw_ready',
    help: '1 when this replica is ready (what /readyz answers): not draining, and Redis and NATS healthy where configured.',
    registers: [registry],
    collect() {
      this.set(snapshot().ready ? 1 : 0);
    },
  });
  if (options.redis) {
    new Gauge({
      name: 'rtgw_redis_connected',
      help: '1 while every Redis connection of this replica (commands, stream reader, Pub/Sub) is ready.',
      registers: [registry],
      collect() {
        this.set(snapshot().redisConnected ? 1 : 0);
      },
    });
  }

  new Gauge({
    name: 'rtgw_connections',
    help: 'Open client connections on this replica, by transport (socketio, ws).',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [transport, count] of snapshot().connectionsByTransport) this.set({ transport }, count);
    },
  });
  new Gauge({
    name: 'rtgw_rooms',
    help: 'Tenant-scoped rooms with at least one member on this replica.',
    registers: [registry],
    collect() {
      this.set(snapshot().rooms);
    },
  });
  new Gauge({
    name: 'rtgw_room_memberships',
    help: 'Connections in rooms on this replica, by room type (seed 000 connections_by_room_type).',
    labelNames: ['room_type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [roomType, count] of snapshot().connectionsByRoomType) this.set({ room_type: roomType }, count);
    },
  });

  // The metrics the fan-out feeds through the batch flush it when scraped (prom-client's collect hook).
  const publishBatch = new PublishBatch(() => metrics);
  const flushBatch = () => publishBatch.flush();
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], collect?: () => void) =>
    new Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry], ...(collect ? { collect } : {}) });

  const metrics: GatewayMetrics = {
    registry,
    connects: counter('rtgw_connects_total', 'Accepted client connections, by transport.', ['transport']),
    disconnects: counter('rtgw_disconnects_total', 'Closed client connections, by transport and reason.', ['transport', 'reason']),
    messagesIn: counter('rtgw_messages_in_total', 'Client messages received, by type (unknown types counted as "unknown").', ['type']),
    messagesOut: counter('rtgw_messages_out_total', 'Messages the gateway published or replied, by type.', ['type'], flushBatch),
    publishes: counter('rtgw_publishes_total', 'Publishes to a room or user, by source (client, http, nats).', ['source'], flushBatch),
    deliveries: counter('rtgw_deliveries_total', 'Messages delivered to connections on this replica, by source (client, http, nats), wherever they were published.', ['source'], flushBatch),
    errorReplies: counter('rtgw_error_replies_total', 'Error replies sent to clients, by error code.', ['code']),
    authFailures: counter('rtgw_auth_failures_total', 'Refused authentications, by reason.', ['reason']),
    authSuccesses: counter('rtgw_auth_successes_total', 'Accepted authentications, by token source (header, auth, query).', ['source']),
    rateLimited: counter('rtgw_rate_limited_total', 'Refusals by a limit: message rate, or connections per ip/user/tenant.', ['scope']),
    deprecatedTokenUse: new Counter({
      name: 'rtgw_deprecated_token_query_total',
      help: 'Connections that passed their token in the ?token= query parameter (deprecated).',
      registers: [registry],
    }),
    sessionRecoveries: counter(
      'rtgw_session_recoveries_total',
      'Reconnections that asked to resume a session, by transport and result (recovered: every missed event replayed; failed: the session or offset was gone, so events may have been missed).',
      ['transport', 'result'],
    ),
    publishDuration: new Histogram({
      name: 'rtgw_publish_duration_seconds',
      help: 'Time to hand a publish to the fan-out (local delivery, or the adapter for other replicas).',
      labelNames: ['source'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
      collect: flushBatch,
    }),
    fanoutLatency: new Histogram({
      name: 'rtgw_fanout_latency_seconds',
      help: 'From publish (the message timestamp) to delivery on this replica, by source; includes the cross-replica hop.',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
      collect: flushBatch,
    }),
    natsMessages: new Counter({ name: 'rtgw_nats_messages_total', help: 'NATS messages the bridge handled on this replica, by outcome (delivered, dropped).', labelNames: ['outcome'], registers: natsRegistries }),
    natsDropped: new Counter({ name: 'rtgw_nats_dropped_total', help: 'NATS messages the bridge dropped, by reason.', labelNames: ['reason'], registers: natsRegistries }),
    natsConnected: new Gauge({ name: 'rtgw_nats_connected', help: 'Whether the NATS bridge is connected and subscribed (1) or not (0).', registers: natsRegistries }),
    publishBatch,
    metricsText: () => registry.metrics(),
  };
  // Zero series for every outcome, so dashboards and alerts see 0 rather than nothing before the first one.
  for (const transport of ['socketio', 'ws']) for (const result of ['recovered', 'failed']) metrics.sessionRecoveries.inc({ transport, result }, 0);
  return metrics;
}

