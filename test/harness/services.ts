/**
 * Real Redis, NATS and HAProxy (Debian packages) on free ports, each in its own temporary directory.
 * `restart()` brings a service back on the same port, for outage tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { start, waitForPort, type Started } from './process.ts';

export interface Service {
  readonly port: number;
  readonly url: string;
  current(): Started;
  stop(): Promise<void>;
  /** SIGKILL, no goodbye. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

function service(port: number, url: string, launch: () => Started, cleanup: () => void = () => {}): Promise<Service> {
  let child = launch();
  const api: Service = {
    port,
    url,
    current: () => child,
    async stop() {
      await child.stop();
      cleanup();
    },
    async kill() {
      child.kill('SIGKILL');
      await child.exited;
    },
    async restart() {
      await child.stop();
      child = launch();
      await waitForPort(port).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${child.output()}`);
      });
    },
  };
  return waitForPort(port).then(() => api, (error: unknown) => {
    throw new Error(`${String(error)}\n${child.output()}`);
  });
}

export async function startRedis(): Promise<Service> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rtgw-redis-'));
  return service(port, `redis://127.0.0.1:${port}`, () =>
    start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no']),
    () => rmSync(dir, { recursive: true, force: true }));
}

export async function startNats(options: { jetstream?: boolean } = {}): Promise<Service & { monitorPort: number }> {
  const port = await freePort();
  const monitorPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rtgw-nats-'));
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), ...(options.jetstream ? ['-js', '-sd', dir] : [])];
  const svc = await service(port, `nats://127.0.0.1:${port}`, () => start('nats-server', args), () => rmSync(dir, { recursive: true, force: true }));
  return Object.assign(svc, { monitorPort });
}

/**
 * HAProxy in front of gateways, with cookie stickiness as an ingress does it (socket.io's polling transport
 * needs every request of a session on the same replica). `redispatch` moves a client whose replica is gone.
 */
export async function startHaproxy(backends: readonly { name: string; port: number }[]): Promise<Service & { configFile: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rtgw-haproxy-'));
  const configFile = join(dir, 'haproxy.cfg');
  writeFileSync(configFile, [
    'global',
    '  maxconn 8000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  option redispatch',
    '  retries 2',
    'frontend gateways',
    `  bind 127.0.0.1:${port}`,
    '  default_backend fleet',
    'backend fleet',
    '  balance roundrobin',
    '  cookie RTGW_AFFINITY insert indirect nocache httponly',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check inter 500ms fall 2 rise 2 cookie ${b.name}`),
    '',
  ].join('\n'));
  const svc = await service(port, `http://127.0.0.1:${port}`, () => start('haproxy', ['-f', configFile, '-db']), () => rmSync(dir, { recursive: true, force: true }));
  return Object.assign(svc, { configFile });
}
