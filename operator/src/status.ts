/** Status of a RealtimeGateway from what the reconcile saw. Pure. */
import type { Condition, RealtimeGateway, RealtimeGatewayStatus } from './api/types.ts';
import { endpoint, selectorString } from './desired/index.ts';
import { DEFAULTS } from './desired/defaults.ts';

export interface DeploymentView {
  metadata: { generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface Observation {
  deployment: DeploymentView | undefined;
  /** Why the children could not be applied this round; undefined when they were. */
  failure: { reason: string; message: string } | undefined;
}

type Cond = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

function readiness(rg: RealtimeGateway, d: DeploymentView | undefined): { ready: Cond; progressing: Cond } {
  if (d === undefined) {
    return {
      ready: { type: 'Ready', status: 'False', reason: 'DeploymentMissing', message: 'the Deployment does not exist yet' },
      progressing: { type: 'Progressing', status: 'True', reason: 'Creating', message: 'creating the fleet' },
    };
  }
  const want = d.spec?.replicas ?? rg.spec.replicas ?? DEFAULTS.replicas;
  const st = d.status ?? {};
  const ready = st.readyReplicas ?? 0;
  const updated = st.updatedReplicas ?? 0;
  const total = st.replicas ?? 0;
  const observed = (st.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
  const stalled = st.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded');
  const rolledOut = observed && updated >= want && total === updated;
  const progressing: Cond = stalled
    ? { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: stalled.message ?? 'the rollout stalled' }
    : rolledOut
      ? { type: 'Progressing', status: 'False', reason: 'RolloutComplete', message: `${updated} of ${want} pods run the current template` }
      : { type: 'Progressing', status: 'True', reason: 'RollingOut', message: `${updated} of ${want} pods updated, ${total} exist` };
  const isReady = rolledOut && ready >= want;
  const readyCond: Cond = isReady
    ? { type: 'Ready', status: 'True', reason: 'AllReplicasReady', message: `${ready} of ${want} pods ready` }
    : { type: 'Ready', status: 'False', reason: 'ReplicasNotReady', message: `${ready} of ${want} pods ready` };
  return { ready: readyCond, progressing };
}

/** Keep lastTransitionTime when a condition's status did not change, as the API conventions ask. */
function stamp(c: Cond, previous: Condition[] | undefined, generation: number | undefined, now: string): Condition {
  const before = previous?.find((p) => p.type === c.type);
  const lastTransitionTime = before !== undefined && before.status === c.status ? before.lastTransitionTime : now;
  const out: Condition = { ...c, lastTransitionTime };
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}

export function computeStatus(rg: RealtimeGateway, obs: Observation, now: string): RealtimeGatewayStatus {
  const { ready, progressing } = readiness(rg, obs.deployment);
  const stalled = progressing.reason === 'ProgressDeadlineExceeded';
  const degraded: Cond = obs.failure !== undefined
    ? { type: 'Degraded', status: 'True', reason: obs.failure.reason, message: obs.failure.message }
    : stalled
      ? { type: 'Degraded', status: 'True', reason: 'RolloutStalled', message: progressing.message }
      : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'children applied' };
  const gen = rg.metadata.generation;
  const prev = rg.status?.conditions;
  const st = obs.deployment?.status ?? {};
  const status: RealtimeGatewayStatus = {
    replicas: st.replicas ?? 0,
    readyReplicas: st.readyReplicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    selector: selectorString(rg),
    endpoint: endpoint(rg),
    conditions: [stamp(ready, prev, gen, now), stamp(progressing, prev, gen, now), stamp(degraded, prev, gen, now)],
  };
  if (gen !== undefined) status.observedGeneration = gen;
  return status;
}

/** Whether writing `next` would change anything; status writes only happen when it would. */
export function statusChanged(prev: RealtimeGatewayStatus | undefined, next: RealtimeGatewayStatus): boolean {
  return stableJson(normalise(prev ?? {})) !== stableJson(normalise(next));
}

function normalise(s: RealtimeGatewayStatus): unknown {
  return {
    ...s,
    conditions: [...(s.conditions ?? [])].sort((a, b) => a.type.localeCompare(b.type)).map((c) => ({
      type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime, observedGeneration: c.observedGeneration,
    })),
  };
}

/** JSON with object keys sorted, so objects from the API server and from code compare by content. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
