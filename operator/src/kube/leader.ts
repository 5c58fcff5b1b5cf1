/**
 * Leader election on a coordination.k8s.io/v1 Lease, the client-go algorithm:
 *  - try every retryPeriod to create or take the Lease; renew it every retryPeriod while leading;
 *  - a Lease held by someone else is free once its record has not changed for leaseDuration as
 *    measured by *our* clock since we saw it change (no trust in the other side's clock);
 *  - all writes are optimistic (resourceVersion), so two candidates never both win;
 *  - a leader that cannot renew within renewDeadline stops leading (the caller exits), and a leader
 *    that shuts down cleanly releases the Lease so a standby takes over at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isCode, resourcePath, type KubeClientLike } from './client.ts';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

function microTime(d = new Date()): string {
  // MicroTime: RFC 3339 with exactly six fractional digits.
  return d.toISOString().replace(/Z$/, '000Z');
}

export class LeaderElector {
  private readonly client: KubeClientLike;
  private readonly o: LeaderOptions;
  private readonly stop = new AbortController();
  private leading = false;
  private observedRecord = '';
  private observedAt = 0;
  private lastRenew = 0;
  private running: Promise<void> | undefined;

  constructor(client: KubeClientLike, opts: LeaderOptions) {
    this.client = client;
    this.o = opts;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.running ??= this.loop();
  }

  private get path(): string {
    return resourcePath('coordination.k8s.io/v1', 'leases', this.o.namespace, this.o.name);
  }

  /** One attempt to acquire or renew; true when we hold the Lease afterwards. */
  async tryAcquireOrRenew(now = Date.now()): Promise<boolean> {
    const t = microTime(new Date(now));
    let lease: Lease | undefined;
    try {
      lease = await this.client.request<Lease>('GET', this.path, { timeoutMs: this.o.retryPeriodSeconds * 1000 });
    } catch (err) {
      if (!isCode(err, 'NotFound')) throw err;
    }
    if (lease === undefined) {
      const fresh: Lease = {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
        metadata: { name: this.o.name, namespace: this.o.namespace },
        spec: { holderIdentity: this.o.identity, leaseDurationSeconds: this.o.leaseDurationSeconds, acquireTime: t, renewTime: t, leaseTransitions: 0 },
      };
      try {
        await this.client.request('POST', resourcePath('coordination.k8s.io/v1', 'leases', this.o.namespace), { body: fresh });
        return true;
      } catch (err) {
        if (isCode(err, 'AlreadyExists') || isCode(err, 'Conflict')) return false;
        throw err;
      }
    }
    const record = JSON.stringify(lease.spec);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now;
    }
    const holder = lease.spec.holderIdentity ?? '';
    const mine = holder === this.o.identity;
    const duration = (lease.spec.leaseDurationSeconds ?? this.o.leaseDurationSeconds) * 1000;
    if (!mine && holder !== '' && now - this.observedAt < duration) return false;
    const spec = {
      ...lease.spec,
      holderIdentity: this.o.identity,
      leaseDurationSeconds: this.o.leaseDurationSeconds,
      renewTime: t,
      acquireTime: mine ? lease.spec.acquireTime : t,
      leaseTransitions: mine ? lease.spec.leaseTransitions ?? 0 : (lease.spec.leaseTransitions ?? 0) + 1,
    };
    try {
      await this.client.request('PUT', this.path, { body: { ...lease, spec }, timeoutMs: this.o.retryPeriodSeconds * 1000 });
      return true;
    } catch (err) {
      if (isCode(err, 'Conflict')) return false;
      throw err;
    }
  }

  private async loop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let held = false;
      let failed = false;
      try {
        held = await this.tryAcquireOrRenew();
      } catch (err) {
        failed = true;
        this.o.onError?.(err);
      }
      const now = Date.now();
      if (held) {
        this.lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.o.onStartedLeading();
        }
      } else if (this.leading && (!failed || now - this.lastRenew > this.o.renewDeadlineSeconds * 1000)) {
        // Someone else holds the Lease now, or we could not renew it within the deadline: whatever
        // we do next might race the new leader, so stop acting as one.
        this.leading = false;
        this.o.onStoppedLeading();
      }
      const jitter = this.leading ? 1 : 1 + 0.2 * Math.random();
      await sleep(this.o.retryPeriodSeconds * 1000 * jitter, undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }

  /** Stop campaigning; when leading, hand the Lease back so a standby need not wait it out. */
  async release(): Promise<void> {
    this.stop.abort();
    await this.running?.catch(() => undefined);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.request<Lease>('GET', this.path, { timeoutMs: 2000 });
      if (lease.spec.holderIdentity === this.o.identity) {
        const past = microTime(new Date(0));
        await this.client.request('PUT', this.path, {
          body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: past, acquireTime: past } },
          timeoutMs: 2000,
        });
      }
    } catch (err) {
      this.o.onError?.(err);
    }
  }
}
