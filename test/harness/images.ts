/**
 * Builds the container images with buildah from a stand-in Node base (test/harness/standin-node-base.sh) and
 * runs them, for machines that reach no container registry. Everything lives in a buildah store under
 * "$RTGW_CACHE/images/" (vfs driver, chroot isolation: no daemon, no user namespaces, nothing in the checkout),
 * so a fresh clone reuses the base.
 */
import { execFile } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './gateway.ts';
import { start, type Started } from './process.ts';

const run = promisify(execFile);

export const CACHE = join(process.env['RTGW_CACHE'] || join(homedir(), '.cache', 'realtime-gateway'), 'images');
export const STORAGE_ROOT = join(CACHE, 'storage');
export const STORAGE_RUNROOT = join(CACHE, 'runroot');
/** Global options of every buildah call here: the test's own store. */
export const BUILDAH_GLOBAL = ['--storage-driver', 'vfs', '--root', STORAGE_ROOT, '--runroot', STORAGE_RUNROOT];
export const VERSION: string = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const scriptEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  RTGW_BUILDAH_ROOT: STORAGE_ROOT,
  RTGW_BUILDAH_RUNROOT: STORAGE_RUNROOT,
});

export async function buildah(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run('buildah', [...BUILDAH_GLOBAL, ...args], { maxBuffer: 64 << 20, timeout: timeoutMs });
  return stdout;
}

async function script(path: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  try {
    await run('bash', [join(REPO_ROOT, path)], { cwd: REPO_ROOT, env, maxBuffer: 64 << 20, timeout: timeoutMs });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${path} failed: ${String(error)}\n${stdout.slice(-4000)}\n${stderr.slice(-8000)}`);
  }
}

/** The stand-in base (cached), then both images through scripts/build-images.sh, exactly as `make images`. */
export async function buildImages(): Promise<{ gateway: string; operator: string }> {
  await script('test/harness/standin-node-base.sh', scriptEnv(), 15 * 60_000);
  await script('scripts/build-images.sh', scriptEnv(), 15 * 60_000);
  // The images these builds replaced, untagged now: the store would otherwise grow by one per source change.
  await buildah(['rmi', '--prune']).catch(() => undefined);
  return { gateway: `realtime-gateway/gateway:${VERSION}`, operator: `realtime-gateway/operator:${VERSION}` };
}

export interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, unknown>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

export async function imageConfig(image: string): Promise<ImageConfig> {
  const inspected = JSON.parse(await buildah(['inspect', '--type', 'image', image])) as { OCIv1: { config: ImageConfig } };
  return inspected.OCIv1.config;
}

export interface Container {
  readonly name: string;
  /** The container's root filesystem on the host (vfs: a plain directory). */
  readonly rootfs: string;
  /** The command the image declares, ENTRYPOINT then CMD, as a runtime would start it. */
  readonly command: readonly string[];
  /** `buildah run` of argv (the image's user, working directory and environment apply), in the background. */
  spawn(argv: readonly string[], env?: Record<string, string>): Started;
  /** Kills what is still running in it (buildah does not pass signals on), then removes it. */
  /** `buildah run` of argv to completion. */
  exec(argv: readonly string[], env?: Record<string, string>): Promise<{ code: number | string; output: string }>;
  remove(): Promise<void>;
}

function runArgs(name: string, argv: readonly string[], env: Record<string, string>): string[] {
  // chroot isolation shares the host's network namespace, so a port the container listens on is on 127.0.0.1.
  return [...BUILDAH_GLOBAL, 'run', '--isolation', 'chroot', ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), name, '--', ...argv];
}

export async function createContainer(image: string, name: string): Promise<Container> {
  await buildah(['rm', name]).catch(() => undefined); // left over from an interrupted run
  await buildah(['from', '--pull=false', '--name', name, image]);
  const rootfs = (await buildah(['mount', name])).trim();
  const config = await imageConfig(image);
  const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  const spawned: Started[] = [];
  const spawn = (argv: readonly string[], env: Record<string, string> = {}) => {
    const started = start('buildah', runArgs(name, argv, env));
    spawned.push(started);
    return started;
  };
  return {
    name,
    rootfs,
    command,
    spawn,
    async exec(argv, env = {}) {
      const child = spawn(argv, env);
      const code = await child.exited;
      return { code, output: child.output() };
    },
    async remove() {
      for (const started of spawned) {
        if (started.child.exitCode !== null || started.child.signalCode !== null) continue;
        // Killing buildah alone would orphan the container's processes: kill them first, deepest last.
        for (const proc of descendants(started.child.pid!).reverse()) {
          try {
            process.kill(proc.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        started.kill('SIGKILL');
        await started.exited;
      }
      await buildah(['rm', name]).catch(() => undefined);
    },
  };
}

interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
}

function processes(): ProcInfo[] {
  const list: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may hold spaces and parentheses, so split at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      list.push({ pid: Number(entry), ppid, comm });
    } catch {
      // gone meanwhile
    }
  }
  return list;
}

/** The descendants of `root` (breadth first): with chroot isolation the container's processes are the host's. */
export function descendants(root: number): ProcInfo[] {
  const all = processes();
  const found: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const proc of all) {
      if (proc.ppid === parent) {
        found.push(proc);
        queue.push(proc.pid);
      }
    }
  }
  return found;
}

/** Real and effective uid of a process. */
export function uidsOf(pid: number): { real: number; effective: number } {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  const [real, effective] = line.split(/\s+/).slice(1).map(Number);
  return { real: real!, effective: effective! };
}

/**
 * Paths under `rootfs` created or changed at or after `sinceMs`, relative and with a leading '/', skipping the
 * trees in `skip` (e.g. '/tmp', and what the runtime itself mounts: /proc, /sys, /dev, /etc/hosts...).
 */
export function changedSince(rootfs: string, sinceMs: number, skip: readonly string[]): string[] {
  const changed: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(rootfs, relative), { withFileTypes: true })) {
      const path = `${relative}/${entry.name}`;
      if (skip.some((s) => path === s || path.startsWith(`${s}/`))) continue;
      const stats = lstatSync(join(rootfs, path));
      if (stats.mtimeMs >= sinceMs || stats.ctimeMs >= sinceMs) changed.push(path);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk('');
  return changed;
}
