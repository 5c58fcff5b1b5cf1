/** The operator's configuration, parsed once from the environment. Nothing else reads process.env. */
import { hostname } from 'node:os';
import type { LeaderOptions } from './kube/leader.ts';

export interface OperatorConfig {
  /** A kubeconfig path; undefined means in-cluster, else the client-node defaults (~/.kube/config). */
  kubeconfig: string | undefined;
  metricsHost: string;
  metricsPort: number;
  watchNamespace: string | undefined;
  workers: number;
  resyncSeconds: number;
  watchSeconds: number;
  logLevel: string;
  leaderElection: { enabled: boolean } & Pick<LeaderOptions, 'namespace' | 'name' | 'identity' | 'leaseDurationSeconds' | 'renewDeadlineSeconds' | 'retryPeriodSeconds'>;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function parseConfig(env: Env, defaults: { inClusterNamespace?: string } = {}): OperatorConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const v = str(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}: "${v}" is not an integer in ${min}..${max}`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const v = str(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    problems.push(`${name}: "${v}" is not a boolean`);
    return fallback;
  };
  const lease = int('LEASE_DURATION_SECONDS', 15, 2, 600);
  const renew = int('RENEW_DEADLINE_SECONDS', 10, 1, 600);
  const retry = int('RETRY_PERIOD_SECONDS', 2, 1, 60);
  if (!(lease > renew && renew > retry)) problems.push('leader election needs LEASE_DURATION_SECONDS > RENEW_DEADLINE_SECONDS > RETRY_PERIOD_SECONDS');
  const cfg: OperatorConfig = {
    kubeconfig: str('KUBECONFIG'),
    metricsHost: str('METRICS_HOST') ?? '0.0.0.0',
    metricsPort: int('METRICS_PORT', 8080, 0, 65535),
    watchNamespace: str('WATCH_NAMESPACE'),
    workers: int('WORKERS', 4, 1, 64),
    resyncSeconds: int('RESYNC_SECONDS', 300, 5, 86_400),
    watchSeconds: int('WATCH_SECONDS', 300, 5, 3_600),
    logLevel: str('LOG_LEVEL') ?? 'info',
    leaderElection: {
      enabled: bool('LEADER_ELECTION', true),
      namespace: str('LEADER_ELECTION_NAMESPACE') ?? defaults.inClusterNamespace ?? 'default',
      name: str('LEADER_ELECTION_ID') ?? 'realtime-gateway-operator',
      identity: str('POD_NAME') ?? `${hostname()}-${process.pid}`,
      leaseDurationSeconds: lease,
      renewDeadlineSeconds: renew,
      retryPeriodSeconds: retry,
    },
  };
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(cfg.logLevel)) problems.push(`LOG_LEVEL: "${cfg.logLevel}" is not a pino level`);
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}
