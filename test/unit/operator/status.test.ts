import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeStatus, stableJson, statusChanged, type DeploymentView } from '../../../operator/src/status.ts';
import { JWT_AUTH, gateway } from './fixtures.ts';

const rg = gateway({ image: 'gw:1', replicas: 3, auth: JWT_AUTH });
const dep = (status: DeploymentView['status'], generation = 2): DeploymentView => ({ metadata: { generation }, spec: { replicas: 3 }, status });
const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions?.find((c) => c.type === type);

test('all replicas updated and ready: Ready, not Progressing, not Degraded; selector and endpoint filled', () => {
  const s = computeStatus(rg, { deployment: dep({ observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3 }), failure: undefined }, 'T1');
  assert.equal(cond(s, 'Ready')?.status, 'True');
  assert.equal(cond(s, 'Ready')?.reason, 'AllReplicasReady');
  assert.equal(cond(s, 'Progressing')?.status, 'False');
  assert.equal(cond(s, 'Degraded')?.status, 'False');
  assert.equal(s.observedGeneration, 4);
  assert.equal(s.replicas, 3);
  assert.equal(s.readyReplicas, 3);
  assert.equal(s.selector, 'app.kubernetes.io/name=realtime-gateway,app.kubernetes.io/instance=chat');
  assert.equal(s.endpoint, 'ws://chat.apps.svc:8081/');
});

test('a rollout in flight is Progressing and not Ready', () => {
  const s = computeStatus(rg, { deployment: dep({ observedGeneration: 2, replicas: 4, readyReplicas: 3, updatedReplicas: 1 }), failure: undefined }, 'T1');
  assert.equal(cond(s, 'Ready')?.status, 'False');
  assert.equal(cond(s, 'Progressing')?.reason, 'RollingOut');
  const stale = computeStatus(rg, { deployment: dep({ observedGeneration: 1, replicas: 3, readyReplicas: 3, updatedReplicas: 3 }), failure: undefined }, 'T1');
  assert.equal(cond(stale, 'Progressing')?.status, 'True');
});

test('a failure and a stalled rollout are Degraded with their reasons', () => {
  const failed = computeStatus(rg, { deployment: undefined, failure: { reason: 'SecretNotFound', message: 'jwt/secret' } }, 'T1');
  assert.deepEqual([cond(failed, 'Degraded')?.status, cond(failed, 'Degraded')?.reason], ['True', 'SecretNotFound']);
  assert.equal(cond(failed, 'Ready')?.reason, 'DeploymentMissing');
  const stalled = computeStatus(rg, {
    deployment: dep({ observedGeneration: 2, replicas: 3, updatedReplicas: 1, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out' }] }),
    failure: undefined,
  }, 'T1');
  assert.equal(cond(stalled, 'Degraded')?.reason, 'RolloutStalled');
});

test('lastTransitionTime moves only when a condition changes status; unchanged status is not rewritten', () => {
  const ready = dep({ observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3 });
  const first = computeStatus(rg, { deployment: ready, failure: undefined }, 'T1');
  const again = computeStatus({ ...rg, status: first }, { deployment: ready, failure: undefined }, 'T2');
  assert.equal(cond(again, 'Ready')?.lastTransitionTime, 'T1');
  assert.equal(statusChanged(first, again), false);
  const down = computeStatus({ ...rg, status: first }, { deployment: dep({ observedGeneration: 2, replicas: 3, readyReplicas: 2, updatedReplicas: 3 }), failure: undefined }, 'T3');
  assert.equal(cond(down, 'Ready')?.lastTransitionTime, 'T3');
  assert.equal(cond(down, 'Progressing')?.lastTransitionTime, 'T1');
  assert.equal(statusChanged(first, down), true);
});

test('stableJson ignores key order and undefined fields', () => {
  assert.equal(stableJson({ b: 1, a: [{ y: 2, x: undefined, z: 1 }] }), stableJson({ a: [{ z: 1, y: 2 }], b: 1 }));
});
