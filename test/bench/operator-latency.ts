/**
 * Operator reconcile latency and memory with N RealtimeGateways on a real control plane
 * (etcd + kube-apiserver + kube-controller-manager from test/harness/kube.ts).
 *
 *   node test/bench/operator-latency.ts [count=100]
 *
 * Latency = from the PATCH of a resource's spec.image to the moment a watch on Deployments sees
 * the new image in that resource's Deployment (resource change -> child updated). Measured two
 * ways: one change at a time (an idle operator's latency) and all N changed at once (a burst
 * through the work queue). Memory = the operator's RSS and V8 heap from its own /metrics.
 */
import { performance } from 'node:perf_hooks';
import { startKube } from '../harness/kube.ts';
import { RG_PATH, createGateway, createNamespace, createSecret, installCrd, mergePatch, startOperator, waitFor } from '../integration/operator/helpers.ts';
import { JWT_AUTH } from '../unit/operator/fixtures.ts';
import { resourcePath } from '../../operator/src/kube/client.ts';

const count = Number(process.argv[2] ?? 100);
const NS = 'bench';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `p50 ${pct(s, 50).toFixed(1)} ms, p99 ${pct(s, 99).toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms (n=${s.length})`;
}
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

const kube = await startKube({ controllerManager: true });
try {
  await installCrd(kube.client);
  await createNamespace(kube.client, NS);
  await createSecret(kube.client, NS, JWT_AUTH.jwtSecretRef.name, { [JWT_AUTH.jwtSecretRef.key]: 'bench-secret-0123456789abcdef0123456789abcdef' });
  const op = await startOperator(kube, 'bench', { LOG_LEVEL: 'warn', RESYNC_SECONDS: '600', WATCH_SECONDS: '300' });
  await waitFor('leadership', async () => /^rtgw_operator_leader 1$/m.test(await op.metrics()), 20_000);

  // Deployment image by name, as a watch sees it, with the time it saw it.
  const seen = new Map<string, { image: string; at: number }>();
  const waiters = new Map<string, { image: string; resolve: (at: number) => void }>();
  const stop = new AbortController();
  const list = await kube.client.request<{ metadata: { resourceVersion: string } }>('GET', resourcePath('apps/v1', 'deployments', NS));
  type Dep = { metadata: { name: string }; spec: { template: { spec: { containers: { image: string }[] } } } };
  const watching = kube.client.watch<Dep>(resourcePath('apps/v1', 'deployments', NS), { resourceVersion: list.metadata.resourceVersion, timeoutSeconds: 3600 }, (e) => {
    const at = performance.now();
    const image = e.object.spec?.template.spec.containers[0]?.image;
    if (image === undefined) return;
    seen.set(e.object.metadata.name, { image, at });
    const w = waiters.get(e.object.metadata.name);
    if (w !== undefined && w.image === image) {
      waiters.delete(e.object.metadata.name);
      w.resolve(at);
    }
  }, stop.signal).catch(() => undefined);
  const until = (name: string, image: string): Promise<number> => {
    const s = seen.get(name);
    if (s?.image === image) return Promise.resolve(s.at);
    return new Promise((resolve) => waiters.set(name, { image, resolve }));
  };

  const names = Array.from({ length: count }, (_, i) => `gw-${String(i).padStart(3, '0')}`);
  const t0 = performance.now();
  const created = names.map((n) => until(n, 'gw:1'));
  for (const n of names) await createGateway(kube.client, NS, n, { image: 'gw:1', replicas: 1, auth: JWT_AUTH });
  await Promise.all(created);
  const createMs = performance.now() - t0;
  console.log(`created ${count} RealtimeGateways; all Deployments present after ${createMs.toFixed(0)} ms`);

  // One at a time: an idle operator.
  const single: number[] = [];
  for (const n of names) {
    const done = until(n, 'gw:2');
    const t = performance.now();
    await mergePatch(kube.client, RG_PATH(NS, n), { spec: { image: 'gw:2' } });
    single.push((await done) - t);
  }
  console.log(`latency, one change at a time: ${summary(single)}`);

  // All at once: a burst through the queue.
  const burst: number[] = [];
  const tb = performance.now();
  const starts = new Map<string, number>();
  const all = names.map(async (n) => {
    const at = await until(n, 'gw:3');
    burst.push(at - starts.get(n)!);
  });
  await Promise.all(names.map(async (n) => {
    starts.set(n, performance.now());
    await mergePatch(kube.client, RG_PATH(NS, n), { spec: { image: 'gw:3' } });
  }));
  await Promise.all(all);
  console.log(`latency, ${count} changes at once: ${summary(burst)}; all done in ${(performance.now() - tb).toFixed(0)} ms`);

  const m = await op.metrics();
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  console.log(`operator memory with ${count} resources: RSS ${mib(metric(m, 'rtgw_operator_process_resident_memory_bytes'))}, V8 heap used ${mib(metric(m, 'rtgw_operator_nodejs_heap_size_used_bytes'))}`);
  console.log(`operator reconciles: ${metric(m, 'rtgw_operator_reconciles_total\\{result="success"\\}')} ok, ${metric(m, 'rtgw_operator_reconciles_total\\{result="error"\\}') || 0} failed`);
  stop.abort();
  await watching;
  await op.proc.stop();
} finally {
  await kube.stop();
}
