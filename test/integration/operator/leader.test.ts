/**
 * Two operator processes against one API server: exactly one leads (holds the Lease and
 * reconciles), the other takes over within the lease duration when the leader is killed, and
 * restarting the operator creates no duplicate children.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKube, type KubeCluster } from '../../harness/kube.ts';
import { resourcePath } from '../../../operator/src/kube/client.ts';
import { createGateway, createNamespace, createSecret, installCrd, leaseHolder, startOperator, waitFor, type OperatorProcess } from './helpers.ts';
import { JWT_AUTH } from '../../unit/operator/fixtures.ts';

const NS = 'fleet';
let kube: KubeCluster;
const operators: OperatorProcess[] = [];

before(async () => {
  kube = await startKube();
  await installCrd(kube.client);
  await createNamespace(kube.client, NS);
  // The Secret JWT_AUTH names: without it the operator holds back the Deployment (SecretNotFound).
  await createSecret(kube.client, NS, JWT_AUTH.jwtSecretRef.name, { [JWT_AUTH.jwtSecretRef.key]: 'leader-test-secret-0123456789abcdef0123456789' });
});

after(async () => {
  for (const o of operators) await o.proc.stop();
  await kube?.stop();
});

const managedSelector = { labelSelector: 'app.kubernetes.io/managed-by=realtime-gateway-operator' };

async function children(): Promise<string[]> {
  const kinds: [string, string][] = [['apps/v1', 'deployments'], ['v1', 'services'], ['v1', 'configmaps'], ['policy/v1', 'poddisruptionbudgets']];
  const out: string[] = [];
  for (const [v, plural] of kinds) {
    const list = await kube.client.request<{ items: { metadata: { name: string; uid: string } }[] }>('GET', resourcePath(v, plural, NS), { query: managedSelector });
    out.push(...list.items.map((i) => `${plural}/${i.metadata.name}/${i.metadata.uid}`));
  }
  return out.sort();
}

test('two operators: exactly one leads and reconciles', async () => {
  operators.push(await startOperator(kube, 'op-1'), await startOperator(kube, 'op-2'));
  const holder = await waitFor('a leader', () => leaseHolder(kube.client), 20_000);
  assert.ok(holder === 'op-1' || holder === 'op-2');
  await createGateway(kube.client, NS, 'a', { image: 'gw:1', auth: JWT_AUTH });
  await waitFor('children of a', async () => (await children()).length === 4, 20_000);
  const leaderMetrics = await operators.find((o) => o.identity === holder)!.metrics();
  const standbyMetrics = await operators.find((o) => o.identity !== holder)!.metrics();
  assert.match(leaderMetrics, /^rtgw_operator_leader 1$/m);
  // Each informer listed once on start: a counter, one series per watched resource.
  assert.match(leaderMetrics, /^rtgw_operator_informer_relists_total\{resource="realtimegateways"\} [1-9]/m);
  assert.match(leaderMetrics, /^# TYPE rtgw_operator_informer_relists_total counter$/m);
  assert.match(standbyMetrics, /^rtgw_operator_leader 0$/m);
  assert.doesNotMatch(standbyMetrics, /rtgw_operator_reconciles_total\{/, 'the standby reconciled nothing');
});

test('failover: kill -9 the leader and the standby takes over and reconciles', async () => {
  const holder = (await leaseHolder(kube.client))!;
  const leader = operators.find((o) => o.identity === holder)!;
  const standby = operators.find((o) => o.identity !== holder)!;
  leader.proc.kill('SIGKILL');
  await leader.proc.exited;
  const t0 = Date.now();
  await waitFor('the standby to take the Lease', async () => (await leaseHolder(kube.client)) === standby.identity, 30_000, 100);
  const failoverMs = Date.now() - t0;
  // The lease is 4 s in these tests; the standby may take it only after that much silence.
  assert.ok(failoverMs < 15_000, `failover took ${failoverMs} ms`);
  await createGateway(kube.client, NS, 'b', { image: 'gw:1', auth: JWT_AUTH });
  await waitFor('children of b from the new leader', async () => (await children()).length === 8, 20_000);
  assert.match(await standby.metrics(), /^rtgw_operator_leader 1$/m);
});

test('a clean shutdown hands the Lease over at once; a restart creates no duplicates and changes nothing', async () => {
  const before = await children();
  const deployments = async () => (await kube.client.request<{ items: { metadata: { name: string; generation: number; resourceVersion: string } }[] }>('GET', resourcePath('apps/v1', 'deployments', NS))).items
    .map((d) => `${d.metadata.name}@${d.metadata.generation}`).sort();
  const genBefore = await deployments();
  const current = operators.find((o) => o.proc.child.exitCode === null && o.proc.child.signalCode === null)!;
  await current.proc.stop();
  assert.equal(await current.proc.exited, 0);
  // Released: holder cleared, so the next candidate need not wait out the lease.
  assert.ok(!(await leaseHolder(kube.client)));
  const restarted = await startOperator(kube, 'op-3');
  operators.push(restarted);
  await waitFor('op-3 leads', async () => (await leaseHolder(kube.client)) === 'op-3', 10_000, 100);
  await waitFor('op-3 reconciled both', async () => {
    const m = await restarted.metrics();
    const n = /^rtgw_operator_reconciles_total\{result="success"\} (\d+)/m.exec(m);
    return n !== null && Number(n[1]) >= 2;
  }, 20_000);
  assert.deepEqual(await children(), before, 'same children, same uids: nothing recreated or duplicated');
  assert.deepEqual(await deployments(), genBefore, 'no Deployment generation bumped: the re-apply was a no-op');
});
