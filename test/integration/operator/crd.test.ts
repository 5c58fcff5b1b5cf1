/**
 * crds/ against a real kube-apiserver: it installs, the API server applies its defaults, refuses
 * invalid resources with the schema's and the CEL rules' own messages, serves the printer columns
 * and the scale subresource.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../../harness/kube.ts';
import { KubeApiError } from '../../../operator/src/kube/client.ts';
import type { RealtimeGateway, RealtimeGatewaySpec } from '../../../operator/src/api/types.ts';
import { JWT_AUTH, fullSpec } from '../../unit/operator/fixtures.ts';
import { RG_PATH, createGateway, installCrd, mergePatch } from './helpers.ts';

let kube: KubeCluster;

before(async () => {
  kube = await startKube();
  await installCrd(kube.client);
});

after(async () => {
  await kube?.stop();
});

test('the full sample is accepted and the minimal one gets the schema defaults', async () => {
  await createGateway(kube.client, 'default', 'full', fullSpec());
  const rg = await createGateway(kube.client, 'default', 'minimal', { image: 'gw:1', auth: JWT_AUTH, exposure: { host: 'rt.example.com' }, redis: { urlSecretRef: { name: 'r', key: 'u' } } });
  assert.equal(rg.spec.replicas, 2);
  assert.equal(rg.spec.port, 8081);
  assert.equal(rg.spec.logLevel, 'info');
  assert.equal(rg.spec.imagePullPolicy, 'IfNotPresent');
  assert.equal(rg.spec.drainSeconds, 20);
  assert.equal(rg.spec.redis?.streamName, 'rtgw:stream');
  assert.deepEqual(rg.spec.exposure, { host: 'rt.example.com', sticky: 'ingress-nginx', websocketTimeoutSeconds: 3600, cookieName: 'rtgw-affinity' });
});

const invalid: [string, (s: RealtimeGatewaySpec) => RealtimeGatewaySpec, RegExp][] = [
  ['no image', ({ image: _, ...s }) => s as RealtimeGatewaySpec, /spec\.image: Required value/],
  ['negative replicas', (s) => ({ ...s, replicas: -1 }), /spec\.replicas: Invalid value: -1: spec\.replicas in body should be greater than or equal to 0/],
  ['unknown log level', (s) => ({ ...s, logLevel: 'loud' as never }), /spec\.logLevel: Unsupported value: "loud"/],
  ['websocket timeout below socket.io ping interval + timeout', (s) => ({ ...s, exposure: { ...s.exposure!, websocketTimeoutSeconds: 30 } }),
    /spec\.exposure\.websocketTimeoutSeconds: Invalid value: .*must be longer than socket\.io's pingInterval \+ pingTimeout \(25s \+ 20s = 45s\)/],
  ['autoscaling min above max', (s) => ({ ...s, autoscaling: { minReplicas: 5, maxReplicas: 2, targetCPUUtilizationPercentage: 50 } }),
    /autoscaling\.minReplicas must not exceed autoscaling\.maxReplicas/],
  ['autoscaling without a target', (s) => ({ ...s, autoscaling: { minReplicas: 1, maxReplicas: 2 } }), /autoscaling needs targetCPUUtilizationPercentage or targetConnectionsPerPod/],
  ['redis stream bounded twice', (s) => ({ ...s, redis: { ...s.redis!, streamMaxLength: 1000 } }), /set either redis\.streamMaxLength or redis\.recoveryWindowSeconds, not both/],
  ['no auth (the gateway would refuse to start)', ({ auth: _, ...s }) => s as RealtimeGatewaySpec, /spec\.auth: Required value/],
  ['auth with neither a JWT secret nor JWKS', (s) => ({ ...s, auth: { issuer: 'https://auth.example.com/' } }),
    /auth needs jwtSecretRef \(HS\* algorithms\) or jwksUrl \(RS\*, PS\*, ES\*, EdDSA\)/],
  ['HS256 without a JWT secret', (s) => ({ ...s, auth: { algorithms: ['HS256'] } }), /auth\.jwtSecretRef is required when auth\.algorithms has an HS\* algorithm/],
  ['RS256 without JWKS', (s) => ({ ...s, auth: { algorithms: ['RS256'] } }), /auth\.jwksUrl is required when auth\.algorithms has an RS\*, PS\*, ES\* or EdDSA algorithm/],
  ['gateway-api without a gatewayRef', (s) => ({ ...s, exposure: { host: 'rt.example.com', sticky: 'gateway-api' } }), /exposure\.gatewayRef is required when exposure\.sticky is gateway-api/],
  ['both minAvailable and maxUnavailable', (s) => ({ ...s, disruptionBudget: { minAvailable: 1, maxUnavailable: 1 } }), /disruptionBudget needs exactly one of minAvailable or maxUnavailable/],
  ['grace period shorter than the drain', (s) => ({ ...s, drainSeconds: 30, pod: { terminationGracePeriodSeconds: 30 } }), /pod\.terminationGracePeriodSeconds must be longer than drainSeconds/],
  ['host that is not a DNS name', (s) => ({ ...s, exposure: { ...s.exposure!, host: 'Not A Host' } }), /exposure\.host must be a DNS name/],
  ['nats URL with the wrong scheme', (s) => ({ ...s, nats: { url: 'http://nats:4222' } }), /nats\.url must be a nats:\/\/, tls:\/\/, ws:\/\/ or wss:\/\/ URL/],
  ['a secret reference without a key', (s) => ({ ...s, serviceApiKeysSecretRef: { name: 'keys' } as never }), /spec\.serviceApiKeysSecretRef\.key: Required value/],
];

for (const [what, mutate, message] of invalid) {
  test(`the API server refuses a resource with ${what}`, async () => {
    const err = await createGateway(kube.client, 'default', 'bad', mutate(fullSpec())).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KubeApiError, `expected a refusal, got ${String(err)}`);
    assert.equal(err.code, 'Invalid');
    assert.match(err.message, message);
  });
}

test('CEL rules also guard updates', async () => {
  const err = await mergePatch(kube.client, RG_PATH('default', 'full'), { spec: { exposure: { websocketTimeoutSeconds: 10 } } }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof KubeApiError && err.code === 'Invalid', String(err));
});

test('printer columns: Ready, Replicas, Endpoint, Age (what kubectl get rtgw shows)', async () => {
  const table = await kube.client.request<{ columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] }>('GET', RG_PATH('default'), {
    accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
  });
  assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Ready', 'Replicas', 'Endpoint', 'Age']);
  assert.ok(table.rows.length >= 2);
});

test('the short name rtgw is served', async () => {
  const res = await kube.client.request<{ resources: { name: string; shortNames?: string[]; kind: string }[] }>('GET', '/apis/realtime.gateway.dev/v1alpha1');
  const r = res.resources.find((x) => x.name === 'realtimegateways');
  assert.deepEqual(r?.shortNames, ['rtgw']);
  assert.ok(res.resources.some((x) => x.name === 'realtimegateways/scale'));
  assert.ok(res.resources.some((x) => x.name === 'realtimegateways/status'));
});

test('scale subresource: kubectl scale writes spec.replicas, reads status.replicas and the selector', async () => {
  const scale = await kube.client.request<{ spec: { replicas: number } }>('GET', RG_PATH('default', 'full', 'scale'));
  assert.equal(scale.spec.replicas, 3);
  await kube.client.request('PATCH', RG_PATH('default', 'full', 'scale'), { body: { spec: { replicas: 5 } }, contentType: 'application/merge-patch+json' });
  const rg = await kube.client.request<RealtimeGateway>('GET', RG_PATH('default', 'full'));
  assert.equal(rg.spec.replicas, 5);
});

test('status is a subresource: a spec write cannot set status', async () => {
  const rg = await mergePatch<RealtimeGateway>(kube.client, RG_PATH('default', 'minimal'), { status: { endpoint: 'wss://forged/' } });
  assert.equal(rg.status?.endpoint, undefined);
});
