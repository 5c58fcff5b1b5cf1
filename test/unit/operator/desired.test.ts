import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RealtimeGatewaySpec } from '../../../operator/src/api/types.ts';
import { desiredState, endpoint, hashSecrets, referencedSecretNames } from '../../../operator/src/desired/index.ts';
import { configData, configMap, deployment, hashConfig } from '../../../operator/src/desired/workload.ts';
import { httpRoute, ingress, service } from '../../../operator/src/desired/network.ts';
import { hpa, pdb } from '../../../operator/src/desired/scaling.ts';
import { serviceMonitor } from '../../../operator/src/desired/monitoring.ts';
import { JWT_AUTH, fullSpec, gateway } from './fixtures.ts';

const minimal: RealtimeGatewaySpec = { image: 'gw:1', auth: JWT_AUTH };
const owner = {
  apiVersion: 'realtime.gateway.dev/v1alpha1', kind: 'RealtimeGateway', name: 'chat',
  uid: '0b8c7a52-6f1e-4a5e-9a43-7c1d2f3e4a5b', controller: true, blockOwnerDeletion: true,
};
const labels = {
  'app.kubernetes.io/name': 'realtime-gateway', 'app.kubernetes.io/instance': 'chat',
  'app.kubernetes.io/component': 'gateway', 'app.kubernetes.io/managed-by': 'realtime-gateway-operator',
};
const selector = { 'app.kubernetes.io/name': 'realtime-gateway', 'app.kubernetes.io/instance': 'chat' };
const meta = (name: string, annotations?: Record<string, string>) => ({
  name, namespace: 'apps', labels, ownerReferences: [owner], ...(annotations ? { annotations } : {}),
});

test('ConfigMap carries every non-secret variable the gateway reads, named as the gateway names them', () => {
  assert.deepEqual(configMap(gateway(fullSpec())), {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('chat-config'),
    data: {
      CORS_ALLOWED_ORIGINS: 'https://app.example.com,https://admin.example.com',
      DRAIN_SECONDS: '30',
      JWKS_URL: 'https://auth.example.com/.well-known/jwks.json',
      JWT_ALGORITHMS: 'HS256,RS256',
      JWT_AUDIENCE: 'realtime',
      JWT_ISSUER: 'https://auth.example.com/',
      LOG_LEVEL: 'debug',
      MAX_CONNECTIONS_PER_IP: '500',
      MAX_CONNECTIONS_PER_TENANT: '20000',
      MAX_CONNECTIONS_PER_USER: '10',
      NATS_CREDS_FILE: '/var/run/secrets/realtime-gateway/nats/nats.creds',
      NATS_SUBJECTS: 'rt.>,orders.*',
      NATS_URL: 'nats://nats.messaging:4222',
      PORT: '8081',
      RATE_LIMIT_MESSAGES_PER_SECOND: '50',
      RECOVERY_WINDOW_SECONDS: '300',
      REDIS_STREAM_NAME: 'rt:stream',
      TENANT_CLAIM: 'org',
      TRUST_PROXY: 'true',
    },
  });
});

test('a minimal spec gets the gateway defaults and leaves optional variables unset', () => {
  assert.deepEqual(configData(gateway(minimal)), {
    DRAIN_SECONDS: '20', JWT_ALGORITHMS: 'HS256', LOG_LEVEL: 'info', PORT: '8081', TENANT_CLAIM: 'tenant_id',
  });
  const withMaxLen = configData(gateway({ image: 'gw:1', auth: JWT_AUTH, redis: { urlSecretRef: { name: 'r', key: 'u' }, streamMaxLength: 5000 } }));
  assert.equal(withMaxLen.REDIS_STREAM_MAXLEN, '5000');
  assert.equal(withMaxLen.RECOVERY_WINDOW_SECONDS, undefined);
});

test('Deployment: image, probes on the gateway port, secrets by reference, hashes, pod knobs, no replicas under an autoscaler', () => {
  const rg = gateway(fullSpec());
  const d = deployment(rg, 'secrethash');
  assert.deepEqual(d, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta('chat'),
    spec: {
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: { team: 'realtime', ...labels },
          annotations: {
            'example.com/team': 'realtime',
            'realtime.gateway.dev/config-hash': hashConfig(configData(rg)),
            'realtime.gateway.dev/secret-hash': 'secrethash',
          },
        },
        spec: {
          containers: [{
            name: 'gateway',
            image: 'ghcr.io/example/realtime-gateway:1.2.3',
            imagePullPolicy: 'Always',
            ports: [{ name: 'http', containerPort: 8081, protocol: 'TCP' }],
            envFrom: [{ configMapRef: { name: 'chat-config' } }],
            env: [
              { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'redis', key: 'url' } } },
              { name: 'JWT_SECRET_KEY', valueFrom: { secretKeyRef: { name: 'jwt', key: 'secret' } } },
              { name: 'SERVICE_API_KEYS', valueFrom: { secretKeyRef: { name: 'service-keys', key: 'keys' } } },
            ],
            resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
            readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            volumeMounts: [{ name: 'nats-creds', mountPath: '/var/run/secrets/realtime-gateway/nats', readOnly: true }],
          }],
          terminationGracePeriodSeconds: 60,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          volumes: [{ name: 'nats-creds', secret: { secretName: 'nats', items: [{ key: 'user.creds', path: 'nats.creds' }] } }],
          nodeSelector: { 'node-role/realtime': 'true' },
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'realtime', effect: 'NoSchedule' }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
          priorityClassName: 'high',
        },
      },
    },
  });
});

