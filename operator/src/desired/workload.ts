/** The gateway's configuration (ConfigMap + Secret references) and its Deployment. Pure. */
import { createHash } from 'node:crypto';
import type { RealtimeGateway, SecretKeyRef } from '../api/types.ts';
import { DEFAULTS, drainSeconds, port, terminationGracePeriodSeconds } from './defaults.ts';
import { CONFIG_HASH_ANNOTATION, SECRET_HASH_ANNOTATION, childMeta, commonLabels, names, selectorLabels, type KubeObject } from './meta.ts';

export const NATS_CREDS_DIR = '/var/run/secrets/realtime-gateway/nats';
export const NATS_CREDS_FILE = `${NATS_CREDS_DIR}/nats.creds`;

/** A referenced Secret key, with the environment variable it becomes (or `file` for a mount). */
export interface SecretUse {
  env: 'REDIS_URL' | 'JWT_SECRET_KEY' | 'SERVICE_API_KEYS' | 'file:nats-creds';
  ref: SecretKeyRef;
}

/** Every Secret key the fleet reads; the reconciler watches these and hashes their values. */
export function secretUses(rg: RealtimeGateway): SecretUse[] {
  const s = rg.spec;
  const uses: SecretUse[] = [];
  if (s.redis !== undefined) uses.push({ env: 'REDIS_URL', ref: s.redis.urlSecretRef });
  if (s.auth?.jwtSecretRef !== undefined) uses.push({ env: 'JWT_SECRET_KEY', ref: s.auth.jwtSecretRef });
  if (s.serviceApiKeysSecretRef !== undefined) uses.push({ env: 'SERVICE_API_KEYS', ref: s.serviceApiKeysSecretRef });
  if (s.nats?.credentialsSecretRef !== undefined) uses.push({ env: 'file:nats-creds', ref: s.nats.credentialsSecretRef });
  return uses;
}

export function referencedSecretNames(rg: RealtimeGateway): string[] {
  return [...new Set(secretUses(rg).map((u) => u.ref.name))].sort();
}

/** Secret data as the API returns it: base64 strings by key. */
export type SecretData = Readonly<Record<string, string>>;

export type SecretLookup = (name: string) => SecretData | undefined;

export interface SecretHash {
  hash: string;
  /** `name/key` pairs that do not exist (yet); the fleet would crash-loop on them. */
  missing: string[];
}

/**
 * One hash over the values of every referenced key. It lands in the pod template, so a rotated
 * JWT secret (or Redis password, ...) rolls the fleet: env vars from Secrets are read only at start.
 */
export function hashSecrets(rg: RealtimeGateway, lookup: SecretLookup): SecretHash {
  const h = createHash('sha256');
  const missing: string[] = [];
  for (const use of secretUses(rg)) {
    const value = lookup(use.ref.name)?.[use.ref.key];
    if (value === undefined) missing.push(`${use.ref.name}/${use.ref.key}`);
    h.update(`${use.env}\0${use.ref.name}\0${use.ref.key}\0${value ?? ''}\0`);
  }
  return { hash: h.digest('hex').slice(0, 32), missing };
}

/** Everything the gateway reads from its environment that is not a secret. */
export function configData(rg: RealtimeGateway): Record<string, string> {
  const s = rg.spec;
  const d: Record<string, string> = {
    PORT: String(port(s)),
    LOG_LEVEL: s.logLevel ?? DEFAULTS.logLevel,
    DRAIN_SECONDS: String(drainSeconds(s)),
    JWT_ALGORITHMS: (s.auth?.algorithms ?? DEFAULTS.algorithms).join(','),
    TENANT_CLAIM: s.auth?.tenantClaim ?? DEFAULTS.tenantClaim,
  };
  const set = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) d[key] = String(value);
  };
  set('JWKS_URL', s.auth?.jwksUrl);
  set('JWT_ISSUER', s.auth?.issuer);
  set('JWT_AUDIENCE', s.auth?.audience);
  if (s.allowedOrigins !== undefined && s.allowedOrigins.length > 0) d.CORS_ALLOWED_ORIGINS = s.allowedOrigins.join(',');
  if (s.redis !== undefined) {
    d.REDIS_STREAM_NAME = s.redis.streamName ?? DEFAULTS.streamName;
    set('REDIS_STREAM_MAXLEN', s.redis.streamMaxLength);
    set('RECOVERY_WINDOW_SECONDS', s.redis.recoveryWindowSeconds);
  }
  if (s.nats !== undefined) {
    d.NATS_URL = s.nats.url;
    if (s.nats.subjects !== undefined && s.nats.subjects.length > 0) d.NATS_SUBJECTS = s.nats.subjects.join(',');
    if (s.nats.credentialsSecretRef !== undefined) d.NATS_CREDS_FILE = NATS_CREDS_FILE;
  }
  set('RATE_LIMIT_MESSAGES_PER_SECOND', s.limits?.messagesPerSecond);
  set('MAX_CONNECTIONS_PER_IP', s.limits?.maxConnectionsPerIp);
  set('MAX_CONNECTIONS_PER_USER', s.limits?.maxConnectionsPerUser);
  set('MAX_CONNECTIONS_PER_TENANT', s.limits?.maxConnectionsPerTenant);
  // Behind an Ingress/Gateway the client address is in X-Forwarded-For; per-IP limits need it.
  if (s.exposure !== undefined) d.TRUST_PROXY = 'true';
  return Object.fromEntries(Object.entries(d).sort(([a], [b]) => a.localeCompare(b)));
}

