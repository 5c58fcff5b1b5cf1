/** Prometheus Operator ServiceMonitor. Pure. */
import type { RealtimeGateway } from '../api/types.ts';
import { DEFAULTS } from './defaults.ts';
import { childMeta, names, selectorLabels, type KubeObject } from './meta.ts';

export function serviceMonitor(rg: RealtimeGateway): KubeObject | undefined {
  const m = rg.spec.metrics;
  if (m?.serviceMonitor !== true) return undefined;
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: childMeta(rg, names.serviceMonitor(rg)),
    spec: {
      selector: { matchLabels: selectorLabels(rg) },
      endpoints: [{ port: 'http', path: '/metrics', interval: m.interval ?? DEFAULTS.metricsInterval }],
    },
  };
}
