/**
 * The chart as rendered by the real helm (installed from the npm registry, see test/harness/helm.ts):
 * lint, the schema, and every rendered object checked field by field. RBAC is compared with what
 * operator/src actually calls, so a new child kind without a rule fails here.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { CHART_DIR, helmBinDir, helmEnv, run, runOk } from '../../harness/helm.ts';
import { CHILD_KINDS } from '../../../operator/src/desired/index.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

const ROOT = new URL('../../../', import.meta.url).pathname;
let env: Record<string, string>;

before(() => {
  helmBinDir();
  env = helmEnv(mkdtempSync(join(tmpdir(), 'rtgw-helm-')));
});

async function template(args: string[] = []): Promise<Obj[]> {
  const out = await runOk('helm', ['template', 'rt', CHART_DIR, '--namespace', 'rtgw-system', ...args], env);
  return (loadAll(out) as (Obj | null)[]).filter((o): o is Obj => o !== null);
}

const ALL_ON = [
  '--set', 'serviceMonitor.operator.enabled=true', '--set', 'serviceMonitor.gateways.enabled=true',
  '--set', 'prometheusRule.enabled=true', '--set', 'sampleGateway.enabled=true',
];

function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is rendered (got ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')})`);
  return o;
}

/** Rules as sorted "group/resource[names]: verbs" lines, so the comparison is order-free and exact. */
function flatten(rules: Rule[]): string[] {
  return rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) =>
    `${g}/${res}${r.resourceNames ? `[${[...r.resourceNames].sort().join(',')}]` : ''}: ${[...r.verbs].sort().join(',')}`))).sort();
}

