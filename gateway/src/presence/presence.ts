/**
 * Presence: who is online, on how many connections, and when they were last seen. The in-memory store serves a
 * single replica; with Redis configured the fleet store takes its place behind the same interface.
 */
export interface UserStatus {
  readonly user_id: string;
  readonly tenant_id: string;
  readonly online: boolean;
  readonly connections: number;
  /** ISO time of the last disconnect, or of now when online; null when never seen. */
  readonly last_seen: string | null;
}

/** The status answer both stores give: online with `connections` > 0; last seen now when online. */
export function userStatus(tenantId: string, userId: string, connections: number, lastSeenMs: number | undefined): UserStatus {
  return {
    user_id: userId,
    tenant_id: tenantId,
    online: connections > 0,
    connections,
    last_seen: lastSeenMs === undefined ? null : new Date(lastSeenMs).toISOString(),
  };
}

export interface ConnectedUser {
  readonly user_id: string;
  readonly tenant_id: string;
  readonly connections: number;
}

export interface PresenceStore {
  connected(tenantId: string, userId: string, connectionId: string): Promise<void>;
  disconnected(tenantId: string, userId: string, connectionId: string): Promise<void>;
  status(tenantId: string, userId: string): Promise<UserStatus>;
  connectedUsers(tenantId: string | undefined): Promise<readonly ConnectedUser[]>;
  close(): Promise<void>;
}

export class MemoryPresence implements PresenceStore {
  private readonly online = new Map<string, Set<string>>();
  private readonly lastSeen = new Map<string, number>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  async connected(tenantId: string, userId: string, connectionId: string): Promise<void> {
    const key = `${tenantId}/${userId}`;
    let connections = this.online.get(key);
    if (!connections) this.online.set(key, (connections = new Set()));
    connections.add(connectionId);
    this.lastSeen.set(key, this.now());
  }

  async disconnected(tenantId: string, userId: string, connectionId: string): Promise<void> {
    const key = `${tenantId}/${userId}`;
    const connections = this.online.get(key);
    connections?.delete(connectionId);
    if (connections?.size === 0) this.online.delete(key);
    this.lastSeen.set(key, this.now());
  }

  async status(tenantId: string, userId: string): Promise<UserStatus> {
    const key = `${tenantId}/${userId}`;
    const connections = this.online.get(key)?.size ?? 0;
    return userStatus(tenantId, userId, connections, connections > 0 ? this.now() : this.lastSeen.get(key));
  }

  async connectedUsers(tenantId: string | undefined): Promise<readonly ConnectedUser[]> {
    const users: ConnectedUser[] = [];
    for (const [key, connections] of this.online) {
      const slash = key.indexOf('/');
      const tenant = key.slice(0, slash);
      if (tenantId !== undefined && tenant !== tenantId) continue;
      users.push({ tenant_id: tenant, user_id: key.slice(slash + 1), connections: connections.size });
    }
    return users;
  }

  async close(): Promise<void> {}
}
