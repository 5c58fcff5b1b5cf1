/**
 * Room naming. Clients see seed 000's names (`field:123`, `weather`); inside the gateway every room is scoped
 * by tenant (`{tenant}/{room}`), so tenant A's `field:123` and tenant B's are different rooms in every
 * replica, in the adapter's streams and in presence.
 */

export const ROOM_TYPES = ['field', 'farm', 'user', 'tenant', 'alerts', 'weather', 'chat', 'global', 'org'] as const;
export type RoomType = (typeof ROOM_TYPES)[number];

/** Rooms that are a single well-known name, with no id. */
const SINGLETON_ROOMS: ReadonlySet<string> = new Set<RoomType>(['alerts', 'weather', 'global']);
const ROOMS_WITH_ID: ReadonlySet<string> = new Set<RoomType>(['field', 'farm', 'user', 'tenant', 'chat', 'org']);

/** Ids (and tenant ids): up to 128 characters, no slash (the tenant separator), no whitespace or control characters. */
const ID_PATTERN = /^[^\s/\\\u0000-\u001f\u007f]{1,128}$/u;

export interface Room {
  readonly type: RoomType;
  /** undefined for alerts, weather, global */
  readonly id: string | undefined;
  /** The client-visible name, e.g. `field:123`. */
  readonly name: string;
}

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

export function parseRoom(name: string): Room | undefined {
  if (SINGLETON_ROOMS.has(name)) return { type: name as RoomType, id: undefined, name };
  const colon = name.indexOf(':');
  if (colon <= 0) return undefined;
  const type = name.slice(0, colon);
  const id = name.slice(colon + 1);
  if (!ROOMS_WITH_ID.has(type) || !isValidId(id)) return undefined;
  return { type: type as RoomType, id, name };
}

export function roomName(type: RoomType, id?: string): string {
  return id === undefined ? type : `${type}:${id}`;
}

/** The adapter-level room for a tenant's room. Tenant ids never contain '/', so this is unambiguous. */
export function scopedRoom(tenantId: string, room: string): string {
  return `${tenantId}/${room}`;
}

/** The inverse of `scopedRoom`; undefined for socket.io's own per-socket rooms. */
export function unscopeRoom(scoped: string): { tenantId: string; room: string } | undefined {
  const slash = scoped.indexOf('/');
  if (slash <= 0) return undefined;
  return { tenantId: scoped.slice(0, slash), room: scoped.slice(slash + 1) };
}

/** The room type of an adapter-level room (for metrics), or undefined. */
export function roomTypeOf(scoped: string): RoomType | undefined {
  const unscoped = unscopeRoom(scoped);
  return unscoped ? parseRoom(unscoped.room)?.type : undefined;
}
