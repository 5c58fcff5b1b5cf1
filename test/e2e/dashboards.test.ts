/**
 * The chart's Grafana dashboards and alerts against what the code really exports: a real Prometheus
 * scrapes a two-replica fleet (Redis, real gateway processes) and the operator (against a real
 * kube-apiserver), under a little traffic; then every panel query and every alert expression is
 * evaluated through Prometheus' HTTP API. A query naming a metric nobody exports, or a panel that
 * shows nothing, fails here instead of on an operator's screen.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { sioClient, sioConnected, wsClient, wsRefusal, type SioClient, type WsClient } from '../harness/clients.ts';
import { CHART_DIR, helmEnv, runOk } from '../harness/helm.ts';
import { startKube, type KubeCluster } from '../harness/kube.ts';
import { startPrometheus, promtool, type Prometheus } from '../harness/prometheus.ts';
import { waitFor } from '../harness/process.ts';
import { hsToken } from '../harness/tokens.ts';
import { createGateway, createNamespace, createSecret, installCrd, startOperator, type OperatorProcess } from '../integration/operator/helpers.ts';
import { JWT_AUTH } from '../unit/operator/fixtures.ts';
import { startFleet, type Fleet } from './fleet.ts';

const NS = 'rtgw-e2e';
const SERVICE = 'rtgw';
const OPERATOR_NS = 'rtgw-system';

let fleet: Fleet;
let kube: KubeCluster;
let operator: OperatorProcess;
let prom: Prometheus;
const clients: { close(): void }[] = [];

interface Target { expr: string; legendFormat?: string }
interface Panel { title: string; type: string; targets?: Target[] }
interface Dashboard { uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query: string | { query: string } }[] } }

const dashboards: [string, Dashboard][] = readdirSync(join(CHART_DIR, 'dashboards')).filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(readFileSync(join(CHART_DIR, 'dashboards', f), 'utf8')) as Dashboard]);

/** Grafana's variables, as they would be with this fleet selected. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '30s')
    .replaceAll('$namespace', NS)
    .replaceAll('$service', SERVICE)
    .replaceAll('$pod', 'gw-0|gw-1');
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are neither functions, keywords, nor inside {}, [], "" or by/on (...). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Names in a /metrics exposition (series names, so histograms contribute _bucket/_sum/_count). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

/** Series names Prometheus makes up itself (not exported by anything of ours). */
const SYNTHETIC = new Set(['up']);

let known: Set<string>;
let metricsTexts: Record<string, string>;

async function alertRules(): Promise<{ groups: { name: string; rules: { alert: string; expr: string }[] }[] }> {
  const out = await runOk('helm', ['template', 'rt', CHART_DIR, '--namespace', OPERATOR_NS, '--set', 'prometheusRule.enabled=true', '--set', 'serviceMonitor.operator.enabled=true',
    '--show-only', 'templates/prometheusrule.yaml'], helmEnv(mkdtempSync(join(tmpdir(), 'rtgw-helm-'))));
  const [rule] = loadAll(out) as { spec: { groups: { name: string; rules: { alert: string; expr: string }[] }[] } }[];
  return { groups: rule!.spec.groups };
}