describe('chart realtime-gateway-operator: helm lint and template', () => {
  it('passes helm lint --strict with defaults and with every optional object on', async () => {
    for (const args of [[], ALL_ON, ['--set', 'operator.watchNamespace=apps']]) {
      const r = await run('helm', ['lint', '--strict', CHART_DIR, ...args], env);
      assert.equal(r.code, 0, `helm lint --strict ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('ships the repository CRD file unchanged (crds/ is the one source of truth)', async () => {
    const repo = readFileSync(join(ROOT, 'crds/realtimegateways.realtime.gateway.dev.yaml'), 'utf8');
    assert.equal(realpathSync(join(CHART_DIR, 'crds/realtimegateways.realtime.gateway.dev.yaml')), join(ROOT, 'crds/realtimegateways.realtime.gateway.dev.yaml'));
    // helm show crds puts a document separator before each file.
    const shown = (chart: string) => runOk('helm', ['show', 'crds', chart], env).then((s) => s.replace(/^---\n/, '').trim());
    assert.equal(await shown(CHART_DIR), repo.trim());
    // And a packaged chart carries the file itself, not a dangling link.
    const dir = mkdtempSync(join(tmpdir(), 'rtgw-helm-pkg-'));
    await runOk('helm', ['package', CHART_DIR, '--destination', dir], env);
    const pkg = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    assert.equal(await shown(join(dir, pkg)), repo.trim());
  });

  it('refuses values the schema does not allow, naming the value', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'operator.workers=0'], /operator\/workers.*minimum/],
      [['--set', 'operator.logLevel=loud'], /operator\/logLevel/],
      [['--set', 'replicas=2'], /additional properties 'replicas' not allowed/],
      [['--set', 'serviceMonitor.operator.interval=soon'], /serviceMonitor\/operator\/interval/],
      [['--set', 'image.pullPolicy=Sometimes'], /image\/pullPolicy/],
      [['--set', 'sampleGateway.enabled=true', '--set-json', 'sampleGateway.spec.auth={"jwtSecretRef":null}'], /sampleGateway\/spec\/auth/],
    ];
    for (const [args, message] of cases) {
      const r = await run('helm', ['template', 'rt', CHART_DIR, ...args], env);
      assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail`);
      assert.match(r.stderr, message);
    }
    const lease = await run('helm', ['template', 'rt', CHART_DIR, '--set', 'operator.leaderElection.retryPeriodSeconds=12'], env);
    assert.notEqual(lease.code, 0);
    assert.match(lease.stderr, /leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds/);
  });

  it('renders exactly the expected objects by default, and the optional ones when asked', async () => {
    const kinds = (objs: Obj[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds(await template()), [
      'ClusterRole/rt-realtime-gateway-operator', 'ClusterRole/rt-realtime-gateway-operator-crd-discovery',
      'ClusterRoleBinding/rt-realtime-gateway-operator', 'ClusterRoleBinding/rt-realtime-gateway-operator-crd-discovery',
      'ConfigMap/rt-realtime-gateway-operator-dashboard-fleet-overview', 'ConfigMap/rt-realtime-gateway-operator-dashboard-gateway',
      'Deployment/rt-realtime-gateway-operator',
      'Role/rt-realtime-gateway-operator-leader-election', 'RoleBinding/rt-realtime-gateway-operator-leader-election',
      'Service/rt-realtime-gateway-operator', 'ServiceAccount/rt-realtime-gateway-operator',
    ]);
    const all = await template(ALL_ON);
    find(all, 'ServiceMonitor', 'rt-realtime-gateway-operator');
    const gw = find(all, 'ServiceMonitor', 'rt-realtime-gateway-operator-gateways');
    assert.deepEqual(gw.spec.namespaceSelector, { any: true });
    // The labels and port the operator puts on every fleet's Service (operator/src/desired).
    assert.deepEqual(gw.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'realtime-gateway', 'app.kubernetes.io/component': 'gateway', 'app.kubernetes.io/managed-by': 'realtime-gateway-operator' });
    assert.equal(gw.spec.endpoints[0].port, 'http');
    const rule = find(all, 'PrometheusRule', 'rt-realtime-gateway-operator');
    assert.ok(rule.spec.groups.flatMap((g: any) => g.rules).length >= 8);
    const sample = find(all, 'RealtimeGateway', 'example');
    assert.equal(sample.metadata.namespace, 'rtgw-system');
    assert.equal(sample.spec.image, 'realtime-gateway/gateway:0.1.0');
    // The CRD requires auth: the default sample names the Secret rendered next to it, 48 random characters.
    assert.deepEqual(sample.spec.auth, { jwtSecretRef: { name: 'example-jwt', key: 'secret' } });
    const jwt = find(all, 'Secret', 'example-jwt');
    assert.equal(jwt.metadata.namespace, 'rtgw-system');
    assert.match(Buffer.from(jwt.data.secret, 'base64').toString(), /^[A-Za-z0-9]{48}$/);
    const renamed = await template([...ALL_ON, '--set', 'sampleGateway.name=demo']);
    assert.deepEqual(find(renamed, 'RealtimeGateway', 'demo').spec.auth.jwtSecretRef, { name: 'demo-jwt', key: 'secret' });
    find(renamed, 'Secret', 'demo-jwt');
  });

  it('runs the operator non-root, read-only, with probes on /healthz and /readyz and its configuration as environment', async () => {
    const d = find(await template(['--set', 'operator.workers=7', '--set', 'image.tag=9.9.9']), 'Deployment', 'rt-realtime-gateway-operator');
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'rt-realtime-gateway-operator');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const [c] = pod.containers;
    assert.equal(pod.containers.length, 1);
    assert.equal(c.image, 'realtime-gateway/operator:9.9.9');
    assert.equal(c.args, undefined, 'the image CMD runs the operator');
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.port, 'metrics');
    assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
    assert.deepEqual(c.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    const envs = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(envs, {
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      LEADER_ELECTION_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      LEADER_ELECTION: 'true', LEADER_ELECTION_ID: 'realtime-gateway-operator',
      LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2',
      METRICS_HOST: '0.0.0.0', METRICS_PORT: '8080', WORKERS: '7', RESYNC_SECONDS: '300', WATCH_SECONDS: '300', LOG_LEVEL: 'info',
    });
    const svc = find(await template(), 'Service', 'rt-realtime-gateway-operator');
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    assert.deepEqual(svc.spec.ports, [{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('grants exactly what operator/src reads and writes, and nothing else', async () => {
    const objs = await template();
    const children = CHILD_KINDS.map((k) => `${k.apiVersion.includes('/') ? k.apiVersion.split('/')[0] : ''}/${k.plural}: create,delete,list,patch,watch`);
    assert.deepEqual(flatten(find(objs, 'ClusterRole', 'rt-realtime-gateway-operator').rules), [
      ...children,
      '/events: create,patch',
      '/secrets: list,watch',
      'realtime.gateway.dev/realtimegateways/finalizers: update',
      'realtime.gateway.dev/realtimegateways/status: patch',
      'realtime.gateway.dev/realtimegateways: list,watch',
    ].sort());
    assert.deepEqual(flatten(find(objs, 'ClusterRole', 'rt-realtime-gateway-operator-crd-discovery').rules), [
      'apiextensions.k8s.io/customresourcedefinitions[httproutes.gateway.networking.k8s.io,servicemonitors.monitoring.coreos.com]: get',
    ]);
    const lease = find(objs, 'Role', 'rt-realtime-gateway-operator-leader-election');
    assert.equal(lease.metadata.namespace, 'rtgw-system');
    assert.deepEqual(flatten(lease.rules), [
      'coordination.k8s.io/leases: create',
      'coordination.k8s.io/leases[realtime-gateway-operator]: get,update',
    ]);
    for (const [kind, name, roleKind, role] of [
      ['ClusterRoleBinding', 'rt-realtime-gateway-operator', 'ClusterRole', 'rt-realtime-gateway-operator'],
      ['ClusterRoleBinding', 'rt-realtime-gateway-operator-crd-discovery', 'ClusterRole', 'rt-realtime-gateway-operator-crd-discovery'],
      ['RoleBinding', 'rt-realtime-gateway-operator-leader-election', 'Role', 'rt-realtime-gateway-operator-leader-election'],
    ] as const) {
      const b = find(objs, kind, name);
      assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: role });
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'rt-realtime-gateway-operator', namespace: 'rtgw-system' }]);
    }
    // No wildcard anywhere.
    for (const o of objs.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const r of o.rules as Rule[]) assert.ok(![...r.apiGroups, ...r.resources, ...r.verbs].includes('*'), `${o.metadata.name} has a wildcard`);
    }
  });

  it('binds the operator\'s rights in the watched namespace only when WATCH_NAMESPACE is set', async () => {
    const objs = await template(['--set', 'operator.watchNamespace=apps', '--set', 'serviceMonitor.gateways.enabled=true']);
    assert.equal(objs.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'rt-realtime-gateway-operator'), undefined);
    const b = find(objs, 'RoleBinding', 'rt-realtime-gateway-operator');
    assert.equal(b.metadata.namespace, 'apps');
    assert.equal(b.roleRef.kind, 'ClusterRole');
    const env = find(objs, 'Deployment', 'rt-realtime-gateway-operator').spec.template.spec.containers[0].env;
    assert.deepEqual(env.find((e: any) => e.name === 'WATCH_NAMESPACE'), { name: 'WATCH_NAMESPACE', value: 'apps' });
    assert.deepEqual(find(objs, 'ServiceMonitor', 'rt-realtime-gateway-operator-gateways').spec.namespaceSelector, { matchNames: ['apps'] });
  });

  it('ships every dashboard as a ConfigMap for Grafana\'s sidecar, with the JSON intact', async () => {
    const files = readdirSync(join(CHART_DIR, 'dashboards')).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files, ['fleet-overview.json', 'gateway.json']);
    const objs = await template(['--set', 'dashboards.namespace=monitoring', '--set-json', 'dashboards.annotations={"grafana_folder":"Realtime"}']);
    const maps = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.includes('-dashboard-'));
    assert.equal(maps.length, files.length);
    const uids = new Set<string>();
    for (const file of files) {
      const cm = maps.find((m) => m.data[file] !== undefined);
      assert.ok(cm, `a ConfigMap carries ${file}`);
      assert.equal(cm.metadata.labels!['grafana_dashboard'], '1');
      assert.equal(cm.metadata.namespace, 'monitoring');
      assert.deepEqual((cm.metadata as any).annotations, { grafana_folder: 'Realtime' });
      // Byte for byte the file: Grafana's {{ }} legends and $variables must not have met the template engine.
      assert.equal(cm.data[file], readFileSync(join(CHART_DIR, 'dashboards', file), 'utf8').trimEnd());
      const dash = JSON.parse(cm.data[file]);
      assert.ok(!uids.has(dash.uid));
      uids.add(dash.uid);
      assert.ok(dash.panels.length > 5);
      assert.ok(JSON.stringify(dash).includes('{{pod}}') || JSON.stringify(dash).includes('{{namespace}}'));
    }
    const off = await template(['--set', 'dashboards.enabled=false']);
    assert.equal(off.filter((o) => o.kind === 'ConfigMap').length, 0);
  });
});
