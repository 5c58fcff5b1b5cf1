/**
 * The eight client messages of seed 000, plus `refresh` (a fresh token before the current one expires).
 * `parseClientMessage` is the one validator: both transports hand it the decoded message.
 */
import { ErrorCode, type ErrorCodeValue } from './codes.ts';

export const MAX_TOPICS_PER_MESSAGE = 50;
export const MAX_ROOM_NAME_LENGTH = 200;
export const MAX_MESSAGE_ID_LENGTH = 200;
export const MAX_TOKEN_LENGTH = 8192;
/** Arrays/objects nested deeper than this are refused: recursive JSON handling (stringify, the socket.io encoder) would overflow the stack. */
export const MAX_JSON_DEPTH = 32;

export type ClientMessage =
  | { readonly type: 'subscribe'; readonly topics: readonly string[] }
  | { readonly type: 'unsubscribe'; readonly topics: readonly string[] }
  | { readonly type: 'join_room'; readonly room: string }
  | { readonly type: 'leave_room'; readonly room: string }
  | { readonly type: 'broadcast'; readonly room: string; readonly message: unknown }
  | { readonly type: 'ping' }
  | { readonly type: 'typing'; readonly room: string; readonly typing: boolean }
  | { readonly type: 'read'; readonly room: string; readonly message_id: string }
  | { readonly type: 'refresh'; readonly token: string };

export type ClientMessageType = ClientMessage['type'];

export const CLIENT_MESSAGE_TYPES: ReadonlySet<string> = new Set<ClientMessageType>([
  'subscribe', 'unsubscribe', 'join_room', 'leave_room', 'broadcast', 'ping', 'typing', 'read', 'refresh',
]);

export function isClientMessageType(value: unknown): value is ClientMessageType {
  return typeof value === 'string' && CLIENT_MESSAGE_TYPES.has(value);
}

export type ParseResult =
  | { readonly ok: true; readonly message: ClientMessage }
  | { readonly ok: false; readonly code: ErrorCodeValue; readonly error: string };

const fail = (code: ErrorCodeValue, error: string): ParseResult => ({ ok: false, code, error });

/** Whether `value` nests arrays/objects more than `max` levels deep. Iterative, so hostile depth cannot overflow the stack. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, level] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (level > max) return true;
    for (const child of Object.values(current)) stack.push([child, level + 1]);
  }
  return false;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function roomField(body: Record<string, unknown>, type: string): string | ParseResult {
  const room = body['room'];
  if (typeof room !== 'string' || room.length === 0) return fail(ErrorCode.invalidMessage, `${type} needs "room", a non-empty string`);
  if (room.length > MAX_ROOM_NAME_LENGTH) return fail(ErrorCode.invalidMessage, `"room" is longer than ${MAX_ROOM_NAME_LENGTH} characters`);
  return room;
}

function topicsField(body: Record<string, unknown>, type: string): readonly string[] | ParseResult {
  const topics = body['topics'];
  if (!Array.isArray(topics) || topics.length === 0) return fail(ErrorCode.invalidMessage, `${type} needs "topics", a non-empty array of strings`);
  if (topics.length > MAX_TOPICS_PER_MESSAGE) return fail(ErrorCode.invalidMessage, `"topics" has more than ${MAX_TOPICS_PER_MESSAGE} entries`);
  for (const topic of topics) {
    if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_ROOM_NAME_LENGTH) {
      return fail(ErrorCode.invalidMessage, `every topic must be a non-empty string of at most ${MAX_ROOM_NAME_LENGTH} characters`);
    }
  }
  return [...new Set(topics as string[])];
}

/**
 * Validates a decoded client message. `type` is the message type (the socket.io event name, or the JSON
 * `type` field on /ws); `body` is the rest of the message.
 */
export function parseClientMessage(type: unknown, body: unknown): ParseResult {
  if (!isClientMessageType(type)) {
    return fail(ErrorCode.unknownType, typeof type === 'string' ? `unknown message type "${type.slice(0, 64)}"` : 'a message needs "type", a string');
  }
  // A message without fields (ping) may come with no payload at all on socket.io.
  const fields: Record<string, unknown> = body === undefined || body === null ? {} : isRecord(body) ? body : {};
  if (body !== undefined && body !== null && !isRecord(body)) return fail(ErrorCode.invalidMessage, `the payload of "${type}" must be a JSON object`);
  if (nestedDeeperThan(fields, MAX_JSON_DEPTH)) return fail(ErrorCode.invalidMessage, `the message is nested more than ${MAX_JSON_DEPTH} levels deep`);
  switch (type) {
    case 'subscribe':
    case 'unsubscribe': {
      const topics = topicsField(fields, type);
      return Array.isArray(topics) ? { ok: true, message: { type, topics } } : (topics as ParseResult);
    }
    case 'join_room':
    case 'leave_room': {
      const room = roomField(fields, type);
      return typeof room === 'string' ? { ok: true, message: { type, room } } : room;
    }
    case 'broadcast': {
      const room = roomField(fields, type);
      if (typeof room !== 'string') return room;
      if (!('message' in fields) || fields['message'] === undefined || fields['message'] === null) {
        return fail(ErrorCode.invalidMessage, 'broadcast needs "message"');
      }
      return { ok: true, message: { type, room, message: fields['message'] } };
    }
    case 'ping':
      return { ok: true, message: { type } };
    case 'typing': {
      const room = roomField(fields, type);
      if (typeof room !== 'string') return room;
      const typing = fields['typing'] ?? true;
      if (typeof typing !== 'boolean') return fail(ErrorCode.invalidMessage, '"typing" must be a boolean');
      return { ok: true, message: { type, room, typing } };
    }
    case 'read': {
      const room = roomField(fields, type);
      if (typeof room !== 'string') return room;
      const messageId = fields['message_id'];
      if (typeof messageId !== 'string' || messageId.length === 0 || messageId.length > MAX_MESSAGE_ID_LENGTH) {
        return fail(ErrorCode.invalidMessage, `read needs "message_id", a non-empty string of at most ${MAX_MESSAGE_ID_LENGTH} characters`);
      }
      return { ok: true, message: { type, room, message_id: messageId } };
    }
    case 'refresh': {
      const token = fields['token'];
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        return fail(ErrorCode.invalidMessage, 'refresh needs "token", a non-empty string');
      }
      return { ok: true, message: { type, token } };
    }
  }
}
