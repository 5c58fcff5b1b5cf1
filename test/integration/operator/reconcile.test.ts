/**
 * The operator (`node operator/src/main.ts`, as `npm run operator` runs it) against a real control
 * plane: etcd, kube-apiserver, kube-controller-manager (garbage collection, Deployment ->
 * ReplicaSet), kube-scheduler and kwok (a fake node whose pods turn Ready).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../../harness/kube.ts';
import { resourcePath } from '../../../operator/src/kube/client.ts';
import type { RealtimeGateway, RealtimeGatewaySpec } from '../../../operator/src/api/types.ts';
import { configMap, deployment, hashConfig, configData } from '../../../operator/src/desired/workload.ts';
import { ingress, service } from '../../../operator/src/desired/network.ts';
import { pdb } from '../../../operator/src/desired/scaling.ts';
import { hashSecrets, SECRET_HASH_ANNOTATION, CONFIG_HASH_ANNOTATION, type KubeObject } from '../../../operator/src/desired/index.ts';
import { fullSpec } from '../../unit/operator/fixtures.ts';
import {
  RG_PATH, containsFields, createGateway, createNamespace, createSecret, getOrUndefined, installCrd, mergePatch,
  startOperator, waitFor, type OperatorProcess,
} from './helpers.ts';

const NS = 'apps';
let kube: KubeCluster;
let operator: OperatorProcess;

const secrets: Record<string, Record<string, string>> = {
  redis: { url: 'redis://:pw@redis:6379' },
  jwt: { secret: 'first-secret-0123456789abcdef0123456789' },
  nats: { 'user.creds': '-----BEGIN NATS USER JWT-----' },
  'service-keys': { keys: 'billing:k1,search:k2' },
};

/** fullSpec, adjusted so its pods schedule on the kwok node and pass admission. */
function spec(): RealtimeGatewaySpec {
  const s = fullSpec();
  delete s.autoscaling;
  s.pod = { ...s.pod!, nodeSelector: { type: 'kwok' }, affinity: {} };
  delete s.pod.priorityClassName;
  return s;
}

const path = {
  deployment: (name: string) => resourcePath('apps/v1', 'deployments', NS, name),
  service: (name: string) => resourcePath('v1', 'services', NS, name),
  configMap: (name: string) => resourcePath('v1', 'configmaps', NS, `${name}-config`),
  ingress: (name: string) => resourcePath('networking.k8s.io/v1', 'ingresses', NS, name),
  pdb: (name: string) => resourcePath('policy/v1', 'poddisruptionbudgets', NS, name),
  hpa: (name: string) => resourcePath('autoscaling/v2', 'horizontalpodautoscalers', NS, name),
};

async function get<T = KubeObject>(p: string): Promise<T> {
  return kube.client.request<T>('GET', p);
}

function b64(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

function expectedSecretHash(rg: RealtimeGateway): string {
  return hashSecrets(rg, (name) => (secrets[name] === undefined ? undefined : b64(secrets[name]))).hash;
}

type Dep = { metadata: { generation: number; uid: string }; spec: { replicas?: number; template: { metadata: { annotations: Record<string, string> }; spec: { containers: { image: string }[] } } } };

before(async () => {
  kube = await startKube({ controllerManager: true, nodes: true });
  await installCrd(kube.client);
  await createNamespace(kube.client, NS);
  for (const [name, data] of Object.entries(secrets)) await createSecret(kube.client, NS, name, data);
  operator = await startOperator(kube, 'op-reconcile');
});

after(async () => {
  await operator?.proc.stop();
  await kube?.stop();
});

test('create: every child exists, field by field as the builders describe it, owned by the resource', async () => {
  const rg = await createGateway(kube.client, NS, 'chat', spec());
  const dep = await waitFor('the Deployment', () => getOrUndefined<KubeObject>(kube.client, path.deployment('chat')), 30_000);
  const hash = expectedSecretHash(rg);
  const expected: [string, KubeObject][] = [
    [path.deployment('chat'), deployment(rg, hash)],
    [path.service('chat'), service(rg)],
    [path.configMap('chat'), configMap(rg)],
    [path.ingress('chat'), ingress(rg)!],
    [path.pdb('chat'), pdb(rg)],
  ];
  void dep;
  for (const [p, want] of expected) {
    const live = await waitFor(p, () => getOrUndefined<KubeObject>(kube.client, p), 30_000);
    assert.deepEqual(containsFields(live, want), [], `${want.kind} differs from the desired state`);
    const owner = (live.metadata as unknown as { ownerReferences: { uid: string; controller: boolean; kind: string }[] }).ownerReferences;
    assert.deepEqual(owner.map((o) => [o.kind, o.uid, o.controller]), [['RealtimeGateway', rg.metadata.uid, true]]);
  }
  // Spot checks in plain words, on top of the builder comparison.
  const d = await get<Dep & KubeObject>(path.deployment('chat'));
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.spec.template.spec.containers[0]?.image, 'ghcr.io/example/realtime-gateway:1.2.3');
  assert.equal(d.spec.template.metadata.annotations[SECRET_HASH_ANNOTATION], hash);
  const cm = await get<{ data: Record<string, string> }>(path.configMap('chat'));
  assert.equal(cm.data.NATS_SUBJECTS, 'rt.>,orders.*');
  assert.equal(cm.data.RECOVERY_WINDOW_SECONDS, '300');
  assert.equal(cm.data.JWT_SECRET_KEY, undefined, 'secrets never land in the ConfigMap');
  // Not asked for, or not installed in this cluster.
  assert.equal(await getOrUndefined(kube.client, path.hpa('chat')), undefined);
  assert.equal(await getOrUndefined(kube.client, resourcePath('gateway.networking.k8s.io/v1', 'httproutes', NS, 'chat')).catch(() => undefined), undefined);
});

