/** The operator's own Prometheus metrics, on a private registry (no globals). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<'result'>;
  reconcileErrors: Counter<'reason'>;
  reconcileDuration: Histogram;
  queueDepth: Gauge;
  leader: Gauge;
  informerRelists: Counter<'resource'>;
}

export function createMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rtgw_operator_' });
  // prom-client's default gauges that end in _total break Prometheus's naming rules (promtool); each has a twin.
  for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`rtgw_operator_nodejs_active_${name}_total`);
  return {
    registry,
    reconciles: new Counter({ name: 'rtgw_operator_reconciles_total', help: 'Reconciles finished, by result (success, error, requeue).', labelNames: ['result'], registers: [registry] }),
    reconcileErrors: new Counter({ name: 'rtgw_operator_reconcile_errors_total', help: 'Reconciles that failed, by reason.', labelNames: ['reason'], registers: [registry] }),
    reconcileDuration: new Histogram({
      name: 'rtgw_operator_reconcile_duration_seconds',
      help: 'Wall time of one reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'rtgw_operator_queue_depth', help: 'Keys waiting in the work queue.', registers: [registry] }),
    leader: new Gauge({ name: 'rtgw_operator_leader', help: '1 while this process holds the leader Lease.', registers: [registry] }),
    informerRelists: new Counter({ name: 'rtgw_operator_informer_relists_total', help: 'Full relists per watched resource (on start, 410 Gone, a watch error or a silent watch).', labelNames: ['resource'], registers: [registry] }),
  };
}
