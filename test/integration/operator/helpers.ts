/** Helpers shared by the operator's integration tests: CRD install, operator processes, polling. */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../harness/ports.ts';
import { start, waitFor, type Started } from '../../harness/process.ts';
import type { KubeCluster } from '../../harness/kube.ts';
import { isCode, resourcePath, type KubeClient } from '../../../operator/src/kube/client.ts';
import type { RealtimeGateway, RealtimeGatewaySpec } from '../../../operator/src/api/types.ts';
import { loadCrd } from '../../unit/operator/fixtures.ts';

export const RG_PATH = (ns: string, name?: string, sub?: string) => resourcePath('realtime.gateway.dev/v1alpha1', 'realtimegateways', ns, name, sub);

/** Installs crds/ as it is and waits until the API server serves it. */
export async function installCrd(client: KubeClient): Promise<void> {
  const crd = loadCrd();
  await client.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd });
  await waitFor('the CRD to be Established', async () => {
    const got = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
    return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true;
  }, 30_000, 100);
  // Discovery lags Established by a moment: wait until the resource is listable.
  await waitFor('realtimegateways to be listable', () => client.request('GET', RG_PATH('default')).then(() => true, () => false), 30_000, 100);
}

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
}

export async function createSecret(client: KubeClient, ns: string, name: string, data: Record<string, string>): Promise<void> {
  await client.request('POST', resourcePath('v1', 'secrets', ns), {
    body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: data },
  });
}

export async function createGateway(client: KubeClient, ns: string, name: string, spec: RealtimeGatewaySpec): Promise<RealtimeGateway> {
  return client.request<RealtimeGateway>('POST', RG_PATH(ns), {
    body: { apiVersion: 'realtime.gateway.dev/v1alpha1', kind: 'RealtimeGateway', metadata: { name, namespace: ns }, spec },
  });
}

export async function mergePatch<T>(client: KubeClient, path: string, body: unknown): Promise<T> {
  return client.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
}

export async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.request<T>('GET', path);
  } catch (err) {
    if (isCode(err, 'NotFound')) return undefined;
    throw err;
  }
}

export interface OperatorProcess {
  proc: Started;
  metricsPort: number;
  identity: string;
  metrics(): Promise<string>;
}

/** Runs `node operator/src/main.ts` against the test cluster, as `npm run operator` would. */
export async function startOperator(kube: KubeCluster, identity: string, env: Record<string, string> = {}): Promise<OperatorProcess> {
  const metricsPort = await freePort();
  const proc = start(process.execPath, [new URL('../../../operator/src/main.ts', import.meta.url).pathname], {
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: kube.kubeconfig,
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      LEADER_ELECTION_NAMESPACE: 'default',
      POD_NAME: identity,
      // Short leases so failover happens within seconds in tests.
      LEASE_DURATION_SECONDS: '4',
      RENEW_DEADLINE_SECONDS: '3',
      RETRY_PERIOD_SECONDS: '1',
      RESYNC_SECONDS: '20',
      WATCH_SECONDS: '30',
      WORKERS: '4',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  await waitFor(`operator ${identity} /healthz`, async () => (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).ok, 20_000, 100)
    .catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- operator output ---\n${proc.output().slice(-4000)}`);
    });
  return {
    proc, metricsPort, identity,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
  };
}

export async function leaseHolder(client: KubeClient): Promise<string | undefined> {
  const lease = await getOrUndefined<{ spec: { holderIdentity?: string } }>(client, resourcePath('coordination.k8s.io/v1', 'leases', 'default', 'realtime-gateway-operator'));
  return lease?.spec.holderIdentity ?? undefined;
}

/** `actual` has every field `expected` has, with equal values (arrays element by element). */
export function containsFields(actual: unknown, expected: unknown, path = ''): string[] {
  if (expected === null || typeof expected !== 'object') {
    return Object.is(actual, expected) || actual === expected ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`];
    return expected.flatMap((e, i) => containsFields(actual[i], e, `${path}[${i}]`));
  }
  if (actual === null || typeof actual !== 'object') return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
  return Object.entries(expected as Record<string, unknown>).flatMap(([k, v]) => containsFields((actual as Record<string, unknown>)[k], v, path === '' ? k : `${path}.${k}`));
}

export { sleep, waitFor };
