/**
 * What the benchmark reads from the machine: CPU time and RSS per process (/proc), core pinning (taskset,
 * util-linux), Redis's own CPU (INFO cpu) and a server's event-loop lag (/metrics).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { connect } from 'node:net';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every Linux we run on, asked once). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** VmRSS of a process, in KiB. */
export function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** The soft limit on open files of this process (children inherit it). */
export function openFileLimit(): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return match?.[1] === 'unlimited' || !match ? 1 << 20 : Number(match[1]);
}

// The cores this process may use (cgroup cpuset and affinity), except in a part (run.ts --part): it inherits its
// parent's pinning to one core, so the parent passes its own count.
export const CORES = Number(process.env['BENCH_CORES']) || availableParallelism();

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * The core plan: servers under test on core 0, the load generator, Redis and NATS on core 1 (on a 2-core
 * machine). Without taskset or with a single core nothing is pinned, and the report says so.
 */
export const PINNING = hasTaskset && CORES >= 2
  ? { enabled: true, server: '0', generator: String(CORES - 1), services: String(CORES - 1) }
  : { enabled: false, server: '', generator: '', services: '' };

/** Pins every thread of a running process (taskset -a -p). */
export function pin(pid: number, cores: string): void {
  if (!PINNING.enabled || cores === '') return;
  execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
}

/** CPU time of this process (user + system), in seconds. */
export function selfCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** used_cpu_sys + used_cpu_user from Redis's INFO cpu, over a plain RESP connection. */
export function redisCpuSeconds(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('INFO cpu timed out'));
    }, 5000);
    socket.on('data', (chunk) => {
      text += chunk.toString();
      const header = /^\$(\d+)\r\n/.exec(text);
      if (header && text.length >= header[0].length + Number(header[1])) {
        clearTimeout(timer);
        socket.end();
        const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
        resolve(field('used_cpu_sys') + field('used_cpu_user'));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write('INFO cpu\r\n');
  });
}

/** nodejs_eventloop_lag_seconds from a server's /metrics, in milliseconds (NaN when it has none). */
export async function eventLoopLagMs(httpUrl: string): Promise<number> {
  const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return Number(/^nodejs_eventloop_lag_seconds (\S+)$/m.exec(text)?.[1] ?? NaN) * 1000;
}

/** Samples a server's event-loop lag every `everyMs` until stopped; resolves with {max, mean} in ms. */
export function sampleLag(httpUrl: string | undefined, everyMs = 250): { stop(): Promise<{ maxMs: number; meanMs: number; samples: number }> } {
  const samples: number[] = [];
  let running = httpUrl !== undefined;
  const loop = (async () => {
    while (running && httpUrl) {
      const value = await eventLoopLagMs(httpUrl).catch(() => NaN);
      if (Number.isFinite(value)) samples.push(value);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      if (samples.length === 0) return { maxMs: NaN, meanMs: NaN, samples: 0 };
      return { maxMs: Math.max(...samples), meanMs: samples.reduce((a, b) => a + b, 0) / samples.length, samples: samples.length };
    },
  };
}