test('status: Ready once kwok reports the pods ready, with observedGeneration, replicas and the wss endpoint; Events recorded', async () => {
  const rg = await waitFor('Ready=True', async () => {
    const r = await get<RealtimeGateway>(RG_PATH(NS, 'chat'));
    return r.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? r : undefined;
  }, 60_000, 200);
  const st = rg.status!;
  assert.equal(st.observedGeneration, rg.metadata.generation);
  assert.equal(st.replicas, 3);
  assert.equal(st.readyReplicas, 3);
  assert.equal(st.endpoint, 'wss://rt.example.com/');
  assert.equal(st.selector, 'app.kubernetes.io/name=realtime-gateway,app.kubernetes.io/instance=chat');
  const byType = Object.fromEntries(st.conditions!.map((c) => [c.type, c]));
  assert.equal(byType.Ready?.reason, 'AllReplicasReady');
  assert.equal(byType.Progressing?.status, 'False');
  assert.equal(byType.Progressing?.reason, 'RolloutComplete');
  assert.equal(byType.Degraded?.status, 'False');
  const events = await waitFor('Created and Ready events', async () => {
    const list = await get<{ items: { reason: string; message: string; involvedObject: { name: string } }[] }>(resourcePath('v1', 'events', NS));
    const mine = list.items.filter((e) => e.involvedObject.name === 'chat');
    return mine.some((e) => e.reason === 'Ready') && mine.filter((e) => e.reason === 'Created').length >= 5 ? mine : undefined;
  }, 20_000, 200);
  assert.ok(events.some((e) => e.message === 'created Deployment chat'));
});

test('update: a spec change reaches the children (image, ConfigMap and its hash in the pod template)', async () => {
  await mergePatch(kube.client, RG_PATH(NS, 'chat'), { spec: { image: 'ghcr.io/example/realtime-gateway:1.2.4', logLevel: 'warn' } });
  const d = await waitFor('the new image', async () => {
    const dep = await get<Dep>(path.deployment('chat'));
    return dep.spec.template.spec.containers[0]?.image === 'ghcr.io/example/realtime-gateway:1.2.4' ? dep : undefined;
  }, 20_000);
  const cm = await get<{ data: Record<string, string> }>(path.configMap('chat'));
  assert.equal(cm.data.LOG_LEVEL, 'warn');
  assert.equal(d.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION], hashConfig(cm.data));
  const rg = await waitFor('observedGeneration to catch up', async () => {
    const r = await get<RealtimeGateway>(RG_PATH(NS, 'chat'));
    return r.status?.observedGeneration === r.metadata.generation ? r : undefined;
  }, 20_000);
  assert.equal(configData(rg).LOG_LEVEL, 'warn');
});

