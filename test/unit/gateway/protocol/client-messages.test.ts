import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLIENT_MESSAGE_TYPES,
  MAX_MESSAGE_ID_LENGTH,
  MAX_ROOM_NAME_LENGTH,
  MAX_TOKEN_LENGTH,
  MAX_TOPICS_PER_MESSAGE,
  isClientMessageType,
  parseClientMessage,
  type ClientMessage,
} from '../../../../gateway/src/protocol/client-messages.ts';
import { ErrorCode, type ErrorCodeValue } from '../../../../gateway/src/protocol/codes.ts';

/** Asserts a refusal and returns its error text for further checks. */
function refused(type: unknown, body: unknown, code: ErrorCodeValue = ErrorCode.invalidMessage): string {
  const result = parseClientMessage(type, body);
  assert.equal(result.ok, false, `expected ${JSON.stringify(type)} ${JSON.stringify(body)} to be refused`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.code, code);
  assert.equal(typeof result.error, 'string');
  assert.ok(result.error.length > 0);
  return result.error;
}

function accepted(type: unknown, body: unknown): ClientMessage {
  const result = parseClientMessage(type, body);
  if (!result.ok) assert.fail(`expected ${JSON.stringify(type)} to be accepted, got ${result.code}: ${result.error}`);
  return result.message;
}

describe('parseClientMessage: the nine message types', () => {
  const valid: readonly { type: string; body: unknown; expected: ClientMessage }[] = [
    { type: 'subscribe', body: { topics: ['field:123', 'weather', 'alerts'] }, expected: { type: 'subscribe', topics: ['field:123', 'weather', 'alerts'] } },
    { type: 'unsubscribe', body: { topics: ['field:123'] }, expected: { type: 'unsubscribe', topics: ['field:123'] } },
    { type: 'join_room', body: { room: 'field:123' }, expected: { type: 'join_room', room: 'field:123' } },
    { type: 'leave_room', body: { room: 'field:123' }, expected: { type: 'leave_room', room: 'field:123' } },
    {
      type: 'broadcast',
      body: { room: 'field:123', message: { action: 'update', data: { a: 1 } } },
      expected: { type: 'broadcast', room: 'field:123', message: { action: 'update', data: { a: 1 } } },
    },
    { type: 'ping', body: {}, expected: { type: 'ping' } },
    { type: 'typing', body: { room: 'chat:456', typing: true }, expected: { type: 'typing', room: 'chat:456', typing: true } },
    { type: 'typing', body: { room: 'chat:456', typing: false }, expected: { type: 'typing', room: 'chat:456', typing: false } },
    { type: 'read', body: { room: 'chat:456', message_id: 'msg_789' }, expected: { type: 'read', room: 'chat:456', message_id: 'msg_789' } },
    { type: 'refresh', body: { token: 'a.b.c' }, expected: { type: 'refresh', token: 'a.b.c' } },
  ];
  for (const { type, body, expected } of valid) {
    it(`accepts seed-shaped ${type} ${JSON.stringify(body)}`, () => {
      assert.deepEqual(accepted(type, body), expected);
    });
  }

  it('knows exactly the nine types', () => {
    assert.deepEqual(
      [...CLIENT_MESSAGE_TYPES].sort(),
      ['broadcast', 'join_room', 'leave_room', 'ping', 'read', 'refresh', 'subscribe', 'typing', 'unsubscribe'],
    );
    for (const type of CLIENT_MESSAGE_TYPES) assert.equal(isClientMessageType(type), true);
  });

  it('drops fields it does not know instead of passing them on', () => {
    assert.deepEqual(accepted('join_room', { room: 'farm:1', type: 'join_room', extra: 'x' }), { type: 'join_room', room: 'farm:1' });
    assert.deepEqual(accepted('ping', { anything: 1 }), { type: 'ping' });
  });
});

