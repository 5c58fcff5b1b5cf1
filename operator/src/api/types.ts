/**
 * RealtimeGateway v1alpha1, as TypeScript. crds/realtimegateways.realtime.gateway.dev.yaml is the
 * source of truth (defaults, validation); test/unit/operator/api.test.ts keeps the two in step.
 * Fields the schema defaults are still optional here: the desired-state builders fill the same
 * defaults again so they stay pure functions of whatever spec they are given.
 */

export const GROUP = 'realtime.gateway.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'RealtimeGateway';
export const PLURAL = 'realtimegateways';

/** A key inside a Secret in the resource's own namespace. */
export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface ResourceRequirements {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

export interface AutoscalingSpec {
  /** `hpa` makes the operator own a HorizontalPodAutoscaler; `keda` leaves scaling to a ScaledObject. */
  provider?: 'hpa' | 'keda';
  minReplicas: number;
  maxReplicas: number;
  targetCPUUtilizationPercentage?: number;
  /** Average `rtgw_connections` per pod (needs a custom-metrics adapter such as prometheus-adapter). */
  targetConnectionsPerPod?: number;
}

export interface RedisSpec {
  urlSecretRef: SecretKeyRef;
  streamName?: string;
  /** Exactly one of streamMaxLength / recoveryWindowSeconds bounds the recovery stream. */
  streamMaxLength?: number;
  recoveryWindowSeconds?: number;
}

export interface NatsSpec {
  url: string;
  subjects?: string[];
  /** A NATS `.creds` file, mounted read-only and named by NATS_CREDS_FILE. */
  credentialsSecretRef?: SecretKeyRef;
}

export interface AuthSpec {
  jwtSecretRef?: SecretKeyRef;
  algorithms?: string[];
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  tenantClaim?: string;
}

export interface LimitsSpec {
  messagesPerSecond?: number;
  maxConnectionsPerIp?: number;
  maxConnectionsPerUser?: number;
  maxConnectionsPerTenant?: number;
}

export type StickyStrategy = 'ingress-nginx' | 'traefik' | 'gateway-api';

export interface ParentRef {
  name: string;
  namespace?: string;
  sectionName?: string;
}

export interface ExposureSpec {
  host: string;
  tlsSecretName?: string;
  /** IngressClass name, or for `gateway-api` unused (see gatewayRef). */
  className?: string;
  sticky?: StickyStrategy;
  /** The Gateway an HTTPRoute attaches to; required for `gateway-api`. */
  gatewayRef?: ParentRef;
  /** Idle timeout for a WebSocket through the proxy; must exceed socket.io's ping interval + timeout. */
  websocketTimeoutSeconds?: number;
  cookieName?: string;
}

export interface DisruptionBudgetSpec {
  minAvailable?: number | string;
  maxUnavailable?: number | string;
}

export interface MetricsSpec {
  serviceMonitor?: boolean;
  interval?: string;
}

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export interface PodSpecKnobs {
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface RealtimeGatewaySpec {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  replicas?: number;
  autoscaling?: AutoscalingSpec;
  resources?: ResourceRequirements;
  port?: number;
  logLevel?: LogLevel;
  redis?: RedisSpec;
  nats?: NatsSpec;
  /** Required: the gateway refuses to start without jwtSecretRef or jwksUrl (a CEL rule enforces one). */
  auth: AuthSpec;
  serviceApiKeysSecretRef?: SecretKeyRef;
  allowedOrigins?: string[];
  limits?: LimitsSpec;
  drainSeconds?: number;
  exposure?: ExposureSpec;
  disruptionBudget?: DisruptionBudgetSpec;
  metrics?: MetricsSpec;
  pod?: PodSpecKnobs;
}

export interface Condition {
  type: 'Ready' | 'Progressing' | 'Degraded';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface RealtimeGatewayStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  updatedReplicas?: number;
  /** Label selector of the pods, as a string: the scale subresource hands it to an HPA. */
  selector?: string;
  endpoint?: string;
  conditions?: Condition[];
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface RealtimeGateway {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: RealtimeGatewaySpec;
  status?: RealtimeGatewayStatus;
}

/** The paths in the spec, for the test that keeps this file and the CRD schema in step. */
export const SPEC_FIELDS = [
  'image', 'imagePullPolicy', 'replicas', 'resources.requests', 'resources.limits', 'port', 'logLevel', 'allowedOrigins', 'drainSeconds',
  'autoscaling.provider', 'autoscaling.minReplicas', 'autoscaling.maxReplicas',
  'autoscaling.targetCPUUtilizationPercentage', 'autoscaling.targetConnectionsPerPod',
  'redis.urlSecretRef.name', 'redis.urlSecretRef.key', 'redis.streamName', 'redis.streamMaxLength',
  'redis.recoveryWindowSeconds',
  'nats.url', 'nats.subjects', 'nats.credentialsSecretRef.name', 'nats.credentialsSecretRef.key',
  'auth.jwtSecretRef.name', 'auth.jwtSecretRef.key', 'auth.algorithms', 'auth.jwksUrl', 'auth.issuer',
  'auth.audience', 'auth.tenantClaim',
  'serviceApiKeysSecretRef.name', 'serviceApiKeysSecretRef.key',
  'limits.messagesPerSecond', 'limits.maxConnectionsPerIp', 'limits.maxConnectionsPerUser',
  'limits.maxConnectionsPerTenant',
  'exposure.host', 'exposure.tlsSecretName', 'exposure.className', 'exposure.sticky', 'exposure.gatewayRef.name',
  'exposure.gatewayRef.namespace', 'exposure.gatewayRef.sectionName', 'exposure.websocketTimeoutSeconds',
  'exposure.cookieName',
  'disruptionBudget.minAvailable', 'disruptionBudget.maxUnavailable',
  'metrics.serviceMonitor', 'metrics.interval',
  'pod.nodeSelector', 'pod.tolerations', 'pod.affinity', 'pod.topologySpreadConstraints', 'pod.annotations',
  'pod.labels', 'pod.priorityClassName', 'pod.terminationGracePeriodSeconds',
] as const satisfies readonly SpecPath[];

/** Every dotted path into RealtimeGatewaySpec that ends at a leaf or at an opaque map. */
export type SpecPath = Paths<RealtimeGatewaySpec>;
type Paths<T> = {
  [K in keyof T & string]-?: NonNullable<T[K]> extends infer V
    ? V extends string | number | boolean | unknown[]
      ? K
      : V extends object
        ? string extends keyof V
          ? K
          : `${K}.${Paths<V>}`
        : never
    : never;
}[keyof T & string];

// Compile-time proof that SPEC_FIELDS lists every path: this line fails to typecheck otherwise.
const specFieldsComplete: Exclude<SpecPath, (typeof SPEC_FIELDS)[number]> extends never ? true : never = true;
void specFieldsComplete;
