/**
 * NATS routing, pure: from a subject and its payload to the tenant, the rooms and the event envelope the
 * bridge publishes through the fan-out. No I/O here; `nats.ts` feeds it and acts on the decision.
 *
 * Rules (docs/reference/nats.md documents them for publishers):
 * - the tenant is `payload.tenant_id` and is required: tenants are isolated in every path, so a message that
 *   names no tenant is dropped (`no_tenant`), never broadcast to everybody;
 * - rooms come from the payload's ids (field_id, farm_id, user_id, room_id/chat_id, org_id), from the subject
 *   family (weather -> `weather`, alerts -> `alerts`), from `sahool.fields.{id}.…` and from an explicit `room`;
 *   all that apply are used (the fan-out reaches each connection once);
 * - a message with a tenant but nothing else to route by goes to the tenant room `tenant:{tenant_id}`: every
 *   connection of the tenant is in it, so tenant-wide events (`sahool.inventory.out_of_stock` with only a
 *   tenant) reach the tenant instead of being lost;
 * - the event type is `payload.event_type` when it is a string, else derived from the subject (seed 000's
 *   families: `sahool.fields.123.updated` -> `field.updated`, `sahool.tasks.x.completed` -> `task.completed`).
 */
import { EVENT_TYPES } from '../protocol/event-types.ts';
import { eventEnvelope, type EventEnvelope, type Timestamp } from '../protocol/server-messages.ts';
import { isValidId, parseRoom, roomName, type RoomType } from '../rooms/names.ts';