test('scale: the scale subresource (kubectl scale rtgw/chat --replicas=5) resizes the Deployment and status follows', async () => {
  await kube.client.request('PATCH', RG_PATH(NS, 'chat', 'scale'), { body: { spec: { replicas: 5 } }, contentType: 'application/merge-patch+json' });
  await waitFor('Deployment replicas 5', async () => (await get<Dep>(path.deployment('chat'))).spec.replicas === 5, 20_000);
  const scale = await waitFor('status.replicas 5 through /scale', async () => {
    const s = await get<{ status: { replicas: number; selector: string } }>(RG_PATH(NS, 'chat', 'scale'));
    return s.status.replicas === 5 ? s : undefined;
  }, 60_000, 200);
  assert.equal(scale.status.selector, 'app.kubernetes.io/name=realtime-gateway,app.kubernetes.io/instance=chat');
});

test('drift: hand edits of owned fields are put back, a deleted child is recreated', async () => {
  await kube.client.request('PATCH', path.deployment('chat'), {
    body: { spec: { replicas: 1, template: { spec: { containers: [{ name: 'gateway', image: 'evil:latest' }] } } } },
    contentType: 'application/strategic-merge-patch+json',
    query: { fieldManager: 'kubectl-edit' },
  });
  await waitFor('the image put back', async () => {
    const d = await get<Dep>(path.deployment('chat'));
    return d.spec.template.spec.containers[0]?.image === 'ghcr.io/example/realtime-gateway:1.2.4' && d.spec.replicas === 5;
  }, 20_000);
  await mergePatch(kube.client, path.ingress('chat'), { metadata: { annotations: { 'nginx.ingress.kubernetes.io/proxy-read-timeout': '10' } } });
  await waitFor('the ingress timeout put back', async () => {
    const i = await get<{ metadata: { annotations: Record<string, string> } }>(path.ingress('chat'));
    return i.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'] === '7200';
  }, 20_000);
  const before = await get<{ metadata: { uid: string } }>(path.service('chat'));
  await kube.client.request('DELETE', path.service('chat'));
  const recreated = await waitFor('the Service recreated', async () => {
    const s = await getOrUndefined<{ metadata: { uid: string } }>(kube.client, path.service('chat'));
    return s !== undefined && s.metadata.uid !== before.metadata.uid ? s : undefined;
  }, 20_000);
  assert.ok(recreated);
});

test('secret rotation: a new JWT secret changes the pod template hash and rolls a new ReplicaSet; an unread key does not', async () => {
  const rsList = async () => (await get<{ items: { metadata: { name: string } }[] }>(resourcePath('apps/v1', 'replicasets', NS))).items.map((r) => r.metadata.name).sort();
  const hashBefore = (await get<Dep>(path.deployment('chat'))).spec.template.metadata.annotations[SECRET_HASH_ANNOTATION];
  // A key nobody reads: no roll.
  await mergePatch(kube.client, resourcePath('v1', 'secrets', NS, 'jwt'), { stringData: { unused: 'x' } });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await get<Dep>(path.deployment('chat'))).spec.template.metadata.annotations[SECRET_HASH_ANNOTATION], hashBefore);
  const rsBefore = await rsList();
  secrets.jwt = { secret: 'rotated-secret-0123456789abcdef01234567', unused: 'x' };
  await mergePatch(kube.client, resourcePath('v1', 'secrets', NS, 'jwt'), { stringData: { secret: secrets.jwt.secret } });
  const rg = await get<RealtimeGateway>(RG_PATH(NS, 'chat'));
  const want = expectedSecretHash(rg);
  assert.notEqual(want, hashBefore);
  await waitFor('the new secret hash in the pod template', async () => (await get<Dep>(path.deployment('chat'))).spec.template.metadata.annotations[SECRET_HASH_ANNOTATION] === want, 20_000);
  await waitFor('a new ReplicaSet (the fleet rolls)', async () => (await rsList()).some((n) => !rsBefore.includes(n)), 30_000);
});

