/**
 * Builders for everything the gateway sends. Each returns the seed's JSON; on socket.io the event name is the
 * `type` field and the payload is the whole object, on /ws the object is the frame.
 */
import { CLOSE_REASONS, type CloseCodeValue, type ErrorCodeValue } from './codes.ts';
import { describeEvent, isPriority, type Priority } from './event-types.ts';

export type Timestamp = string;
/** The last timestamp made, by its millisecond: formatting one costs more than the rest of a small publish's envelope. */
let lastMs = Number.NaN;
let lastStamp: Timestamp = '';
/** `YYYY-MM-DDTHH:MM:SS.` of the last second formatted: V8 formats a Date through printf, so once a second is enough. */
let secondStart = Number.NaN;
let secondPrefix = '';

export function now(): Timestamp {
  const ms = Math.floor(Date.now());
  if (ms !== lastMs) {
    // Before 1970 too (a remainder of a negative number is negative).
    const millis = ((ms % 1000) + 1000) % 1000;
    if (ms - millis !== secondStart) {
      secondStart = ms - millis;
      // All but `mmmZ`, whatever the year's width (years past 9999 are `+010000`).
      secondPrefix = new Date(secondStart).toISOString().slice(0, -4);
    }
    lastStamp = `${secondPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
    lastMs = ms;
  }
  return lastStamp;
}

/** Milliseconds since the epoch of a timestamp (NaN if it is not one); the latest from `now()` needs no parsing. */
export function timestampMs(value: unknown): number {
  if (value === lastStamp) return lastMs;
  return typeof value === 'string' ? Date.parse(value) : Number.NaN;
}

export interface EventEnvelope {
  readonly type: 'event';
  readonly event_type: string;
  readonly priority: Priority;
  readonly message: string;
  readonly message_ar: string;
  readonly data: unknown;
  readonly subject: string | null;
  readonly timestamp: Timestamp;
}

/** Seed 000's event envelope; priority and texts come from the event-type table unless given. */
export function eventEnvelope(input: {
  eventType: string;
  data: unknown;
  subject?: string | null;
  priority?: unknown;
  timestamp?: Timestamp;
}): EventEnvelope {
  const info = describeEvent(input.eventType);
  return {
    type: 'event',
    event_type: input.eventType,
    priority: isPriority(input.priority) ? input.priority : info.priority,
    message: info.message,
    message_ar: info.messageAr,
    data: input.data,
    subject: input.subject ?? null,
    timestamp: input.timestamp ?? now(),
  };
}

export interface ErrorReply {
  readonly type: 'error';
  readonly code: ErrorCodeValue;
  readonly message: string;
  readonly request_type?: string;
  readonly close_code?: CloseCodeValue;
  readonly timestamp: Timestamp;
}

export function errorReply(code: ErrorCodeValue, message: string, requestType?: string): ErrorReply {
  return { type: 'error', code, message, ...(requestType ? { request_type: requestType } : {}), timestamp: now() };
}

/** Sent on socket.io just before the server closes a socket with a code (raw /ws gets the close frame instead). */
export function closingNotice(closeCode: CloseCodeValue, code: ErrorCodeValue, reconnectAfterMs?: number) {
  return {
    type: 'error' as const,
    code,
    message: CLOSE_REASONS[closeCode],
    close_code: closeCode,
    ...(reconnectAfterMs !== undefined ? { reconnect_after_ms: reconnectAfterMs } : {}),
    timestamp: now(),
  };
}

export function subscribedReply(topics: readonly string[], failed: readonly { topic: string; code: ErrorCodeValue; reason: string }[]) {
  return {
    type: 'subscribed' as const,
    topics,
    // Seed 000 lists the failed topics as strings; `errors` says why, one entry each.
    failed: failed.map((f) => f.topic),
    errors: failed,
    timestamp: now(),
    message_ar: `تم الاشتراك في ${topics.length} موضوع`,
  };
}

export function unsubscribedReply(topics: readonly string[]) {
  return { type: 'unsubscribed' as const, topics, timestamp: now(), message_ar: `تم إلغاء الاشتراك من ${topics.length} موضوع` };
}

export function roomReply(type: 'room_joined' | 'room_left', room: string) {
  return { type, room, timestamp: now() };
}

export function pongReply() {
  return { type: 'pong' as const, timestamp: now() };
}

/** What room members receive for a client `broadcast` (seed 000). */
export function roomMessage(room: string, fromUserId: string, message: unknown) {
  return { type: 'message' as const, room, from: { user_id: fromUserId }, message, timestamp: now() };
}

/** Seed 001's notification shape. */
export function notification(data: Record<string, unknown>) {
  return { type: 'notification' as const, data, timestamp: now() };
}

/** Seed 004's service-to-user message. */
export function serviceMessage(service: string, message: unknown, metadata: unknown) {
  return {
    type: 'message' as const,
    from: { service },
    message,
    metadata: metadata ?? {},
    timestamp: now(),
  };
}
