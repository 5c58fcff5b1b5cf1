/**
 * The chart against a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
 * and kwok's fake node, test/harness/kube.ts): helm install, the operator run locally with the chart's
 * ServiceAccount token (so the chart's RBAC is what the operator gets), a sample RealtimeGateway
 * reconciled into its children, helm upgrade, helm uninstall keeping the CRD.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, type KubeCluster } from '../../harness/kube.ts';
import { CHART_DIR, helmBinDir, helmEnv, run, runOk } from '../../harness/helm.ts';
import { resourcePath } from '../../../operator/src/kube/client.ts';
import { RG_PATH, createNamespace, getOrUndefined, startOperator, waitFor, type OperatorProcess } from '../operator/helpers.ts';

const NS = 'rtgw-system';
const RELEASE = 'rt';
const FULLNAME = 'rt-realtime-gateway-operator';
const SA = `system:serviceaccount:${NS}:${FULLNAME}`;
const CRD = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/realtimegateways.realtime.gateway.dev';

let kube: KubeCluster;
let env: Record<string, string>;
let dir: string;
let operator: OperatorProcess | undefined;
let sampleJwt: string | undefined;

// The sample fleet: schedulable on the kwok node, so its pods turn Ready without a container runtime.
const SAMPLE = ['--set', 'sampleGateway.enabled=true', '--set-json', 'sampleGateway.spec={"image":"realtime-gateway/gateway:0.1.0","replicas":2,"pod":{"nodeSelector":{"type":"kwok"}}}'];
// The chart's operator pod lands on the kwok node too (and turns Ready there); the real operator process runs here.
const COMMON = ['--namespace', NS, '--set', 'operator.leaderElection.leaseName=rtgw-leader'];

async function helm(args: string[]): Promise<string> {
  return runOk('helm', args, env);
}

before(async () => {
  helmBinDir();
  kube = await startKube({ controllerManager: true, nodes: true });
  dir = mkdtempSync(join(tmpdir(), 'rtgw-helm-install-'));
  env = helmEnv(dir, kube.kubeconfig);
  await createNamespace(kube.client, NS);
});

after(async () => {
  await operator?.proc.stop();
  await kube?.stop();
});

/** A kubeconfig holding a token of the chart's ServiceAccount (TokenRequest), so requests get exactly the chart's RBAC. */
async function serviceAccountKubeconfig(): Promise<string> {
  const tr = await kube.client.request<{ status: { token: string } }>('POST', resourcePath('v1', 'serviceaccounts', NS, FULLNAME, 'token'), {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const path = join(dir, 'operator.kubeconfig');
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: ${kube.server}, certificate-authority: ${join(kube.dir, 'certs/apiserver.crt')}}
users:
- name: operator
  user: {token: ${tr.status.token}}
contexts:
- name: test
  context: {cluster: test, user: operator}
current-context: test
`, { mode: 0o600 });
  return path;
}

async function canI(...args: string[]): Promise<boolean> {
  const r = await run('kubectl', ['auth', 'can-i', ...args, `--as=${SA}`], env);
  return r.stdout.trim() === 'yes';
}

describe('chart realtime-gateway-operator on a real API server', () => {
  it('helm install creates the CRD and the operator, whose Deployment becomes available', async () => {
    await helm(['install', RELEASE, CHART_DIR, ...COMMON, '--wait', '--timeout', '120s']);
    const crd = await kube.client.request<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', CRD);
    assert.ok(crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
    const d = await kube.client.request<any>('GET', resourcePath('apps/v1', 'deployments', NS, FULLNAME));
    assert.equal(d.status.availableReplicas, 1);
    assert.equal(d.spec.template.spec.serviceAccountName, FULLNAME);
    const status = await helm(['status', RELEASE, '--namespace', NS]);
    assert.match(status, /STATUS: deployed/);
    assert.match(status, /kubectl apply --server-side -f/);
  });

  it('gives the ServiceAccount what the operator needs and nothing more', async () => {
    for (const allowed of [
      ['list', 'realtimegateways.realtime.gateway.dev', '-A'], ['patch', 'realtimegateways.realtime.gateway.dev', '--subresource=status', '-n', 'apps'],
      ['watch', 'secrets', '-A'], ['patch', 'deployments.apps', '-n', 'apps'], ['create', 'services', '-n', 'apps'], ['delete', 'ingresses.networking.k8s.io', '-n', 'apps'],
      ['update', 'leases.coordination.k8s.io/rtgw-leader', '-n', NS], ['get', 'customresourcedefinitions.apiextensions.k8s.io/servicemonitors.monitoring.coreos.com'],
    ]) assert.equal(await canI(...allowed), true, `can ${allowed.join(' ')}`);
    for (const denied of [
      ['get', 'secrets', '-n', 'apps'], ['list', 'pods', '-A'], ['delete', 'realtimegateways.realtime.gateway.dev', '-n', 'apps'],
      ['update', 'realtimegateways.realtime.gateway.dev', '-n', 'apps'], ['update', 'leases.coordination.k8s.io/other', '-n', NS],
      ['create', 'leases.coordination.k8s.io', '-n', 'apps'], ['get', 'customresourcedefinitions.apiextensions.k8s.io/realtimegateways.realtime.gateway.dev'],
      ['create', 'clusterroles.rbac.authorization.k8s.io'],
    ]) assert.equal(await canI(...denied), false, `cannot ${denied.join(' ')}`);
  });

  it('with the chart\'s RBAC, the operator reconciles the sample RealtimeGateway into its children and Ready', async () => {
    operator = await startOperator(kube, 'helm-test-operator', {
      KUBECONFIG: await serviceAccountKubeconfig(),
      LEADER_ELECTION_NAMESPACE: NS,
      LEADER_ELECTION_ID: 'rtgw-leader',
    });
    await helm(['upgrade', RELEASE, CHART_DIR, ...COMMON, ...SAMPLE, '--set', 'operator.logLevel=debug', '--wait', '--timeout', '120s']);
    const rg = await waitFor('the sample RealtimeGateway to be Ready', async () => {
      const got = await getOrUndefined<any>(kube.client, RG_PATH(NS, 'example'));
      return got?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? got : undefined;
    }, 90_000, 250).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- operator output ---\n${operator!.proc.output().slice(-4000)}`);
    });
    assert.equal(rg.status.readyReplicas ?? rg.status.replicas, 2);
    // The CRD requires auth: the chart's default sample spec names the Secret it creates next to the sample.
    assert.deepEqual(rg.spec.auth.jwtSecretRef, { name: 'example-jwt', key: 'secret' });
    sampleJwt = (await kube.client.request<any>('GET', resourcePath('v1', 'secrets', NS, 'example-jwt'))).data.secret;
    assert.match(Buffer.from(sampleJwt!, 'base64').toString(), /^[A-Za-z0-9]{48}$/);
    for (const p of [
      resourcePath('apps/v1', 'deployments', NS, 'example'),
      resourcePath('v1', 'services', NS, 'example'),
      resourcePath('v1', 'configmaps', NS, 'example-config'),
    ]) {
      const child = await kube.client.request<any>('GET', p);
      assert.equal(child.metadata.ownerReferences[0].uid, rg.metadata.uid, `${p} is owned by the RealtimeGateway`);
    }
    const lease = await kube.client.request<any>('GET', resourcePath('coordination.k8s.io/v1', 'leases', NS, 'rtgw-leader'));
    assert.equal(lease.spec.holderIdentity, 'helm-test-operator');
    // No reconcile was refused by RBAC on the way.
    assert.doesNotMatch(operator.proc.output(), /Forbidden/);
    assert.match(await operator.metrics(), /rtgw_operator_reconciles_total\{result="success"\} [1-9]/);
  });

  it('helm upgrade rolls out a changed value', async () => {
    const d = await kube.client.request<any>('GET', resourcePath('apps/v1', 'deployments', NS, FULLNAME));
    const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    assert.equal(env.LOG_LEVEL, 'debug');
    assert.equal(d.metadata.generation, 2);
    assert.match(await helm(['history', RELEASE, '--namespace', NS]), /2\s.*deployed\s.*Upgrade complete/);
    // Upgrading again keeps the sample's random JWT secret (lookup), so an upgrade does not roll the fleet.
    await helm(['upgrade', RELEASE, CHART_DIR, ...COMMON, ...SAMPLE, '--set', 'operator.logLevel=debug', '--wait', '--timeout', '120s']);
    const again = await kube.client.request<any>('GET', resourcePath('v1', 'secrets', NS, 'example-jwt'));
    assert.equal(again.data.secret, sampleJwt);
  });

  it('helm uninstall removes the release and keeps the CRD', async () => {
    await operator!.proc.stop();
    operator = undefined;
    await helm(['uninstall', RELEASE, '--namespace', NS, '--wait', '--timeout', '60s']);
    assert.equal(await getOrUndefined(kube.client, resourcePath('apps/v1', 'deployments', NS, FULLNAME)), undefined);
    assert.equal(await getOrUndefined(kube.client, '/apis/rbac.authorization.k8s.io/v1/clusterroles/' + FULLNAME), undefined);
    assert.equal(await getOrUndefined(kube.client, RG_PATH(NS, 'example')), undefined);
    assert.ok(await getOrUndefined(kube.client, CRD), 'the CRD outlives the release');
    // The kind is still served: RealtimeGateways elsewhere keep existing.
    await kube.client.request('GET', RG_PATH('default'));
  });
});
