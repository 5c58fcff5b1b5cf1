/** A real Prometheus (Debian package) on a free port with its own TSDB in a temp directory, and its query API. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { start, waitFor, type Started } from './process.ts';

export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  readonly url: string;
  readonly process: Started;
  /** Instant query; throws with Prometheus' error message when the expression is invalid. */
  query(expr: string): Promise<PromSample[]>;
  stop(): Promise<void>;
}

/** One scrape job per entry; every target keeps its labels (as a ServiceMonitor would set namespace/service/pod). */
export async function startPrometheus(jobs: Record<string, ScrapeTarget[]>, scrapeInterval = '1s'): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'rtgw-prometheus-'));
  const port = await freePort();
  const config = {
    global: { scrape_interval: scrapeInterval, evaluation_interval: scrapeInterval },
    scrape_configs: Object.entries(jobs).map(([job, targets]) => ({
      job_name: job,
      scrape_timeout: scrapeInterval,
      static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })),
    })),
  };
  // JSON is YAML.
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const proc = start('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('prometheus /-/ready', async () => (await fetch(`${url}/-/ready`)).ok, 30_000, 100).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${proc.output().slice(-3000)}`);
  });
  return {
    url,
    process: proc,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] | [number, string] } };
      if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
      const r = body.data!;
      return r.resultType === 'scalar' ? [{ metric: {}, value: r.result as [number, string] }] : (r.result as PromSample[]);
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** promtool (same Debian package) on stdin or files; resolves with its exit code and output. */
export function promtool(args: string[], input?: string): { code: number; output: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8' });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
