/** Names, labels and owner references shared by every child object. Pure. */
import { API_VERSION, KIND, type RealtimeGateway } from '../api/types.ts';

export const FIELD_MANAGER = 'realtime-gateway-operator';
export const MANAGED_BY = 'realtime-gateway-operator';
export const CONFIG_HASH_ANNOTATION = 'realtime.gateway.dev/config-hash';
export const SECRET_HASH_ANNOTATION = 'realtime.gateway.dev/secret-hash';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export interface ChildMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences: OwnerReference[];
}

/** What every desired object looks like to the appliers: a typed head, an open body. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ChildMeta;
  [field: string]: unknown;
}

/** The labels that select a fleet's pods. Never change them: a Deployment's selector is immutable. */
export function selectorLabels(rg: RealtimeGateway): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'realtime-gateway',
    'app.kubernetes.io/instance': rg.metadata.name,
  };
}

export function selectorString(rg: RealtimeGateway): string {
  return Object.entries(selectorLabels(rg)).map(([k, v]) => `${k}=${v}`).join(',');
}

export function commonLabels(rg: RealtimeGateway): Record<string, string> {
  return {
    ...selectorLabels(rg),
    'app.kubernetes.io/component': 'gateway',
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}

export function ownerReference(rg: RealtimeGateway): OwnerReference {
  if (rg.metadata.uid === undefined) throw new TypeError(`RealtimeGateway ${rg.metadata.name} has no uid`);
  return { apiVersion: API_VERSION, kind: KIND, name: rg.metadata.name, uid: rg.metadata.uid, controller: true, blockOwnerDeletion: true };
}

export function childMeta(rg: RealtimeGateway, name: string, annotations?: Record<string, string>): ChildMeta {
  const meta: ChildMeta = {
    name,
    namespace: rg.metadata.namespace,
    labels: commonLabels(rg),
    ownerReferences: [ownerReference(rg)],
  };
  if (annotations !== undefined && Object.keys(annotations).length > 0) meta.annotations = annotations;
  return meta;
}

export const names = {
  deployment: (rg: RealtimeGateway) => rg.metadata.name,
  service: (rg: RealtimeGateway) => rg.metadata.name,
  configMap: (rg: RealtimeGateway) => `${rg.metadata.name}-config`,
  ingress: (rg: RealtimeGateway) => rg.metadata.name,
  httpRoute: (rg: RealtimeGateway) => rg.metadata.name,
  hpa: (rg: RealtimeGateway) => rg.metadata.name,
  pdb: (rg: RealtimeGateway) => rg.metadata.name,
  serviceMonitor: (rg: RealtimeGateway) => rg.metadata.name,
} as const;
