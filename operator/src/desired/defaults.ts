/**
 * The schema's defaults, applied again in code: builders must give the same objects for a spec
 * fresh from the API server (defaults filled in) and for one written by hand in a unit test.
 */
import type { RealtimeGatewaySpec } from '../api/types.ts';

export const DEFAULTS = {
  replicas: 2,
  port: 8081,
  logLevel: 'info',
  imagePullPolicy: 'IfNotPresent',
  drainSeconds: 20,
  /** Seconds on top of drainSeconds before the kubelet kills a draining pod. */
  drainMargin: 10,
  streamName: 'rtgw:stream',
  algorithms: ['HS256'],
  tenantClaim: 'tenant_id',
  sticky: 'ingress-nginx',
  websocketTimeoutSeconds: 3600,
  cookieName: 'rtgw-affinity',
  metricsInterval: '30s',
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
} as const;

export function port(spec: RealtimeGatewaySpec): number {
  return spec.port ?? DEFAULTS.port;
}

export function drainSeconds(spec: RealtimeGatewaySpec): number {
  return spec.drainSeconds ?? DEFAULTS.drainSeconds;
}

export function terminationGracePeriodSeconds(spec: RealtimeGatewaySpec): number {
  return spec.pod?.terminationGracePeriodSeconds ?? drainSeconds(spec) + DEFAULTS.drainMargin;
}
