/** Shared by the operator's unit and integration tests: the CRD as a JS object and sample resources. */
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import type { AuthSpec, RealtimeGateway, RealtimeGatewaySpec } from '../../../operator/src/api/types.ts';
import type { CrdSchema } from '../../../scripts/gen-reference.ts';

export const CRD_PATH = new URL('../../../crds/realtimegateways.realtime.gateway.dev.yaml', import.meta.url);

/** The CRD's OpenAPI schema, as the reference generator reads it. */
export type Schema = CrdSchema;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadCrd(): any {
  return load(readFileSync(CRD_PATH, 'utf8'));
}

export function specSchema(): Schema {
  return loadCrd().spec.versions[0].schema.openAPIV3Schema.properties.spec as Schema;
}

/** The least auth the CRD accepts (it requires jwtSecretRef or jwksUrl): an HS256 secret in Secret `jwt`, key `secret`. */
export const JWT_AUTH = { jwtSecretRef: { name: 'jwt', key: 'secret' } } as const satisfies AuthSpec;

/** A spec that sets every field, valid for the schema and its CEL rules. */
export function fullSpec(): RealtimeGatewaySpec {
  return {
    image: 'ghcr.io/example/realtime-gateway:1.2.3',
    imagePullPolicy: 'Always',
    replicas: 3,
    autoscaling: { provider: 'hpa', minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70, targetConnectionsPerPod: 5000 },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    port: 8081,
    logLevel: 'debug',
    redis: { urlSecretRef: { name: 'redis', key: 'url' }, streamName: 'rt:stream', recoveryWindowSeconds: 300 },
    nats: { url: 'nats://nats.messaging:4222', subjects: ['rt.>', 'orders.*'], credentialsSecretRef: { name: 'nats', key: 'user.creds' } },
    auth: {
      jwtSecretRef: { name: 'jwt', key: 'secret' },
      algorithms: ['HS256', 'RS256'],
      jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
      issuer: 'https://auth.example.com/',
      audience: 'realtime',
      tenantClaim: 'org',
    },
    serviceApiKeysSecretRef: { name: 'service-keys', key: 'keys' },
    allowedOrigins: ['https://app.example.com', 'https://admin.example.com'],
    limits: { messagesPerSecond: 50, maxConnectionsPerIp: 500, maxConnectionsPerUser: 10, maxConnectionsPerTenant: 20000 },
    drainSeconds: 30,
    exposure: {
      host: 'rt.example.com',
      tlsSecretName: 'rt-tls',
      className: 'nginx',
      sticky: 'ingress-nginx',
      gatewayRef: { name: 'public', namespace: 'gateways', sectionName: 'https' },
      websocketTimeoutSeconds: 7200,
      cookieName: 'rt-sticky',
    },
    disruptionBudget: { minAvailable: '50%' },
    metrics: { serviceMonitor: true, interval: '15s' },
    pod: {
      nodeSelector: { 'node-role/realtime': 'true' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'realtime', effect: 'NoSchedule' }],
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
      annotations: { 'example.com/team': 'realtime' },
      labels: { team: 'realtime' },
      priorityClassName: 'high',
      terminationGracePeriodSeconds: 60,
    },
  };
}

export function gateway(spec: RealtimeGatewaySpec, name = 'chat', namespace = 'apps'): RealtimeGateway {
  return {
    apiVersion: 'realtime.gateway.dev/v1alpha1',
    kind: 'RealtimeGateway',
    metadata: { name, namespace, uid: '0b8c7a52-6f1e-4a5e-9a43-7c1d2f3e4a5b', generation: 4 },
    spec,
  };
}

/** A tiny OpenAPI v3 structural-schema checker, enough for the CRD's own keywords (not CEL). */
export function validate(schema: Schema, value: unknown, path = 'spec'): string[] {
  const errs: string[] = [];
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (typeof value !== 'string' && !Number.isInteger(value)) errs.push(`${path}: not int-or-string`);
    return errs;
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) errs.push(`${path}: ${String(value)} not in enum`);
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return [`${path}: not a string`];
      if (schema.minLength !== undefined && value.length < schema.minLength) errs.push(`${path}: too short`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errs.push(`${path}: too long`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) errs.push(`${path}: does not match ${schema.pattern}`);
      return errs;
    case 'integer':
      if (!Number.isInteger(value)) return [`${path}: not an integer`];
      if (schema.minimum !== undefined && (value as number) < schema.minimum) errs.push(`${path}: below minimum`);
      if (schema.maximum !== undefined && (value as number) > schema.maximum) errs.push(`${path}: above maximum`);
      return errs;
    case 'boolean':
      return typeof value === 'boolean' ? errs : [`${path}: not a boolean`];
    case 'array':
      if (!Array.isArray(value)) return [`${path}: not an array`];
      if (schema.minItems !== undefined && value.length < schema.minItems) errs.push(`${path}: too few items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) errs.push(`${path}: too many items`);
      value.forEach((v, i) => errs.push(...validate(schema.items ?? {}, v, `${path}[${i}]`)));
      return errs;
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: not an object`];
      const obj = value as Record<string, unknown>;
      for (const r of schema.required ?? []) if (!(r in obj)) errs.push(`${path}.${r}: required`);
      for (const [k, v] of Object.entries(obj)) {
        const sub = schema.properties?.[k];
        if (sub !== undefined) errs.push(...validate(sub, v, `${path}.${k}`));
        else if (typeof schema.additionalProperties === 'object') errs.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
        else if (schema['x-kubernetes-preserve-unknown-fields'] !== true) errs.push(`${path}.${k}: unknown field (the API server would prune it)`);
      }
      return errs;
    }
    default:
      return errs;
  }
}