describe('parseClientMessage: type', () => {
  for (const type of ['disconnect', 'connect', 'connect_error', 'error', 'event', 'subscribed', 'pong', 'Subscribe', 'PING', '', '__proto__', 'constructor', 'toString']) {
    it(`refuses ${JSON.stringify(type)} as an unknown type`, () => {
      const error = refused(type, {}, ErrorCode.unknownType);
      assert.match(error, /unknown message type/);
      assert.equal(isClientMessageType(type), false);
    });
  }

  for (const type of [undefined, null, 42, true, {}, ['ping'], Symbol('ping')]) {
    it(`refuses a non-string type (${typeof type === 'symbol' ? 'symbol' : JSON.stringify(type) ?? 'undefined'})`, () => {
      assert.equal(refused(type, {}, ErrorCode.unknownType), 'a message needs "type", a string');
      assert.equal(isClientMessageType(type), false);
    });
  }

  it('quotes at most 64 characters of an unknown type', () => {
    const error = refused('x'.repeat(10_000), {}, ErrorCode.unknownType);
    assert.ok(error.includes(`"${'x'.repeat(64)}"`));
    assert.ok(!error.includes('x'.repeat(65)));
  });
});

describe('parseClientMessage: payload', () => {
  for (const body of ['ping', 42, true, ['field:1'], [], 0, '']) {
    for (const type of ['ping', 'subscribe', 'join_room']) {
      it(`refuses ${type} with a non-object payload ${JSON.stringify(body)}`, () => {
        assert.equal(refused(type, body), `the payload of "${type}" must be a JSON object`);
      });
    }
  }

  it('accepts ping with no payload at all (socket.io emits without arguments)', () => {
    assert.deepEqual(accepted('ping', undefined), { type: 'ping' });
    assert.deepEqual(accepted('ping', null), { type: 'ping' });
  });

  it('treats a missing payload as empty for messages with required fields', () => {
    assert.match(refused('subscribe', undefined), /subscribe needs "topics"/);
    assert.match(refused('join_room', null), /join_room needs "room"/);
    assert.match(refused('refresh', undefined), /refresh needs "token"/);
  });
});

describe('parseClientMessage: topics (subscribe, unsubscribe)', () => {
  for (const type of ['subscribe', 'unsubscribe'] as const) {
    const bad: readonly [string, unknown][] = [
      ['missing', {}],
      ['a string', { topics: 'field:1' }],
      ['an object', { topics: { 0: 'field:1' } }],
      ['null', { topics: null }],
      ['empty', { topics: [] }],
    ];
    for (const [label, body] of bad) {
      it(`${type} refuses topics that are ${label}`, () => {
        assert.equal(refused(type, body), `${type} needs "topics", a non-empty array of strings`);
      });
    }

    const badEntries: readonly [string, unknown][] = [
      ['a number', 1],
      ['null', null],
      ['an object', { room: 'field:1' }],
      ['empty', ''],
      ['too long', 'f'.repeat(MAX_ROOM_NAME_LENGTH + 1)],
    ];
    for (const [label, entry] of badEntries) {
      it(`${type} refuses a topic that is ${label}`, () => {
        assert.match(refused(type, { topics: ['weather', entry] }), /every topic must be a non-empty string/);
      });
    }

    it(`${type} accepts exactly ${MAX_TOPICS_PER_MESSAGE} topics and refuses one more`, () => {
      const topics = Array.from({ length: MAX_TOPICS_PER_MESSAGE }, (_, i) => `field:${i}`);
      assert.deepEqual(accepted(type, { topics }), { type, topics });
      assert.equal(refused(type, { topics: [...topics, 'field:x'] }), `"topics" has more than ${MAX_TOPICS_PER_MESSAGE} entries`);
    });

    it(`${type} accepts a topic of exactly ${MAX_ROOM_NAME_LENGTH} characters`, () => {
      const topic = 't'.repeat(MAX_ROOM_NAME_LENGTH);
      assert.deepEqual(accepted(type, { topics: [topic] }), { type, topics: [topic] });
    });

    it(`${type} removes duplicate topics, keeping first-seen order`, () => {
      assert.deepEqual(accepted(type, { topics: ['weather', 'field:1', 'weather', 'alerts', 'field:1'] }), {
        type,
        topics: ['weather', 'field:1', 'alerts'],
      });
    });
  }

  it('does not hand back the caller\'s array (dedup makes a copy)', () => {
    const topics = ['weather'];
    const message = accepted('subscribe', { topics });
    assert.ok(message.type === 'subscribe');
    assert.notEqual(message.topics, topics);
  });
});