export function hashConfig(data: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify(data)).digest('hex').slice(0, 32);
}

export function configMap(rg: RealtimeGateway): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: childMeta(rg, names.configMap(rg)), data: configData(rg) };
}

/** Deployment replicas: absent when an autoscaler owns the count, so applies never fight it. */
export function deploymentReplicas(rg: RealtimeGateway): number | undefined {
  return rg.spec.autoscaling === undefined ? (rg.spec.replicas ?? DEFAULTS.replicas) : undefined;
}

export function deployment(rg: RealtimeGateway, secretHash: string): KubeObject {
  const s = rg.spec;
  const pod = s.pod ?? {};
  const env = secretUses(rg)
    .filter((u) => !u.env.startsWith('file:'))
    .map((u) => ({ name: u.env, valueFrom: { secretKeyRef: { name: u.ref.name, key: u.ref.key } } }));
  const natsCreds = s.nats?.credentialsSecretRef;
  const container: Record<string, unknown> = {
    name: 'gateway',
    image: s.image,
    imagePullPolicy: s.imagePullPolicy ?? DEFAULTS.imagePullPolicy,
    ports: [{ name: 'http', containerPort: port(s), protocol: 'TCP' }],
    envFrom: [{ configMapRef: { name: names.configMap(rg) } }],
    resources: s.resources ?? DEFAULTS.resources,
    readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
  if (env.length > 0) container.env = env;
  if (natsCreds !== undefined) container.volumeMounts = [{ name: 'nats-creds', mountPath: NATS_CREDS_DIR, readOnly: true }];

  const podSpec: Record<string, unknown> = {
    containers: [container],
    terminationGracePeriodSeconds: terminationGracePeriodSeconds(s),
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  };
  if (natsCreds !== undefined) {
    podSpec.volumes = [{ name: 'nats-creds', secret: { secretName: natsCreds.name, items: [{ key: natsCreds.key, path: 'nats.creds' }] } }];
  }
  if (pod.nodeSelector !== undefined) podSpec.nodeSelector = pod.nodeSelector;
  if (pod.tolerations !== undefined) podSpec.tolerations = pod.tolerations;
  if (pod.affinity !== undefined) podSpec.affinity = pod.affinity;
  if (pod.topologySpreadConstraints !== undefined) podSpec.topologySpreadConstraints = pod.topologySpreadConstraints;
  if (pod.priorityClassName !== undefined) podSpec.priorityClassName = pod.priorityClassName;

  const spec: Record<string, unknown> = {
    revisionHistoryLimit: 5,
    selector: { matchLabels: selectorLabels(rg) },
    // Surge, never drop: each replaced pod hands its clients over, so capacity must not dip.
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
    template: {
      metadata: {
        labels: { ...pod.labels, ...commonLabels(rg) },
        annotations: {
          ...pod.annotations,
          [CONFIG_HASH_ANNOTATION]: hashConfig(configData(rg)),
          [SECRET_HASH_ANNOTATION]: secretHash,
        },
      },
      spec: podSpec,
    },
  };
  const replicas = deploymentReplicas(rg);
  if (replicas !== undefined) spec.replicas = replicas;
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: childMeta(rg, names.deployment(rg)), spec };
}
