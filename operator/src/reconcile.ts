/**
 * The control loop. Level-triggered: every event (on a RealtimeGateway, one of its children, or a
 * Secret it reads) only enqueues the gateway's namespace/name; the reconcile then reads the current
 * state from the informer caches and converges, so a missed or duplicated event costs nothing.
 *
 * One reconcile: build the desired children (pure, desired/), server-side apply each under one
 * field manager with force (a hand edit of a field we own is put back), delete children the spec no
 * longer asks for, then write status only when it changed.
 */
import { API_VERSION, KIND, PLURAL, type RealtimeGateway } from './api/types.ts';
import {
  CHILD_KINDS, FIELD_MANAGER, desiredState, hashSecrets, kindAvailable, referencedSecretNames,
  type Capabilities, type ChildKind, type KubeObject,
} from './desired/index.ts';
import { computeStatus, statusChanged, type DeploymentView, type Observation } from './status.ts';
import { KubeApiError, isCode, resourcePath, type KubeClientLike } from './kube/client.ts';
import { Informer, keyOf, type Meta } from './kube/informer.ts';
import { WorkQueue } from './kube/queue.ts';
import type { EventRecorder } from './kube/events.ts';
import type { OperatorMetrics } from './metrics.ts';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ControllerOptions {
  client: KubeClientLike;
  capabilities: Capabilities;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  /** Concurrent reconciles (over different keys). */
  workers: number;
  /** Every gateway is reconciled at least this often, jittered by up to +20%. */
  resyncSeconds: number;
  /** Server-side length of each watch; the informer watchdog is derived from it. */
  watchSeconds: number;
  /** Only this namespace; undefined for the whole cluster. */
  namespace: string | undefined;
  now?: () => Date;
}

interface Secret extends Meta {
  data?: Record<string, string>;
}

interface Child extends Meta {
  kind?: string;
  metadata: Meta['metadata'] & { generation?: number; ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[] };
}

const MANAGED_SELECTOR = 'app.kubernetes.io/managed-by=realtime-gateway-operator';

export class Controller {
  readonly queue: WorkQueue;
  readonly gateways: Informer<RealtimeGateway>;
  readonly secrets: Informer<Secret>;
  readonly children = new Map<string, Informer<Child>>();
  private readonly o: ControllerOptions;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void>[] = [];

