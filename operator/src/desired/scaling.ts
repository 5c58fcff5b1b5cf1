/** HorizontalPodAutoscaler and PodDisruptionBudget. Pure. */
import type { RealtimeGateway } from '../api/types.ts';
import { childMeta, names, selectorLabels, type KubeObject } from './meta.ts';

/** The gateway metric an HPA averages per pod for targetConnectionsPerPod. */
export const CONNECTIONS_METRIC = 'rtgw_connections';

/** undefined without autoscaling, and with provider keda (a ScaledObject owns the count then). */
export function hpa(rg: RealtimeGateway): KubeObject | undefined {
  const a = rg.spec.autoscaling;
  if (a === undefined || (a.provider ?? 'hpa') === 'keda') return undefined;
  const metrics: unknown[] = [];
  if (a.targetCPUUtilizationPercentage !== undefined) {
    metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: a.targetCPUUtilizationPercentage } } });
  }
  if (a.targetConnectionsPerPod !== undefined) {
    metrics.push({
      type: 'Pods',
      pods: { metric: { name: CONNECTIONS_METRIC }, target: { type: 'AverageValue', averageValue: String(a.targetConnectionsPerPod) } },
    });
  }
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: childMeta(rg, names.hpa(rg)),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: names.deployment(rg) },
      minReplicas: a.minReplicas,
      maxReplicas: a.maxReplicas,
      metrics,
      // Scaling in disconnects every client of the removed pod: do it slowly, one pod a minute.
      behavior: {
        scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
      },
    },
  };
}

/** Always present: without a spec it allows one voluntary eviction at a time. */
export function pdb(rg: RealtimeGateway): KubeObject {
  const b = rg.spec.disruptionBudget;
  const spec: Record<string, unknown> = { selector: { matchLabels: selectorLabels(rg) } };
  if (b?.minAvailable !== undefined) spec.minAvailable = b.minAvailable;
  else spec.maxUnavailable = b?.maxUnavailable ?? 1;
  return { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: childMeta(rg, names.pdb(rg)), spec };
}