test('Deployment without an autoscaler owns replicas; grace period covers the drain', () => {
  const d = deployment(gateway({ image: 'gw:1', auth: JWT_AUTH, replicas: 5, drainSeconds: 40 }), 'h') as unknown as { spec: { replicas: number; template: { spec: Record<string, unknown> } } };
  assert.equal(d.spec.replicas, 5);
  assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 50);
  assert.equal((deployment(gateway(minimal), 'h') as unknown as { spec: { replicas: number } }).spec.replicas, 2);
});

test('user pod labels cannot override the selector labels', () => {
  const d = deployment(gateway({ image: 'gw:1', auth: JWT_AUTH, pod: { labels: { 'app.kubernetes.io/instance': 'evil' } } }), 'h') as unknown as {
    spec: { template: { metadata: { labels: Record<string, string> } } };
  };
  assert.equal(d.spec.template.metadata.labels['app.kubernetes.io/instance'], 'chat');
});

test('a config change or a secret change changes the pod template (and so rolls the fleet)', () => {
  const tpl = (spec: RealtimeGatewaySpec, hash: string) =>
    JSON.stringify((deployment(gateway(spec), hash) as unknown as { spec: { template: unknown } }).spec.template);
  assert.notEqual(tpl(minimal, 'a'), tpl({ ...minimal, logLevel: 'debug' }, 'a'));
  assert.notEqual(tpl(minimal, 'a'), tpl(minimal, 'b'));
  assert.equal(tpl(minimal, 'a'), tpl({ ...minimal }, 'a'));
});

test('secret hash covers every referenced key and reports missing ones', () => {
  const rg = gateway(fullSpec());
  assert.deepEqual(referencedSecretNames(rg), ['jwt', 'nats', 'redis', 'service-keys']);
  const data: Record<string, Record<string, string>> = {
    redis: { url: 'cmVkaXM6Ly94' }, jwt: { secret: 'YQ==' }, nats: { 'user.creds': 'Yw==' }, 'service-keys': { keys: 'azprZXk=' },
  };
  const h1 = hashSecrets(rg, (n) => data[n]);
  assert.deepEqual(h1.missing, []);
  const rotated = hashSecrets(rg, (n) => (n === 'jwt' ? { secret: 'Yg==' } : data[n]));
  assert.notEqual(rotated.hash, h1.hash);
  // A key the fleet does not read changes nothing.
  const unrelated = hashSecrets(rg, (n) => (n === 'jwt' ? { secret: 'YQ==', other: 'eg==' } : data[n]));
  assert.equal(unrelated.hash, h1.hash);
  assert.deepEqual(hashSecrets(rg, (n) => (n === 'redis' ? undefined : data[n])).missing, ['redis/url']);
});

test('Service selects the pods on the gateway port; Traefik stickiness lives on it', () => {
  assert.deepEqual(service(gateway(minimal)), {
    apiVersion: 'v1', kind: 'Service', metadata: meta('chat'),
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 8081, targetPort: 'http', protocol: 'TCP' }] },
  });
  const traefik = fullSpec();
  traefik.exposure = { host: 'rt.example.com', sticky: 'traefik', tlsSecretName: 'tls' };
  assert.deepEqual((service(gateway(traefik)).metadata as { annotations: unknown }).annotations, {
    'traefik.ingress.kubernetes.io/service.sticky.cookie': 'true',
    'traefik.ingress.kubernetes.io/service.sticky.cookie.name': 'rtgw-affinity',
    'traefik.ingress.kubernetes.io/service.sticky.cookie.httponly': 'true',
    'traefik.ingress.kubernetes.io/service.sticky.cookie.secure': 'true',
  });
});

