import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import {
  closingNotice,
  errorReply,
  eventEnvelope,
  notification,
  now,
  pongReply,
  timestampMs,
  roomMessage,
  roomReply,
  serviceMessage,
  subscribedReply,
  unsubscribedReply,
} from '../../../../gateway/src/protocol/server-messages.ts';
import { CloseCode, ErrorCode } from '../../../../gateway/src/protocol/codes.ts';

const NOW = Date.parse('2024-01-15T10:30:00.000Z');
const STAMP = '2024-01-15T10:30:00.000Z';

beforeEach(() => mock.timers.enable({ apis: ['Date'], now: NOW }));
afterEach(() => mock.timers.reset());

describe('now', () => {
  it('is the current time as an ISO string', () => {
    assert.equal(now(), STAMP);
    mock.timers.tick(1500);
    assert.equal(now(), '2024-01-15T10:30:01.500Z');
    mock.timers.tick(1);
    assert.equal(now(), '2024-01-15T10:30:01.501Z');
  });

  it('is Date#toISOString to the millisecond, across seconds, minutes, days and years', () => {
    // Each step lands on another millisecond, and some on another second, minute, day or year.
    for (const step of [9, 90, 99, 1, 401, 1000, 59_000, 3_599_999, 86_400_001, 365 * 86_400_000]) {
      mock.timers.tick(step);
      assert.equal(now(), new Date(Date.now()).toISOString());
    }
    mock.timers.setTime(Date.parse('2024-12-31T23:59:59.999Z'));
    assert.equal(now(), '2024-12-31T23:59:59.999Z');
    mock.timers.tick(1);
    assert.equal(now(), '2025-01-01T00:00:00.000Z');
  });

  it('is Date#toISOString before 1970 and in years of other widths than four digits', () => {
    // The mock timers refuse negative times: Date.now alone is mocked here.
    mock.timers.reset();
    for (const time of [-1, -1001, -999, Date.UTC(10000, 0, 1, 0, 0, 0, 5), Date.UTC(-1, 11, 31, 23, 59, 59, 950)]) {
      const clock = mock.method(Date, 'now', () => time);
      assert.equal(now(), new Date(time).toISOString(), String(time));
      clock.mock.restore();
    }
  });
});

describe('timestampMs', () => {
  it('reads the latest timestamp now() made, and any other ISO string, as milliseconds', () => {
    assert.equal(timestampMs(now()), NOW);
    assert.equal(timestampMs('2024-01-15T10:29:59.250Z'), NOW - 750);
    // Another moment than the latest one, even if now() made it before.
    mock.timers.tick(5);
    now();
    assert.equal(timestampMs(STAMP), NOW);
  });

  it('is NaN for what is not a timestamp', () => {
    for (const value of [undefined, null, 42, 'yesterday', {}]) assert.ok(Number.isNaN(timestampMs(value)), String(value));
  });
});

describe('eventEnvelope', () => {
  it('has seed 000\'s fields, in seed 000\'s order, with the table\'s priority and texts', () => {
    const data = { field_id: '123', tenant_id: 'tenant_456' };
    const envelope = eventEnvelope({ eventType: 'field.updated', data, subject: 'sahool.fields.123.updated', timestamp: '2024-01-15T10:30:00Z' });
    assert.deepEqual(Object.keys(envelope), ['type', 'event_type', 'priority', 'message', 'message_ar', 'data', 'subject', 'timestamp']);
    assert.deepEqual(envelope, {
      type: 'event',
      event_type: 'field.updated',
      priority: 'medium',
      message: 'Field data updated',
      message_ar: 'تم تحديث بيانات الحقل',
      data,
      subject: 'sahool.fields.123.updated',
      timestamp: '2024-01-15T10:30:00Z',
    });
  });

  it('defaults subject to null and timestamp to now', () => {
    const envelope = eventEnvelope({ eventType: 'weather.alert', data: null });
    assert.equal(envelope.subject, null);
    assert.equal(envelope.timestamp, STAMP);
    assert.equal(envelope.priority, 'high');
    assert.ok('subject' in envelope);
  });

  it('keeps subject null when given null', () => {
    assert.equal(eventEnvelope({ eventType: 'weather.alert', data: {}, subject: null }).subject, null);
  });

  const overrides: readonly [unknown, string][] = [
    ['critical', 'critical'],
    ['low', 'low'],
    ['high', 'high'],
    ['urgent', 'medium'],
    ['HIGH', 'medium'],
    ['', 'medium'],
    [3, 'medium'],
    [null, 'medium'],
    [undefined, 'medium'],
  ];
  for (const [priority, expected] of overrides) {
    it(`priority ${JSON.stringify(priority) ?? 'undefined'} on a medium event gives ${expected}`, () => {
      assert.equal(eventEnvelope({ eventType: 'field.created', data: {}, priority }).priority, expected);
    });
  }

  it('delivers event types outside the table at low priority with generic texts', () => {
    const envelope = eventEnvelope({ eventType: 'custom.thing', data: { x: 1 } });
    assert.equal(envelope.event_type, 'custom.thing');
    assert.equal(envelope.priority, 'low');
    assert.equal(envelope.message, 'Event received');
    assert.ok(envelope.message_ar.length > 0);
    assert.deepEqual(envelope.data, { x: 1 });
  });
});