test('spec toggles: autoscaling adds an HPA and leaves replicas to it; removing exposure deletes the Ingress', async () => {
  await mergePatch(kube.client, RG_PATH(NS, 'chat'), { spec: { autoscaling: { minReplicas: 2, maxReplicas: 6, targetCPUUtilizationPercentage: 60 } } });
  const h = await waitFor('the HPA', () => getOrUndefined<{ spec: { minReplicas: number; maxReplicas: number; scaleTargetRef: { name: string } } }>(kube.client, path.hpa('chat')), 20_000);
  assert.deepEqual([h.spec.minReplicas, h.spec.maxReplicas, h.spec.scaleTargetRef.name], [2, 6, 'chat']);
  // A reconcile applies the HPA and the Deployment concurrently: the HPA can be seen before the Deployment changes.
  const operatorOwnsReplicas = async () => {
    const managers = (await get<{ metadata: { managedFields: { manager: string; fieldsV1: unknown }[] } }>(path.deployment('chat'))).metadata.managedFields;
    const ours = managers.find((m) => m.manager === 'realtime-gateway-operator');
    assert.ok(ours, 'the operator manages the Deployment');
    return JSON.stringify(ours.fieldsV1).includes('"f:replicas"');
  };
  await waitFor('the operator no longer owns spec.replicas', async () => !(await operatorOwnsReplicas()), 20_000);
  await mergePatch(kube.client, RG_PATH(NS, 'chat'), { spec: { autoscaling: null, exposure: null } });
  await waitFor('the HPA deleted', async () => (await getOrUndefined(kube.client, path.hpa('chat'))) === undefined, 20_000);
  await waitFor('the Ingress deleted', async () => (await getOrUndefined(kube.client, path.ingress('chat'))) === undefined, 20_000);
  await waitFor('the in-cluster endpoint', async () => (await get<RealtimeGateway>(RG_PATH(NS, 'chat'))).status?.endpoint === `ws://chat.${NS}.svc:8081/`, 20_000);
});

test('a missing Secret: Degraded with SecretNotFound and a Warning event, then converges once it exists', async () => {
  await createGateway(kube.client, NS, 'late', { image: 'gw:1', replicas: 1, pod: { nodeSelector: { type: 'kwok' } }, auth: { jwtSecretRef: { name: 'late-jwt', key: 'secret' } } });
  const rg = await waitFor('Degraded=True', async () => {
    const r = await get<RealtimeGateway>(RG_PATH(NS, 'late'));
    return r.status?.conditions?.find((c) => c.type === 'Degraded' && c.status === 'True') ? r : undefined;
  }, 20_000);
  const degraded = rg.status!.conditions!.find((c) => c.type === 'Degraded')!;
  assert.equal(degraded.reason, 'SecretNotFound');
  assert.match(degraded.message, /late-jwt\/secret/);
  assert.equal(await getOrUndefined(kube.client, path.deployment('late')), undefined);
  await waitFor('a SecretNotFound warning event', async () => {
    const list = await get<{ items: { reason: string; type: string; involvedObject: { name: string } }[] }>(resourcePath('v1', 'events', NS));
    return list.items.some((e) => e.involvedObject.name === 'late' && e.reason === 'SecretNotFound' && e.type === 'Warning');
  }, 20_000);
  await createSecret(kube.client, NS, 'late-jwt', { secret: 'late-secret-0123456789abcdef0123456789ab' });
  await waitFor('the Deployment once the Secret exists', () => getOrUndefined(kube.client, path.deployment('late')), 20_000);
  await waitFor('Degraded=False', async () => (await get<RealtimeGateway>(RG_PATH(NS, 'late'))).status?.conditions?.some((c) => c.type === 'Degraded' && c.status === 'False'), 20_000);
});

test('delete: the garbage collector removes every child through the ownerReferences', async () => {
  await kube.client.request('DELETE', RG_PATH(NS, 'chat'), { query: { propagationPolicy: 'Foreground' } });
  for (const p of [path.deployment('chat'), path.service('chat'), path.configMap('chat'), path.pdb('chat')]) {
    await waitFor(`${p} gone`, async () => (await getOrUndefined(kube.client, p)) === undefined, 30_000, 200);
  }
  await waitFor('the resource itself gone', async () => (await getOrUndefined(kube.client, RG_PATH(NS, 'chat'))) === undefined, 30_000);
});

test('the operator exposes its own metrics: reconciles, errors, duration, queue depth', async () => {
  const text = await operator.metrics();
  for (const name of ['rtgw_operator_reconciles_total{result="success"}', 'rtgw_operator_reconcile_duration_seconds_count', 'rtgw_operator_queue_depth', 'rtgw_operator_leader 1']) {
    assert.ok(text.includes(name), `${name} in /metrics`);
  }
  assert.ok(text.includes('rtgw_operator_reconcile_errors_total'));
});
