/**
 * The whole desired state of one RealtimeGateway, from its spec and a few facts about the cluster.
 * Pure: no I/O, same input same output, so every object is unit-tested field by field.
 */
import type { RealtimeGateway } from '../api/types.ts';
import { hpa, pdb } from './scaling.ts';
import type { KubeObject } from './meta.ts';
import { serviceMonitor } from './monitoring.ts';
import { httpRoute, ingress, service } from './network.ts';
import { configMap, deployment } from './workload.ts';

/** Facts about the cluster the builders depend on, discovered once at start. */
export interface Capabilities {
  serviceMonitor: boolean;
  httpRoute: boolean;
}

export interface DesiredInput {
  secretHash: string;
  capabilities: Capabilities;
}

/** Every kind the operator may own, in apply order (config before the pods that read it). */
export const CHILD_KINDS = [
  { kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps', crd: undefined },
  { kind: 'Service', apiVersion: 'v1', plural: 'services', crd: undefined },
  { kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments', crd: undefined },
  { kind: 'PodDisruptionBudget', apiVersion: 'policy/v1', plural: 'poddisruptionbudgets', crd: undefined },
  { kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', plural: 'horizontalpodautoscalers', crd: undefined },
  { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', crd: undefined },
  { kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes', crd: 'httproutes.gateway.networking.k8s.io' },
  { kind: 'ServiceMonitor', apiVersion: 'monitoring.coreos.com/v1', plural: 'servicemonitors', crd: 'servicemonitors.monitoring.coreos.com' },
] as const;

export type ChildKind = (typeof CHILD_KINDS)[number];

export function kindAvailable(k: ChildKind, caps: Capabilities): boolean {
  if (k.kind === 'HTTPRoute') return caps.httpRoute;
  if (k.kind === 'ServiceMonitor') return caps.serviceMonitor;
  return true;
}

export interface DesiredState {
  objects: KubeObject[];
  /** Things the spec asks for that this cluster cannot have; they surface as Degraded. */
  problems: string[];
}

export function desiredState(rg: RealtimeGateway, input: DesiredInput): DesiredState {
  const problems: string[] = [];
  const objects: (KubeObject | undefined)[] = [configMap(rg), service(rg), deployment(rg, input.secretHash), pdb(rg), hpa(rg), ingress(rg)];
  const route = httpRoute(rg);
  if (route !== undefined) {
    if (input.capabilities.httpRoute) objects.push(route);
    else problems.push('exposure.sticky is gateway-api but the HTTPRoute CRD (gateway.networking.k8s.io) is not installed');
  }
  const monitor = serviceMonitor(rg);
  if (monitor !== undefined && input.capabilities.serviceMonitor) objects.push(monitor);
  return { objects: objects.filter((o): o is KubeObject => o !== undefined), problems };
}

export { endpoint } from './network.ts';
export { hashSecrets, referencedSecretNames, secretUses, type SecretLookup } from './workload.ts';
export * from './meta.ts';