export const DROP_REASONS = ['invalid_payload', 'no_tenant', 'invalid_tenant'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type RoutingDecision =
  | {
      readonly deliver: true;
      readonly tenantId: string;
      /** Client-visible room names (`field:123`), deduplicated; never empty. */
      readonly rooms: readonly string[];
      readonly eventType: string;
      readonly envelope: EventEnvelope;
    }
  | { readonly deliver: false; readonly reason: DropReason };

/**
 * Seed 000's subject families (`sahool.{family}.>`): the event-type prefix each maps to, and the room every
 * message of the family also goes to. `alerts` has no event-type family of its own in the seed's table.
 */
interface Family {
  readonly prefix: string;
  readonly room?: RoomType;
  /** The event type when the subject names no known type (undefined: `{prefix}.{last token}`). */
  readonly fallback?: string;
}

const FAMILIES: Readonly<Record<string, Family>> = {
  fields: { prefix: 'field' },
  weather: { prefix: 'weather', room: 'weather' },
  satellite: { prefix: 'satellite' },
  ndvi: { prefix: 'ndvi' },
  inventory: { prefix: 'inventory' },
  crop: { prefix: 'crop' },
  spray: { prefix: 'spray' },
  chat: { prefix: 'chat' },
  tasks: { prefix: 'task' },
  iot: { prefix: 'iot' },
  // An alert without a more specific type is a system notification (medium), not an unknown (low) event.
  alerts: { prefix: 'alert', room: 'alerts', fallback: 'system.notification' },
  system: { prefix: 'system' },
};

const SUBJECT_PREFIX = 'sahool';
const MAX_EVENT_TYPE_LENGTH = 128;

const isKnownEventType = (type: string) => Object.hasOwn(EVENT_TYPES, type);

/** The family a subject belongs to: its first token after the optional `sahool.` prefix, when known. */
function familyOf(tokens: readonly string[]): { name: string; family: Family; rest: readonly string[] } | undefined {
  const start = tokens[0] === SUBJECT_PREFIX ? 1 : 0;
  const name = tokens[start];
  if (name === undefined || !Object.hasOwn(FAMILIES, name)) return undefined;
  return { name, family: FAMILIES[name]!, rest: tokens.slice(start + 1) };
}

/**
 * The event type a subject stands for. Within a known family, the longest tail of the subject that names a
 * known event type wins (`sahool.crop.f1.disease.detected` -> `crop.disease.detected`, ids in between are
 * skipped); a tail that is itself a known type counts too (`sahool.alerts.weather.alert` -> `weather.alert`,
 * `sahool.system.sync_required` -> `sync_required`). Otherwise `{prefix}.{last token}`, delivered at the
 * unknown-type defaults. Subjects outside the families: the subject without the `sahool.` prefix.
 */
export function eventTypeFromSubject(subject: string): string {
  const tokens = subject.split('.');
  const found = familyOf(tokens);
  if (!found) return (tokens[0] === SUBJECT_PREFIX && tokens.length > 1 ? tokens.slice(1) : tokens).join('.');
  const { family, rest } = found;
  for (let length = rest.length; length >= 1; length--) {
    const tail = rest.slice(rest.length - length).join('.');
    if (isKnownEventType(`${family.prefix}.${tail}`)) return `${family.prefix}.${tail}`;
    if (isKnownEventType(tail)) return tail;
  }
  if (family.fallback) return family.fallback;
  return rest.length === 0 ? family.prefix : `${family.prefix}.${rest[rest.length - 1]}`;
}

/** An id from the payload: a non-empty string or an integer, valid as a room id; else undefined. */
function idOf(value: unknown): string | undefined {
  const id = typeof value === 'string' ? value.trim() : typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : undefined;
  return id !== undefined && isValidId(id) ? id : undefined;
}

const ID_FIELDS: readonly (readonly [field: string, room: RoomType])[] = [
  ['field_id', 'field'],
  ['farm_id', 'farm'],
  ['user_id', 'user'],
  ['room_id', 'chat'],
  ['chat_id', 'chat'],
  ['org_id', 'org'],
];

function roomsFor(tenantId: string, subject: string, payload: Record<string, unknown>): string[] {
  const rooms = new Set<string>();
  for (const [field, type] of ID_FIELDS) {
    const raw = payload[field];
    // A chat id may already be the room name (`chat:456`).
    const id = idOf(type === 'chat' && typeof raw === 'string' && raw.startsWith('chat:') ? raw.slice('chat:'.length) : raw);
    if (id !== undefined) rooms.add(roomName(type, id));
  }
  const tokens = subject.split('.');
  const found = familyOf(tokens);
  if (found?.family.room) rooms.add(roomName(found.family.room));
  // `sahool.fields.{id}.{action}` names its field even when the payload does not.
  if (found?.name === 'fields' && found.rest.length >= 2) {
    const id = idOf(found.rest[0]);
    if (id !== undefined) rooms.add(roomName('field', id));
  }
  if (typeof payload['room'] === 'string') {
    const room = parseRoom(payload['room']);
    // Another tenant's tenant room is meaningless inside this tenant: nobody could be in it.
    if (room && !(room.type === 'tenant' && room.id !== tenantId)) rooms.add(room.name);
  }
  if (rooms.size === 0) rooms.add(roomName('tenant', tenantId));
  return [...rooms];
}

/** Decodes a message body: JSON whose top level is an object, or undefined. */
export function decodePayload(data: Uint8Array | string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Routes a decoded payload (anything JSON.parse returned). */
export function route(subject: string, payload: unknown, options: { timestamp?: Timestamp } = {}): RoutingDecision {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { deliver: false, reason: 'invalid_payload' };
  const body = payload as Record<string, unknown>;
  const rawTenant = body['tenant_id'];
  if (rawTenant === undefined || rawTenant === null || rawTenant === '') return { deliver: false, reason: 'no_tenant' };
  const tenantId = idOf(rawTenant);
  if (tenantId === undefined) return { deliver: false, reason: 'invalid_tenant' };

  const given = body['event_type'];
  const eventType = typeof given === 'string' && given.trim() !== '' && given.length <= MAX_EVENT_TYPE_LENGTH ? given.trim() : eventTypeFromSubject(subject);
  const envelope = eventEnvelope({
    eventType,
    data: body,
    subject,
    priority: body['priority'],
    ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
  });
  return { deliver: true, tenantId, rooms: roomsFor(tenantId, subject, body), eventType, envelope };
}

/** Decodes and routes a raw message body. */
export function routeMessage(subject: string, data: Uint8Array | string, options: { timestamp?: Timestamp } = {}): RoutingDecision {
  const payload = decodePayload(data);
  return payload === undefined ? { deliver: false, reason: 'invalid_payload' } : route(subject, payload, options);
}
