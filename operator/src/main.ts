/**
 * Composition root: `npm run operator` (or `node operator/src/main.ts`). Reads the configuration
 * once, connects with the current kubeconfig (KUBECONFIG) or in-cluster, serves /metrics and
 * /healthz, campaigns for the leader Lease and runs the controller while it leads.
 *
 * Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 lost leadership or fatal error (the Deployment
 * restarts it as a standby), 2 bad configuration.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import pino from 'pino';
import { ConfigError, parseConfig, type OperatorConfig } from './config.ts';
import { Controller } from './reconcile.ts';
import { KubeClient, isCode, type KubeClientLike } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { LeaderElector } from './kube/leader.ts';
import { createMetrics } from './metrics.ts';
import type { Capabilities } from './desired/index.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

if (process.argv.includes('--version')) {
  process.stdout.write(`${pkg.version}\n`);
  process.exit(0);
}

async function crdExists(client: KubeClientLike, name: string): Promise<boolean> {
  try {
    await client.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    return true;
  } catch (err) {
    // Forbidden: no RBAC to read CRDs; treat the optional kinds as absent rather than fail.
    if (isCode(err, 'NotFound') || isCode(err, 'Forbidden')) return false;
    throw err;
  }
}

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function run(cfg: OperatorConfig): Promise<void> {
  const log = pino({ level: cfg.logLevel, base: { component: 'realtime-gateway-operator' } });
  const metrics = createMetrics();
  const client = await KubeClient.create(cfg.kubeconfig);
  const capabilities: Capabilities = {
    serviceMonitor: await crdExists(client, 'servicemonitors.monitoring.coreos.com'),
    httpRoute: await crdExists(client, 'httproutes.gateway.networking.k8s.io'),
  };
  log.info({ version: pkg.version, server: client.server.origin, capabilities, identity: cfg.leaderElection.identity }, 'starting');
  const events = new EventRecorder(client, 'realtime-gateway-operator', (err) => log.warn({ err: String(err) }, 'event not recorded'));
  const controller = new Controller({
    client, capabilities, events, metrics, log,
    workers: cfg.workers, resyncSeconds: cfg.resyncSeconds, watchSeconds: cfg.watchSeconds, namespace: cfg.watchNamespace,
  });
  let started = false;
  let shuttingDown = false;

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/metrics') {
      metrics.registry.metrics().then((body) => {
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(body);
      }, (err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
      return;
    }
    if (url === '/healthz' || url === '/readyz') {
      // A standby is healthy; a leader is healthy while its caches are synced and watching.
      const ok = !shuttingDown && (!started || controller.healthy());
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'unhealthy\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(cfg.metricsPort, cfg.metricsHost, resolve));
  const addr = server.address();
  log.info({ port: typeof addr === 'object' && addr !== null ? addr.port : cfg.metricsPort }, 'metrics and health listening');

  const shutdown = async (code: number, why: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ why }, 'shutting down');
    const force = setTimeout(() => process.exit(code), 10_000);
    force.unref();
    await controller.stop().catch((err: unknown) => log.warn({ err: String(err) }, 'controller stop'));
    await elector?.release();
    server.close();
    client.close();
    log.flush?.();
    process.exit(code);
  };

  const startController = (): void => {
    if (started) return;
    started = true;
    metrics.leader.set(1);
    log.info({}, 'leading; starting controller');
    controller.start().catch((err: unknown) => {
      log.error({ err: String(err) }, 'controller failed to start');
      void shutdown(1, 'controller start failed');
    });
  };

  let elector: LeaderElector | undefined;
  if (cfg.leaderElection.enabled) {
    elector = new LeaderElector(client, {
      ...cfg.leaderElection,
      onStartedLeading: startController,
      onStoppedLeading: () => {
        metrics.leader.set(0);
        log.error({}, 'lost leadership');
        void shutdown(1, 'lost leadership');
      },
      onError: (err) => log.warn({ err: String(err) }, 'leader election'),
    });
    elector.start();
  } else startController();

  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
}

try {
  await run(parseConfig(process.env, { inClusterNamespace: inClusterNamespace() }));
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`fatal: ${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
}