  constructor(o: ControllerOptions) {
    this.o = o;
    this.queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 5 * 60_000 });
    const onError = (resource: string) => (err: unknown) => o.log.warn({ resource, err: String(err) }, 'watch interrupted; relisting');
    const onRelist = (resource: string) => {
      // Inc by 0 so every watched resource has its series from the start (rate() needs the 0).
      o.metrics.informerRelists.inc({ resource }, 0);
      return () => o.metrics.informerRelists.inc({ resource });
    };
    const common = { watchSeconds: o.watchSeconds, watchdogMarginMs: 30_000 };
    this.gateways = new Informer<RealtimeGateway>(o.client, { ...common, path: resourcePath(API_VERSION, PLURAL, o.namespace), onError: onError(PLURAL), onRelist: onRelist(PLURAL) });
    this.gateways.on((_ev, rg) => this.enqueue(keyOf(rg)));
    this.secrets = new Informer<Secret>(o.client, { ...common, path: resourcePath('v1', 'secrets', o.namespace), onError: onError('secrets'), onRelist: onRelist('secrets') });
    this.secrets.on((_ev, s, old) => {
      // Only a change of content matters (a label edit must not roll the fleet, and the hash
      // would not change anyway); the reconcile recomputes the hash from the cache.
      if (old !== undefined && s !== old && JSON.stringify(old.data) === JSON.stringify(s.data)) return;
      for (const rg of this.gateways.list()) {
        if (rg.metadata.namespace === s.metadata.namespace && referencedSecretNames(rg).includes(s.metadata.name)) this.enqueue(keyOf(rg));
      }
    });
    for (const k of CHILD_KINDS) {
      if (!kindAvailable(k, o.capabilities)) continue;
      const inf = new Informer<Child>(o.client, { ...common, path: resourcePath(k.apiVersion, k.plural, o.namespace), labelSelector: MANAGED_SELECTOR, onError: onError(k.plural), onRelist: onRelist(k.kind) });
      inf.on((_ev, child) => {
        const owner = child.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === KIND);
        if (owner !== undefined && child.metadata.namespace !== undefined) this.enqueue(`${child.metadata.namespace}/${owner.name}`);
      });
      this.children.set(k.kind, inf);
    }
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    this.o.metrics.queueDepth.set(this.queue.depth);
  }

  private informers(): Pick<Informer<Meta>, 'start' | 'healthy' | 'close'>[] {
    return [this.secrets, ...this.children.values(), this.gateways];
  }

  /** Start the caches, wait until all have listed once, then start workers and the resync. */
  async start(): Promise<void> {
    // Gateways last: by the time their adds enqueue keys, the Secret and child caches are full.
    const rest = this.informers().slice(0, -1);
    await Promise.all(rest.map((i) => i.start()));
    await this.gateways.start();
    for (let i = 0; i < this.o.workers; i++) this.workers.push(this.work());
    this.scheduleResync();
    this.o.log.info({ gateways: this.gateways.list().length, workers: this.o.workers }, 'controller started');
  }

  healthy(): boolean {
    return this.informers().every((i) => i.healthy());
  }

  private scheduleResync(): void {
    const ms = this.o.resyncSeconds * 1000 * (1 + 0.2 * Math.random());
    this.resyncTimer = setTimeout(() => {
      for (const rg of this.gateways.list()) this.enqueue(keyOf(rg));
      this.scheduleResync();
    }, ms);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.workers);
    await Promise.all(this.informers().map((i) => i.close()));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.o.metrics.queueDepth.set(this.queue.depth);
      const end = this.o.metrics.reconcileDuration.startTimer();
      try {
        await this.reconcile(key);
        this.queue.forget(key);
        this.o.metrics.reconciles.inc({ result: 'success' });
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        const reason = err instanceof KubeApiError ? err.code : 'Internal';
        this.o.metrics.reconciles.inc({ result: 'error' });
        this.o.metrics.reconcileErrors.inc({ reason });
        this.o.log.warn({ key, reason, err: String(err), retryInMs: delay }, 'reconcile failed');
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  private async apply(obj: KubeObject, kind: ChildKind): Promise<KubeObject> {
    const path = resourcePath(kind.apiVersion, kind.plural, obj.metadata.namespace, obj.metadata.name);
    return this.o.client.request<KubeObject>('PATCH', path, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  async reconcile(key: string): Promise<void> {
    const rg = this.gateways.get(key);
    // Gone: the garbage collector deletes the children through their ownerReferences.
    if (rg === undefined || rg.metadata.deletionTimestamp !== undefined) return;
    const involved = { apiVersion: API_VERSION, kind: KIND, name: rg.metadata.name, namespace: rg.metadata.namespace, uid: rg.metadata.uid };
    const lookup = (name: string) => this.secrets.get(`${rg.metadata.namespace}/${name}`)?.data;
    const secret = hashSecrets(rg, lookup);
    let failure: Observation['failure'];
    let deployment: DeploymentView | undefined;
    let firstError: unknown;

    if (secret.missing.length > 0) {
      // Pods could not start without these; keep the running fleet as it is until they appear
      // (the Secret watch brings us back here).
      failure = { reason: 'SecretNotFound', message: `missing Secret keys: ${secret.missing.join(', ')}` };
      this.o.events.record(involved, 'Warning', 'SecretNotFound', failure.message);
      deployment = this.children.get('Deployment')?.get(key) as DeploymentView | undefined;
    } else {
      const desired = desiredState(rg, { secretHash: secret.hash, capabilities: this.o.capabilities });
      if (desired.problems.length > 0) failure = { reason: 'Unsupported', message: desired.problems.join('; ') };
      const wanted = new Set(desired.objects.map((o) => o.kind));
      const applyOne = async (obj: KubeObject): Promise<void> => {
        const kind = CHILD_KINDS.find((k) => k.kind === obj.kind)!;
        const before = this.children.get(obj.kind)?.get(`${obj.metadata.namespace}/${obj.metadata.name}`);
        try {
          const after = await this.apply(obj, kind);
          if (obj.kind === 'Deployment') deployment = after as unknown as DeploymentView;
          const changed = after.metadata as unknown as { resourceVersion?: string };
          if (before === undefined) this.o.events.record(involved, 'Normal', 'Created', `created ${obj.kind} ${obj.metadata.name}`);
          else if (changed.resourceVersion !== before.metadata.resourceVersion && (after as { metadata: { generation?: number } }).metadata.generation !== before.metadata.generation) {
            this.o.events.record(involved, 'Normal', 'Updated', `updated ${obj.kind} ${obj.metadata.name}`);
          }
        } catch (err) {
          firstError ??= err;
          failure = { reason: 'ApplyFailed', message: `${obj.kind} ${obj.metadata.name}: ${String((err as Error).message)}` };
          this.o.events.record(involved, 'Warning', 'ApplyFailed', failure.message);
        }
      };
      // The ConfigMap first (new pods must find the configuration their template's hash names),
      // then everything else at once: one round trip of latency instead of one per child.
      const [config, ...rest] = desired.objects;
      if (config !== undefined) await applyOne(config);
      await Promise.all(rest.map(applyOne));
      // Children the spec no longer asks for (autoscaling or exposure removed, kind switched).
      for (const kind of CHILD_KINDS) {
        if (wanted.has(kind.kind)) continue;
        const inf = this.children.get(kind.kind);
        if (inf === undefined) continue;
        for (const child of inf.list()) {
          const owned = child.metadata.namespace === rg.metadata.namespace &&
            child.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === rg.metadata.uid);
          if (!owned) continue;
          try {
            await this.o.client.request('DELETE', resourcePath(kind.apiVersion, kind.plural, child.metadata.namespace, child.metadata.name), {
              query: { propagationPolicy: 'Background' },
            });
            this.o.events.record(involved, 'Normal', 'Deleted', `deleted ${kind.kind} ${child.metadata.name}: no longer in the spec`);
          } catch (err) {
            if (!isCode(err, 'NotFound')) firstError ??= err;
          }
        }
      }
    }

    const now = (this.o.now ?? (() => new Date()))().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const status = computeStatus(rg, { deployment, failure }, now);
    if (statusChanged(rg.status, status)) {
      try {
        await this.o.client.request('PATCH', resourcePath(API_VERSION, PLURAL, rg.metadata.namespace, rg.metadata.name, 'status'), {
          body: { status },
          contentType: 'application/merge-patch+json',
        });
        const was = rg.status?.conditions?.find((c) => c.type === 'Ready')?.status;
        const ready = status.conditions?.find((c) => c.type === 'Ready');
        if (ready !== undefined && was !== ready.status && ready.status === 'True') this.o.events.record(involved, 'Normal', 'Ready', ready.message);
      } catch (err) {
        // NotFound: deleted meanwhile. Conflict cannot happen with a merge patch.
        if (!isCode(err, 'NotFound')) firstError ??= err;
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}