describe('dashboards and alerts against a running fleet and operator', () => {
  before(async () => {
    // MAX_CONNECTIONS_PER_USER=2: the third connection of one user is refused, so the rate-limit panels have data.
    // With NATS, so the bridge's series exist (they are exported only where NATS_URL is set).
    fleet = await startFleet(2, { nats: true, env: { MAX_CONNECTIONS_PER_USER: '2' } });
    kube = await startKube();
    await installCrd(kube.client);
    await createNamespace(kube.client, 'apps');
    // Both fleets name it, so 'broken' fails where intended (its Deployment), not at SecretNotFound.
    await createSecret(kube.client, 'apps', JWT_AUTH.jwtSecretRef.name, { [JWT_AUTH.jwtSecretRef.key]: 'e2e-secret-0123456789abcdef0123456789abcdef' });
    operator = await startOperator(kube, 'operator-0');
    // One fleet that reconciles, and one whose Deployment the API server rejects (an invalid nodeSelector
    // key the CRD cannot catch), so the reconcile-error panels have data.
    await createGateway(kube.client, 'apps', 'good', { image: 'realtime-gateway/gateway:0.1.0', replicas: 1, auth: JWT_AUTH });
    await createGateway(kube.client, 'apps', 'broken', { image: 'realtime-gateway/gateway:0.1.0', auth: JWT_AUTH, pod: { nodeSelector: { 'not a label key!': 'x' } } });

    prom = await startPrometheus({
      [SERVICE]: fleet.gateways.map((g, i) => ({ address: `127.0.0.1:${g.port}`, labels: { namespace: NS, service: SERVICE, pod: `gw-${i}`, container: 'gateway' } })),
      'rt-realtime-gateway-operator': [{ address: `127.0.0.1:${operator.metricsPort}`, labels: { namespace: OPERATOR_NS, service: 'rt-realtime-gateway-operator', pod: 'operator-0', container: 'operator' } }],
    });

    // Traffic: both transports on both replicas in one room, HTTP and client publishes, a refused
    // token, a connection over the per-user limit, and a disconnect.
    const ws = async (i: number, sub: string): Promise<WsClient> => {
      const c = await wsClient(fleet.gateways[i]!.wsUrl({ tenant_id: 't1' }), { authorization: `Bearer ${await hsToken({ sub, tenant: 't1' })}` });
      await c.inbox.next('connected');
      clients.push(c);
      return c;
    };
    const sio = async (i: number, sub: string): Promise<SioClient> => {
      const c = sioClient(fleet.gateways[i]!.httpUrl, { auth: { token: await hsToken({ sub, tenant: 't1' }) }, query: { tenant_id: 't1' } });
      await sioConnected(c);
      clients.push(c as unknown as { close(): void });
      return c;
    };
    const a = await ws(0, 'alice');
    const b = await sio(1, 'bob');
    await a.request({ type: 'subscribe', topics: ['field:1'] }, 'subscribed');
    await b.request('subscribe', { topics: ['field:1'] });
    await a.request({ type: 'join_room', room: 'chat:x' }, 'room_joined');
    await b.request('join_room', { room: 'chat:x' });
    for (let n = 0; n < 5; n++) {
      const r = await fleet.gateways[n % 2]!.api('/broadcast', { json: { tenant_id: 't1', field_id: '1', message: { event_type: 'field.updated', n } } });
      assert.equal(r.status, 200);
    }
    await b.request('broadcast', { room: 'chat:x', message: 'hello' });
    await a.inbox.next('message');
    await wsRefusal(fleet.gateways[0]!.wsUrl({ tenant_id: 't1' }), { authorization: 'Bearer not-a-token' });
    await ws(1, 'carol');
    await ws(1, 'carol');
    await wsRefusal(fleet.gateways[1]!.wsUrl({ tenant_id: 't1' }), { authorization: `Bearer ${await hsToken({ sub: 'carol', tenant: 't1' })}` });
    const leaving = await ws(0, 'dave');
    leaving.close();
    await leaving.closed;
    // The client sees the close handshake complete a moment before the server counts the disconnect.
    await waitFor('the disconnect counted', async () => /^rtgw_disconnects_total\{/m.test((await fleet.gateways[0]!.api('/metrics')).body as string), 10_000, 100);

    metricsTexts = {
      'gateway 0': (await fleet.gateways[0]!.api('/metrics')).body as string,
      'gateway 1': (await fleet.gateways[1]!.api('/metrics')).body as string,
    };
    await waitFor('a reconcile error in the operator metrics', async () => /rtgw_operator_reconcile_errors_total\{reason="Invalid"\}/.test(await operator.metrics()), 30_000, 200)
      .catch((err: unknown) => { throw new Error(`${String(err)}\n${operator.proc.output().slice(-3000)}`); });
    metricsTexts.operator = await operator.metrics();
    known = new Set([...SYNTHETIC, ...Object.values(metricsTexts).flatMap((t) => [...exposedNames(t)])]);
    // Prometheus has the traffic once the last counters it produced are there.
    await waitFor('Prometheus to hold the traffic', async () =>
      (await prom.query('rtgw_rate_limited_total')).length > 0 &&
      (await prom.query('rtgw_operator_reconcile_errors_total')).length > 0 &&
      (await prom.query('count(rate(rtgw_deliveries_total[30s]))')).length > 0, 60_000, 250);
  });

  after(async () => {
    for (const c of clients) c.close();
    await prom?.stop();
    await operator?.proc.stop();
    await kube?.stop();
    await fleet?.stop();
  });

  it('finds metric names in PromQL (the parser the checks below rely on)', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, pod) (rate(rtgw_fanout_latency_seconds_bucket{a="b{c}"}[5m]))) > 0.5'), ['rtgw_fanout_latency_seconds_bucket']);
    assert.deepEqual(metricNames('(x == 0) and on (namespace) (max by (namespace) (max_over_time(y[6h])) == 1)').sort(), ['x', 'y']);
    assert.deepEqual(metricNames('absent(up{job="a"} == 1)'), ['up']);
  });

  it('passes promtool check metrics on every /metrics (gateways and operator)', () => {
    for (const [who, text] of Object.entries(metricsTexts)) {
      const r = promtool(['check', 'metrics'], text);
      const problems = r.output.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      assert.deepEqual(problems, [], `${who}: ${r.output}`);
    }
  });

  for (const [file, dash] of dashboards) {
    it(`${file}: every panel query uses exported metrics and returns data`, async () => {
      const targets = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
      assert.ok(targets.length > 10);
      for (const { panel, expr } of targets) {
        for (const name of metricNames(expr)) assert.ok(known.has(name), `${file} "${panel}": ${name} is not exported by the gateway or the operator (${expr})`);
        const q = substitute(expr);
        const result = await waitFor(`${file} "${panel}" to return data: ${q}`, async () => {
          const r = await prom.query(q);
          return r.length > 0 ? r : undefined;
        }, 30_000, 500);
        assert.ok(result.length > 0);
      }
    });

    it(`${file}: every template variable lists this fleet`, async () => {
      for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
        const query = typeof v.query === 'string' ? v.query : v.query.query;
        const m = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
        assert.ok(m, `${v.name}: ${query} is label_values(selector, label)`);
        for (const name of metricNames(m[1]!)) assert.ok(known.has(name), `${v.name}: ${name} is not exported`);
        const r = await prom.query(`group by (${m[2]}) (${substitute(m[1]!)})`);
        const values = r.map((s) => s.metric[m[2]!]);
        assert.ok(values.includes({ namespace: NS, service: SERVICE, pod: 'gw-0' }[m[2]!]), `${v.name} lists ${JSON.stringify(values)}`);
      }
    });
  }

  it('the PrometheusRule passes promtool check rules, and every alert expression uses exported metrics and evaluates', async () => {
    const rules = await alertRules();
    const file = join(mkdtempSync(join(tmpdir(), 'rtgw-rules-')), 'rules.yaml');
    writeFileSync(file, JSON.stringify(rules, null, 2));
    const checked = promtool(['check', 'rules', file]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /SUCCESS/);
    const alerts = rules.groups.flatMap((g) => g.rules);
    assert.ok(alerts.length >= 10);
    for (const { alert, expr } of alerts) {
      for (const name of metricNames(expr)) assert.ok(known.has(name), `${alert}: ${name} is not exported by the gateway or the operator (${expr})`);
      await prom.query(expr);
    }
    // With every replica up and answering, the down alerts are quiet and the selector matches the fleet.
    assert.deepEqual(await prom.query(alerts.find((a) => a.alert === 'RealtimeGatewayNoReplicasUp')!.expr), []);
    assert.equal((await prom.query('sum(up{container="gateway"})'))[0]!.value[1], '2');
  });
});
