/**
 * Counts open connections per client IP, per user and per tenant, and refuses one over a limit.
 * Counts are this replica's own: behind a sticky load balancer a fleet-wide limit is the per-replica limit
 * times the replica count (docs/reference/configuration.md).
 */
export type LimitScope = 'ip' | 'user' | 'tenant';

export interface ConnectionLimitOptions {
  readonly maxPerIp: number;
  readonly maxPerUser: number;
  readonly maxPerTenant: number;
}

export type Admission = { readonly ok: true; readonly release: () => void } | { readonly ok: false; readonly scope: LimitScope };

export class ConnectionLimiter {
  private readonly byIp = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();
  private readonly options: ConnectionLimitOptions;

  constructor(options: ConnectionLimitOptions) {
    this.options = options;
  }

  admit(key: { ip: string; tenantId: string; userId: string }): Admission {
    const userKey = `${key.tenantId}/${key.userId}`;
    if ((this.byIp.get(key.ip) ?? 0) >= this.options.maxPerIp) return { ok: false, scope: 'ip' };
    if ((this.byUser.get(userKey) ?? 0) >= this.options.maxPerUser) return { ok: false, scope: 'user' };
    if ((this.byTenant.get(key.tenantId) ?? 0) >= this.options.maxPerTenant) return { ok: false, scope: 'tenant' };
    increment(this.byIp, key.ip);
    increment(this.byUser, userKey);
    increment(this.byTenant, key.tenantId);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        decrement(this.byIp, key.ip);
        decrement(this.byUser, userKey);
        decrement(this.byTenant, key.tenantId);
      },
    };
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function decrement(map: Map<string, number>, key: string): void {
  const next = (map.get(key) ?? 1) - 1;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}
