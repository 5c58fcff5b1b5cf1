/**
 * Fleet-wide presence in Redis. Each replica records its connections under its own id and keeps a heartbeat
 * key alive; connections of a replica whose heartbeat expired (SIGKILL, OOM, partition) stop counting at once
 * and are swept by any surviving replica within a few heartbeats. A replica that finds its own heartbeat gone
 * (Redis restarted without persistence, or it was swept after a partition) writes its live connections again.
 *
 *   {p}conns:{tenant}/{user}   hash   connection id -> replica id
 *   {p}seen:{tenant}/{user}    string last seen (ms)
 *   {p}users:{tenant}          set    users with at least one connection
 *   {p}tenants                 set    tenants with at least one user online
 *   {p}replica:{id}            string heartbeat, expires after 3 intervals
 *   {p}replicas                set    replica ids that may own connections
 *   {p}owned:{id}              set    "{tenant}/{user}\n{connection}" owned by a replica (for the sweep)
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { userStatus, type ConnectedUser, type PresenceStore, type UserStatus } from './presence.ts';

const SEEN_TTL_SECONDS = 30 * 24 * 3600;

// HDEL the connection; when it was the user's last, drop the user (and tenant) from the online sets, atomically.
const REMOVE_CONNECTION = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[3])
  if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[4]) end
end
return 1`;

export interface RedisPresenceOptions {
  readonly prefix: string;
  readonly replicaId: string;
  readonly heartbeatMs: number;
  readonly now?: () => number;
}

export class RedisPresence implements PresenceStore {
  private readonly redis: Redis;
  private readonly options: RedisPresenceOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly heartbeat: NodeJS.Timeout;
  /** This replica's connections, to write them again when Redis lost them. */
  private readonly live = new Map<string, { readonly tenantId: string; readonly userId: string }>();
  /** Beats left that rewrite `live` (see beat()). */
  private rewrites = 0;

  constructor(redis: Redis, options: RedisPresenceOptions, logger: Logger) {
    this.redis = redis;
    this.options = options;
    this.logger = logger;
    this.now = options.now ?? Date.now;
    void this.beat();
    this.heartbeat = setInterval(() => void this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  private key(kind: string, id: string): string {
    return `${this.options.prefix}${kind}:${id}`;
  }

  private async beat(): Promise<void> {
    try {
      const results = await this.redis.multi()
        .exists(this.key('replica', this.options.replicaId))
        .set(this.key('replica', this.options.replicaId), String(this.now()), 'PX', this.options.heartbeatMs * 3)
        .sadd(`${this.options.prefix}replicas`, this.options.replicaId)
        .exec();
      // Our heartbeat was gone: Redis restarted (no persistence: every key lost) or we were silent long enough
      // for a peer to sweep our connections. Write them again, now and on the next beat too (a sweep that had
      // already started when we came back may remove them once more).
      if (results?.[0]?.[1] === 0) this.rewrites = 2;
      if (this.rewrites > 0) {
        this.rewrites -= 1;
        await this.rewriteLive();
      }
      await this.sweep();
    } catch (error) {
      this.logger.debug({ err: (error as Error).message }, 'presence heartbeat failed');
    }
  }

  /** Removes the connections of replicas whose heartbeat expired. Idempotent; any replica may run it. */
  async sweep(): Promise<number> {
    const replicas = await this.redis.smembers(`${this.options.prefix}replicas`);
    let removed = 0;
    for (const replica of replicas) {
      if (replica === this.options.replicaId) continue;
      if (await this.redis.exists(this.key('replica', replica))) continue;
      const owned = await this.redis.smembers(this.key('owned', replica));
      for (const entry of owned) {
        const [userKey, connectionId] = entry.split('\n') as [string, string];
        await this.remove(userKey, connectionId);
        removed += 1;
      }
      await this.redis.multi().del(this.key('owned', replica)).srem(`${this.options.prefix}replicas`, replica).exec();
      this.logger.info({ event: 'presence_sweep', replica, connections: owned.length }, 'removed the presence of a replica that stopped heartbeating');
    }
    return removed;
  }

  private async remove(userKey: string, connectionId: string): Promise<void> {
    const slash = userKey.indexOf('/');
    const tenantId = userKey.slice(0, slash);
    const userId = userKey.slice(slash + 1);
    await this.redis.eval(
      REMOVE_CONNECTION, 4,
      this.key('conns', userKey), this.key('seen', userKey), this.key('users', tenantId), `${this.options.prefix}tenants`,
      connectionId, String(this.now()), userId, tenantId, String(SEEN_TTL_SECONDS),
    );
  }

  /**
   * Issues every write in this tick, so Redis runs them before any later disconnected() of the same connection.
   */
  private rewriteLive(): Promise<unknown> {
    const writes = [...this.live].map(([connectionId, { tenantId, userId }]) => this.register(tenantId, userId, connectionId));
    if (writes.length > 0) this.logger.info({ event: 'presence_rewrite', connections: writes.length }, 'wrote this replica\'s connections to presence again');
    return Promise.all(writes);
  }

  async connected(tenantId: string, userId: string, connectionId: string): Promise<void> {
    this.live.set(connectionId, { tenantId, userId });
    await this.register(tenantId, userId, connectionId);
  }

  private async register(tenantId: string, userId: string, connectionId: string): Promise<void> {
    const userKey = `${tenantId}/${userId}`;
    await this.redis.multi()
      .hset(this.key('conns', userKey), connectionId, this.options.replicaId)
      .set(this.key('seen', userKey), String(this.now()), 'EX', SEEN_TTL_SECONDS)
      .sadd(this.key('users', tenantId), userId)
      .sadd(`${this.options.prefix}tenants`, tenantId)
      .sadd(this.key('owned', this.options.replicaId), `${userKey}\n${connectionId}`)
      .exec();
  }

  async disconnected(tenantId: string, userId: string, connectionId: string): Promise<void> {
    const userKey = `${tenantId}/${userId}`;
    this.live.delete(connectionId);
    await this.remove(userKey, connectionId);
    await this.redis.srem(this.key('owned', this.options.replicaId), `${userKey}\n${connectionId}`);
  }

  /** Connection counts per user, counting only replicas that are alive. */
  private async liveCounts(userKeys: readonly string[]): Promise<number[]> {
    if (userKeys.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const userKey of userKeys) pipeline.hvals(this.key('conns', userKey));
    const results = (await pipeline.exec()) ?? [];
    const owners = results.map(([, value]) => (value as string[] | null) ?? []);
    const replicas = [...new Set(owners.flat())];
    const alive = new Set<string>();
    if (replicas.length > 0) {
      const check = this.redis.pipeline();
      for (const id of replicas) check.exists(this.key('replica', id));
      const answers = (await check.exec()) ?? [];
      answers.forEach(([, value], i) => {
        if (value === 1) alive.add(replicas[i]!);
      });
    }
    return owners.map((list) => list.filter((owner) => alive.has(owner)).length);
  }

  async status(tenantId: string, userId: string): Promise<UserStatus> {
    const userKey = `${tenantId}/${userId}`;
    const [[connections = 0], seen] = await Promise.all([this.liveCounts([userKey]), this.redis.get(this.key('seen', userKey))]);
    return userStatus(tenantId, userId, connections, connections > 0 ? this.now() : seen === null ? undefined : Number(seen));
  }

  async connectedUsers(tenantId: string | undefined): Promise<readonly ConnectedUser[]> {
    const tenants = tenantId !== undefined ? [tenantId] : await this.redis.smembers(`${this.options.prefix}tenants`);
    const users: ConnectedUser[] = [];
    for (const tenant of tenants) {
      const ids = await this.redis.smembers(this.key('users', tenant));
      const counts = await this.liveCounts(ids.map((id) => `${tenant}/${id}`));
      ids.forEach((id, i) => {
        if (counts[i]! > 0) users.push({ tenant_id: tenant, user_id: id, connections: counts[i]! });
      });
    }
    return users;
  }

  /** On a graceful stop: this replica's connections are gone, say so now rather than after the heartbeat. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    try {
      await this.redis.del(this.key('replica', this.options.replicaId));
      const owned = await this.redis.smembers(this.key('owned', this.options.replicaId));
      for (const entry of owned) {
        const [userKey, connectionId] = entry.split('\n') as [string, string];
        await this.remove(userKey, connectionId);
      }
      await this.redis.multi().del(this.key('owned', this.options.replicaId)).srem(`${this.options.prefix}replicas`, this.options.replicaId).exec();
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not clear presence on close');
    }
  }
}
