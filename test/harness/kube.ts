/**
 * A real Kubernetes control plane for integration tests: etcd + kube-apiserver started with
 * envtest's flags on free ports, optionally kube-controller-manager (garbage collection, Deployment
 * -> ReplicaSet -> Pod), kube-scheduler and kwok (fake nodes whose pods turn Ready), so a resource
 * can reach Ready end to end without a container runtime.
 *
 * Binaries: $KUBEBUILDER_ASSETS/<name> when present (envtest convention), else
 * $RTGW_CACHE/kube/<version>/<name>, built by scripts/build-kube-binaries.sh (run here when
 * something is missing; it is a no-op when cached).
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { start, waitFor, waitForPort, type Started } from './process.ts';
import { KubeClient } from '../../operator/src/kube/client.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export const KUBE_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
export type KubeBinary = (typeof KUBE_BINARIES)[number];

/** The Kubernetes release tools/kube/go.mod pins (and so the cache directory). */
export function kubeVersion(): string {
  const mod = readFileSync(join(ROOT, 'tools/kube/go.mod'), 'utf8');
  const m = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(mod);
  if (m?.[1] === undefined) throw new Error('cannot read the k8s.io/kubernetes version from tools/kube/go.mod');
  return m[1];
}

function cacheDir(): string {
  return join(process.env.RTGW_CACHE ?? join(homedir(), '.cache/realtime-gateway'), 'kube', kubeVersion());
}

export function binaryPath(name: KubeBinary): string {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets !== undefined && assets !== '' && existsSync(join(assets, name))) return join(assets, name);
  return join(cacheDir(), name);
}

/** Makes sure every binary exists, building the missing ones (slow only the first time). */
export function ensureBinaries(names: readonly KubeBinary[]): void {
  if (names.every((n) => existsSync(binaryPath(n)))) return;
  const r = spawnSync('bash', [join(ROOT, 'scripts/build-kube-binaries.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/build-kube-binaries.sh failed (exit ${r.status}); run \`make kube-binaries\` to see why`);
  const missing = names.filter((n) => !existsSync(binaryPath(n)));
  if (missing.length > 0) throw new Error(`kube binaries missing after the build: ${missing.join(', ')}`);
}

export interface KubeOptions {
  /** kube-controller-manager: garbage collector, Deployment and ReplicaSet controllers. */
  controllerManager?: boolean;
  /** kube-scheduler + kwok with one fake node: pods get bound and turn Ready. */
  nodes?: boolean;
}

export interface KubeCluster {
  /** Path of an admin kubeconfig (token of a system:masters user). */
  kubeconfig: string;
  server: string;
  /** An admin client. */
  client: KubeClient;
  dir: string;
  processes: Record<string, Started>;
  stop(): Promise<void>;
}

function writeKubeconfig(path: string, server: string, caFile: string | undefined, token: string): void {
  const cluster = caFile === undefined ? '    insecure-skip-tls-verify: true' : `    certificate-authority: ${caFile}`;
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
${cluster}
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, { mode: 0o600 });
}

export async function startKube(opts: KubeOptions = {}): Promise<KubeCluster> {
  const wanted: KubeBinary[] = ['etcd', 'kube-apiserver'];
  if (opts.controllerManager === true) wanted.push('kube-controller-manager');
  if (opts.nodes === true) wanted.push('kube-scheduler', 'kwok');
  ensureBinaries(wanted);

  const dir = mkdtempSync(join(tmpdir(), 'rtgw-kube-'));
  const processes: Record<string, Started> = {};
  const stopAll = async (): Promise<void> => {
    // Reverse start order: clients of the API server first, etcd last.
    for (const name of Object.keys(processes).reverse()) await processes[name]!.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    processes.etcd = start(binaryPath('etcd'), [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    await waitForPort(etcdPort, '127.0.0.1', 30_000);

    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const certDir = join(dir, 'certs');
    const server = `https://127.0.0.1:${apiPort}`;
    // The flags envtest (controller-runtime) gives kube-apiserver, with a static admin token.
    processes['kube-apiserver'] = start(binaryPath('kube-apiserver'), [
      '--advertise-address=127.0.0.1',
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--v=0',
    ]);
    const kubeconfig = join(dir, 'kubeconfig');
    const caFile = join(certDir, 'apiserver.crt');
    await waitFor('kube-apiserver to write its serving certificate', () => existsSync(caFile), 60_000, 100);
    writeKubeconfig(kubeconfig, server, caFile, token);
    const client = await KubeClient.create(kubeconfig);
    await waitFor('kube-apiserver /readyz', async () => (await client.request<string>('GET', '/readyz').then(() => true, () => false)), 90_000, 200)
      .catch((err: unknown) => {
        throw new Error(`${String(err)}\n--- kube-apiserver output ---\n${processes['kube-apiserver']!.output().slice(-4000)}`);
      });
    // The default namespace and RBAC bootstrap objects come from post-start hooks; wait for them.
    await waitFor('the default namespace', () => client.request('GET', '/api/v1/namespaces/default').then(() => true, () => false), 60_000, 200);

    const componentFlags = async (): Promise<string[]> => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
      `--cert-dir=${join(dir, 'component-certs')}`,
    ];
    if (opts.controllerManager === true) {
      processes['kube-controller-manager'] = start(binaryPath('kube-controller-manager'), [
        ...(await componentFlags()),
        '--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,disruption-controller',
        `--service-account-private-key-file=${join(dir, 'sa.key')}`,
        '--use-service-account-credentials=false',
        '--concurrent-deployment-syncs=10',
        '--concurrent-replicaset-syncs=10',
        '--concurrent-gc-syncs=20',
      ]);
    }
    if (opts.nodes === true) {
      processes['kube-scheduler'] = start(binaryPath('kube-scheduler'), await componentFlags());
      processes.kwok = start(binaryPath('kwok'), [
        `--kubeconfig=${kubeconfig}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--node-ip=10.244.0.1',
        '--cidr=10.244.0.0/16',
        `--server-address=127.0.0.1:${await freePort()}`,
      ]);
      await client.request('POST', '/api/v1/nodes', {
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name: 'kwok-node-0',
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: { type: 'kwok', 'kubernetes.io/hostname': 'kwok-node-0', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
          },
          spec: {},
          status: {
            allocatable: { cpu: '64', memory: '256Gi', pods: '500' },
            capacity: { cpu: '64', memory: '256Gi', pods: '500' },
          },
        },
      });
      // The TaintNodesByCondition admission plugin taints every new node not-ready; in a real
      // cluster the node lifecycle controller lifts it, here there is no kubelet to wait for.
      await client.request('PATCH', '/api/v1/nodes/kwok-node-0', { body: { spec: { taints: null } }, contentType: 'application/merge-patch+json' });
      await waitFor('the kwok node to be Ready', async () => {
        const node = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', '/api/v1/nodes/kwok-node-0');
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      }, 60_000, 200);
    }
    return {
      kubeconfig,
      server,
      client,
      dir,
      processes,
      async stop() {
        client.close();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