describe('parseClientMessage: room (join_room, leave_room, broadcast, typing, read)', () => {
  const extra: Readonly<Record<string, Record<string, unknown>>> = {
    join_room: {},
    leave_room: {},
    broadcast: { message: 'hi' },
    typing: { typing: true },
    read: { message_id: 'm1' },
  };
  for (const [type, rest] of Object.entries(extra)) {
    for (const [label, room] of [['missing', undefined], ['empty', ''], ['a number', 123], ['null', null], ['an array', ['field:1']]] as const) {
      it(`${type} refuses a room that is ${label}`, () => {
        assert.equal(refused(type, { ...rest, room }), `${type} needs "room", a non-empty string`);
      });
    }
    it(`${type} accepts a ${MAX_ROOM_NAME_LENGTH}-character room and refuses a longer one`, () => {
      const room = 'r'.repeat(MAX_ROOM_NAME_LENGTH);
      const message = accepted(type, { ...rest, room });
      assert.ok('room' in message);
      assert.equal(message.room, room);
      assert.equal(refused(type, { ...rest, room: `${room}r` }), `"room" is longer than ${MAX_ROOM_NAME_LENGTH} characters`);
    });
  }
});

describe('parseClientMessage: broadcast', () => {
  for (const message of [0, false, '', [], {}, 'text', { nested: { deep: [1, 2] } }]) {
    it(`carries message ${JSON.stringify(message)} through unchanged`, () => {
      assert.deepEqual(accepted('broadcast', { room: 'chat:1', message }), { type: 'broadcast', room: 'chat:1', message });
    });
  }
  for (const [label, body] of [['missing', { room: 'chat:1' }], ['null', { room: 'chat:1', message: null }], ['undefined', { room: 'chat:1', message: undefined }]] as const) {
    it(`refuses a message that is ${label}`, () => {
      assert.equal(refused('broadcast', body), 'broadcast needs "message"');
    });
  }
  it('checks the room before the message', () => {
    assert.match(refused('broadcast', {}), /broadcast needs "room"/);
  });
});

describe('parseClientMessage: typing', () => {
  it('defaults "typing" to true when it is absent', () => {
    assert.deepEqual(accepted('typing', { room: 'chat:1' }), { type: 'typing', room: 'chat:1', typing: true });
  });
  for (const typing of ['true', 1, 0, 'false', {}, []]) {
    it(`refuses a non-boolean typing ${JSON.stringify(typing)}`, () => {
      assert.equal(refused('typing', { room: 'chat:1', typing }), '"typing" must be a boolean');
    });
  }
});

describe('parseClientMessage: read', () => {
  const error = `read needs "message_id", a non-empty string of at most ${MAX_MESSAGE_ID_LENGTH} characters`;
  for (const [label, messageId] of [['missing', undefined], ['empty', ''], ['a number', 789], ['null', null], ['too long', 'm'.repeat(MAX_MESSAGE_ID_LENGTH + 1)]] as const) {
    it(`refuses a message_id that is ${label}`, () => {
      assert.equal(refused('read', { room: 'chat:1', message_id: messageId }), error);
    });
  }
  it(`accepts a message_id of exactly ${MAX_MESSAGE_ID_LENGTH} characters`, () => {
    const id = 'm'.repeat(MAX_MESSAGE_ID_LENGTH);
    assert.deepEqual(accepted('read', { room: 'chat:1', message_id: id }), { type: 'read', room: 'chat:1', message_id: id });
  });
  it('checks the room before the message_id', () => {
    assert.match(refused('read', { message_id: 'm1' }), /read needs "room"/);
  });
});

describe('parseClientMessage: refresh', () => {
  for (const [label, token] of [['missing', undefined], ['empty', ''], ['a number', 1], ['an object', { token: 'a' }], ['too long', 't'.repeat(MAX_TOKEN_LENGTH + 1)]] as const) {
    it(`refuses a token that is ${label}`, () => {
      assert.equal(refused('refresh', { token }), 'refresh needs "token", a non-empty string');
    });
  }
  it(`accepts a token of exactly ${MAX_TOKEN_LENGTH} characters`, () => {
    const token = 't'.repeat(MAX_TOKEN_LENGTH);
    assert.deepEqual(accepted('refresh', { token }), { type: 'refresh', token });
  });
  it('never echoes the token in an error', () => {
    const token = `secret-${'t'.repeat(MAX_TOKEN_LENGTH)}`;
    assert.ok(!refused('refresh', { token }).includes('secret-'));
  });
});