test('Ingress for ingress-nginx: cookie affinity, WebSocket timeouts, TLS', () => {
  assert.deepEqual(ingress(gateway(fullSpec())), {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: meta('chat', {
      'nginx.ingress.kubernetes.io/affinity': 'cookie',
      'nginx.ingress.kubernetes.io/affinity-mode': 'persistent',
      'nginx.ingress.kubernetes.io/session-cookie-name': 'rt-sticky',
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '7200',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '7200',
    }),
    spec: {
      ingressClassName: 'nginx',
      rules: [{ host: 'rt.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { name: 'http' } } } }] } }],
      tls: [{ hosts: ['rt.example.com'], secretName: 'rt-tls' }],
    },
  });
  assert.equal(ingress(gateway(minimal)), undefined);
});

test('Ingress for Traefik uses its class and no nginx annotations', () => {
  const ing = ingress(gateway({ image: 'gw:1', auth: JWT_AUTH, exposure: { host: 'rt.example.com', sticky: 'traefik' } }));
  assert.equal((ing?.spec as { ingressClassName: string }).ingressClassName, 'traefik');
  assert.equal(ing?.metadata.annotations, undefined);
  assert.equal((ing?.spec as { tls?: unknown }).tls, undefined);
});

test('HTTPRoute for Gateway API: parentRef, host, cookie session persistence, long request timeout; no Ingress', () => {
  const spec = fullSpec();
  spec.exposure = { ...spec.exposure!, sticky: 'gateway-api' };
  const rg = gateway(spec);
  assert.equal(ingress(rg), undefined);
  assert.deepEqual(httpRoute(rg), {
    apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: meta('chat'),
    spec: {
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public', namespace: 'gateways', sectionName: 'https' }],
      hostnames: ['rt.example.com'],
      rules: [{
        matches: [{ path: { type: 'PathPrefix', value: '/' } }],
        backendRefs: [{ group: '', kind: 'Service', name: 'chat', port: 8081, weight: 1 }],
        sessionPersistence: { sessionName: 'rt-sticky', type: 'Cookie', cookieConfig: { lifetimeType: 'Session' } },
        timeouts: { request: '7200s' },
      }],
    },
  });
  const noCrd = desiredState(rg, { secretHash: 'h', capabilities: { httpRoute: false, serviceMonitor: false } });
  assert.equal(noCrd.objects.find((o) => o.kind === 'HTTPRoute'), undefined);
  assert.match(noCrd.problems[0] ?? '', /HTTPRoute CRD/);
});

test('HPA: CPU and connections-per-pod metrics, slow scale-down; none for KEDA or without autoscaling', () => {
  assert.deepEqual(hpa(gateway(fullSpec())), {
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: meta('chat'),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'chat' },
      minReplicas: 2, maxReplicas: 10,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Pods', pods: { metric: { name: 'rtgw_connections' }, target: { type: 'AverageValue', averageValue: '5000' } } },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
    },
  });
  assert.equal(hpa(gateway(minimal)), undefined);
  const keda = gateway({ image: 'gw:1', auth: JWT_AUTH, autoscaling: { provider: 'keda', minReplicas: 1, maxReplicas: 4 } });
  assert.equal(hpa(keda), undefined);
  assert.equal((deployment(keda, 'h') as unknown as { spec: { replicas?: number } }).spec.replicas, undefined);
});

test('PodDisruptionBudget: from the spec, else one pod at a time', () => {
  assert.deepEqual(pdb(gateway(fullSpec())), {
    apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta('chat'),
    spec: { selector: { matchLabels: selector }, minAvailable: '50%' },
  });
  assert.deepEqual(pdb(gateway(minimal)).spec, { selector: { matchLabels: selector }, maxUnavailable: 1 });
  assert.deepEqual(pdb(gateway({ image: 'gw:1', auth: JWT_AUTH, disruptionBudget: { maxUnavailable: 2 } })).spec, { selector: { matchLabels: selector }, maxUnavailable: 2 });
});

test('ServiceMonitor: only when asked for and only where its CRD exists', () => {
  assert.deepEqual(serviceMonitor(gateway(fullSpec())), {
    apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: meta('chat'),
    spec: { selector: { matchLabels: selector }, endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }] },
  });
  assert.equal(serviceMonitor(gateway(minimal)), undefined);
  const rg = gateway(fullSpec());
  const kinds = (sm: boolean) => desiredState(rg, { secretHash: 'h', capabilities: { httpRoute: true, serviceMonitor: sm } }).objects.map((o) => o.kind);
  assert.deepEqual(kinds(true), ['ConfigMap', 'Service', 'Deployment', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'Ingress', 'ServiceMonitor']);
  assert.deepEqual(kinds(false), ['ConfigMap', 'Service', 'Deployment', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'Ingress']);
});

test('a minimal spec yields exactly ConfigMap, Service, Deployment and PDB', () => {
  const st = desiredState(gateway(minimal), { secretHash: 'h', capabilities: { httpRoute: true, serviceMonitor: true } });
  assert.deepEqual(st.objects.map((o) => `${o.kind}/${o.metadata.name}`), ['ConfigMap/chat-config', 'Service/chat', 'Deployment/chat', 'PodDisruptionBudget/chat']);
  assert.deepEqual(st.problems, []);
});

test('endpoint: wss through a TLS exposure, ws without TLS, in-cluster service URL otherwise', () => {
  assert.equal(endpoint(gateway(fullSpec())), 'wss://rt.example.com/');
  assert.equal(endpoint(gateway({ image: 'gw:1', auth: JWT_AUTH, exposure: { host: 'rt.example.com' } })), 'ws://rt.example.com/');
  assert.equal(endpoint(gateway(minimal)), 'ws://chat.apps.svc:8081/');
});

test('builders are pure: the same input gives equal output and the spec is not mutated', () => {
  const spec = fullSpec();
  const frozen = JSON.stringify(spec);
  const a = desiredState(gateway(spec), { secretHash: 'h', capabilities: { httpRoute: true, serviceMonitor: true } });
  const b = desiredState(gateway(spec), { secretHash: 'h', capabilities: { httpRoute: true, serviceMonitor: true } });
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(spec), frozen);
});
