/** Starts real gateway processes (node gateway/src/main.ts) on free ports, configured only by environment. */
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';
import { start, waitFor, type Started } from './process.ts';
import { SERVICE_KEY, SERVICE_KEYS, TEST_SECRET } from './tokens.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const NODE = process.execPath;

export interface GatewayProcess {
  readonly port: number;
  readonly httpUrl: string;
  readonly env: Record<string, string>;
  readonly process: Started;
  wsUrl(query?: Record<string, string>): string;
  /** fetch against the gateway, with the service key unless `serviceKey: null`. */
  api(path: string, init?: RequestInit & { serviceKey?: string | null; json?: unknown }): Promise<{ status: number; body: any }>;
  stop(graceMs?: number): Promise<void>;
}

export async function startGateway(env: Record<string, string> = {}, options: { port?: number } = {}): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort());
  const fullEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    HOST: '127.0.0.1',
    PORT: String(port),
    JWT_SECRET_KEY: TEST_SECRET,
    SERVICE_API_KEYS: SERVICE_KEYS,
    LOG_LEVEL: 'info',
    DRAIN_SECONDS: '2',
    ...env,
  };
  const child = start(NODE, ['gateway/src/main.ts'], { cwd: REPO_ROOT, env: fullEnv });
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitFor(`the gateway on :${port} to be healthy`, async () => {
    if (child.child.exitCode !== null) throw new Error(`gateway exited with ${child.child.exitCode}:\n${child.output()}`);
    const res = await fetch(`${httpUrl}/healthz`).catch(() => undefined);
    return res?.ok;
  }, 20000);
  return {
    port,
    httpUrl,
    env: fullEnv,
    process: child,
    wsUrl: (query = {}) => {
      const search = new URLSearchParams(query).toString();
      return `ws://127.0.0.1:${port}/ws${search ? `?${search}` : ''}`;
    },
    async api(path, init = {}) {
      const { serviceKey = SERVICE_KEY, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (serviceKey !== null) headers.set('authorization', `Bearer ${serviceKey}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      const res = await fetch(`${httpUrl}${path}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json), method: rest.method ?? 'POST' } : {}) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON (e.g. /metrics)
      }
      return { status: res.status, body };
    },
    stop: (graceMs) => child.stop(graceMs),
  };
}