describe('errorReply', () => {
  it('carries code, message and request_type', () => {
    assert.deepEqual(errorReply(ErrorCode.forbidden, 'no', 'join_room'), {
      type: 'error',
      code: 'forbidden',
      message: 'no',
      request_type: 'join_room',
      timestamp: STAMP,
    });
  });

  it('leaves request_type out when there is none', () => {
    for (const requestType of [undefined, '']) {
      const reply = errorReply(ErrorCode.invalidJson, 'bad json', requestType);
      assert.ok(!('request_type' in reply));
      assert.ok(!('close_code' in reply));
    }
  });
});

describe('closingNotice', () => {
  it('names the close code and its reason', () => {
    assert.deepEqual(closingNotice(CloseCode.rateLimited, ErrorCode.rateLimited), {
      type: 'error',
      code: 'rate_limited',
      message: 'Rate Limit Exceeded',
      close_code: 4008,
      timestamp: STAMP,
    });
  });

  it('adds reconnect_after_ms when given, zero included', () => {
    assert.equal(closingNotice(CloseCode.serviceRestart, ErrorCode.internalError, 1500).reconnect_after_ms, 1500);
    assert.equal(closingNotice(CloseCode.serviceRestart, ErrorCode.internalError, 0).reconnect_after_ms, 0);
    assert.ok(!('reconnect_after_ms' in closingNotice(CloseCode.serviceRestart, ErrorCode.internalError)));
  });

  it('uses seed 000\'s reasons for 4001 and 4003', () => {
    assert.equal(closingNotice(CloseCode.authenticationRequired, ErrorCode.invalidToken).message, 'Authentication Required');
    assert.equal(closingNotice(CloseCode.tenantMismatch, ErrorCode.forbidden).message, 'Tenant Mismatch');
  });
});

describe('subscribedReply and unsubscribedReply', () => {
  it('matches seed 000\'s reply when everything succeeded', () => {
    const reply = subscribedReply(['field:123', 'weather', 'alerts'], []);
    assert.deepEqual(reply, {
      type: 'subscribed',
      topics: ['field:123', 'weather', 'alerts'],
      failed: [],
      errors: [],
      timestamp: STAMP,
      message_ar: 'تم الاشتراك في 3 موضوع',
    });
  });

  it('lists failed topics as strings, and why in errors', () => {
    const failed = [
      { topic: 'user:other', code: ErrorCode.forbidden, reason: 'a user room is only for its own user' },
      { topic: 'bogus', code: ErrorCode.invalidRoom, reason: 'not a room' },
    ];
    const reply = subscribedReply(['weather'], failed);
    assert.deepEqual(reply.failed, ['user:other', 'bogus']);
    assert.deepEqual(reply.errors, failed);
    assert.deepEqual(reply.topics, ['weather']);
    assert.equal(reply.message_ar, 'تم الاشتراك في 1 موضوع');
  });

  it('counts the unsubscribed topics in Arabic', () => {
    assert.deepEqual(unsubscribedReply(['field:1', 'farm:2']), {
      type: 'unsubscribed',
      topics: ['field:1', 'farm:2'],
      timestamp: STAMP,
      message_ar: 'تم إلغاء الاشتراك من 2 موضوع',
    });
  });
});

describe('the other replies', () => {
  it('room_joined and room_left', () => {
    assert.deepEqual(roomReply('room_joined', 'field:1'), { type: 'room_joined', room: 'field:1', timestamp: STAMP });
    assert.deepEqual(roomReply('room_left', 'chat:2'), { type: 'room_left', room: 'chat:2', timestamp: STAMP });
  });

  it('pong as in seed 000', () => {
    assert.deepEqual(pongReply(), { type: 'pong', timestamp: STAMP });
  });

  it('a room message names its room and sender', () => {
    assert.deepEqual(roomMessage('chat:1', 'user-1', { text: 'hi' }), {
      type: 'message',
      room: 'chat:1',
      from: { user_id: 'user-1' },
      message: { text: 'hi' },
      timestamp: STAMP,
    });
  });

  it('a notification wraps its data', () => {
    assert.deepEqual(notification({ title: 't' }), { type: 'notification', data: { title: 't' }, timestamp: STAMP });
  });

  it('a service message names the service and defaults metadata to {}', () => {
    assert.deepEqual(serviceMessage('billing', 'paid', undefined), {
      type: 'message',
      from: { service: 'billing' },
      message: 'paid',
      metadata: {},
      timestamp: STAMP,
    });
    assert.deepEqual(serviceMessage('billing', 'paid', null).metadata, {});
    assert.deepEqual(serviceMessage('billing', 'paid', { k: 1 }).metadata, { k: 1 });
  });
});
