import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ROOM_TYPES,
  isValidId,
  parseRoom,
  roomName,
  roomTypeOf,
  scopedRoom,
  unscopeRoom,
  type RoomType,
} from '../../../../gateway/src/rooms/names.ts';

/** Every room type with a sample client-visible name (seed 000's rooms, plus org). */
const SAMPLES: readonly { name: string; type: RoomType; id: string | undefined }[] = [
  { name: 'field:123', type: 'field', id: '123' },
  { name: 'farm:f-9', type: 'farm', id: 'f-9' },
  { name: 'user:user_456', type: 'user', id: 'user_456' },
  { name: 'tenant:tenant_123', type: 'tenant', id: 'tenant_123' },
  { name: 'alerts', type: 'alerts', id: undefined },
  { name: 'weather', type: 'weather', id: undefined },
  { name: 'chat:456', type: 'chat', id: '456' },
  { name: 'global', type: 'global', id: undefined },
  { name: 'org:acme', type: 'org', id: 'acme' },
];

describe('parseRoom', () => {
  it('has a sample for every room type', () => {
    assert.deepEqual(SAMPLES.map((s) => s.type).sort(), [...ROOM_TYPES].sort());
  });

  for (const { name, type, id } of SAMPLES) {
    it(`parses ${name}`, () => {
      assert.deepEqual(parseRoom(name), { type, id, name });
      assert.equal(roomName(type, id), name);
    });
  }

  it('keeps everything after the first colon as the id', () => {
    assert.deepEqual(parseRoom('chat:a:b'), { type: 'chat', id: 'a:b', name: 'chat:a:b' });
  });

  it('accepts non-ASCII ids and ids of exactly 128 characters', () => {
    assert.deepEqual(parseRoom('field:حقل-١'), { type: 'field', id: 'حقل-١', name: 'field:حقل-١' });
    const id = 'x'.repeat(128);
    assert.equal(parseRoom(`field:${id}`)?.id, id);
  });

  const invalid: readonly [string, string][] = [
    ['', 'empty'],
    ['field', 'a type that needs an id, without one'],
    ['field:', 'an empty id'],
    [':123', 'no type'],
    ['chat', 'chat without id'],
    ['user', 'user without id'],
    ['tenant', 'tenant without id'],
    ['org', 'org without id'],
    ['farm', 'farm without id'],
    ['alerts:1', 'an id on alerts'],
    ['weather:riyadh', 'an id on weather'],
    ['global:x', 'an id on global'],
    ['Field:123', 'a capitalised type'],
    ['FIELD:123', 'an upper-case type'],
    ['room:1', 'an unknown type'],
    ['fields:1', 'a plural type'],
    [' field:1', 'a leading space'],
    ['weather ', 'a trailing space on a singleton'],
    ['field:1 ', 'a trailing space on the id'],
    ['field:a b', 'a space in the id'],
    ['field:a\tb', 'a tab in the id'],
    ['field:a\nb', 'a newline in the id'],
    ['field:a\u0000b', 'a NUL in the id'],
    ['field:a\u007fb', 'DEL in the id'],
    ['field:a/b', 'a slash in the id'],
    ['field:a\\b', 'a backslash in the id'],
    ['tenant-a/field:1', 'a scoped (internal) name'],
    [`field:${'x'.repeat(129)}`, 'an id of 129 characters'],
    ['__proto__', 'an object key'],
    ['constructor:1', 'an object key as type'],
  ];
  for (const [name, label] of invalid) {
    it(`refuses ${label} (${JSON.stringify(name)})`, () => {
      assert.equal(parseRoom(name), undefined);
    });
  }
});

describe('isValidId', () => {
  for (const id of ['tenant-a', 'tenant_123', '42', 'a.b@c', 'x'.repeat(128), 'مستأجر']) {
    it(`accepts ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}…(${id.length})` : id)}`, () => assert.equal(isValidId(id), true));
  }
  for (const id of ['', 'a/b', '/a', 'a/', 'a b', ' a', 'a\u00a0b', 'a\u2028b', 'a\\b', 'a\u0001', 'x'.repeat(129)]) {
    it(`refuses ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}…(${id.length})` : id)}`, () => assert.equal(isValidId(id), false));
  }
});

describe('scopedRoom and unscopeRoom', () => {
  for (const { name } of SAMPLES) {
    for (const tenantId of ['tenant-a', '7', 'مستأجر']) {
      it(`round-trips ${tenantId} / ${name}`, () => {
        const scoped = scopedRoom(tenantId, name);
        assert.equal(scoped, `${tenantId}/${name}`);
        assert.deepEqual(unscopeRoom(scoped), { tenantId, room: name });
      });
    }
  }

  it('keeps two tenants\' rooms of the same name apart', () => {
    assert.notEqual(scopedRoom('tenant-a', 'field:1'), scopedRoom('tenant-b', 'field:1'));
  });

  it('cannot be fooled by a valid tenant id into another tenant\'s room', () => {
    // Tenant ids are valid ids, so none contains the separator; '/' inside would make scoping ambiguous.
    assert.equal(isValidId('tenant-a/field:1'), false);
    assert.equal(isValidId('tenant-a/field'), false);
  });

  for (const scoped of ['', 'no-slash-socket-id', '/field:1']) {
    it(`gives undefined for ${JSON.stringify(scoped)} (socket.io's own rooms, no tenant)`, () => {
      assert.equal(unscopeRoom(scoped), undefined);
    });
  }

  it('splits at the first slash', () => {
    assert.deepEqual(unscopeRoom('t/a/b'), { tenantId: 't', room: 'a/b' });
  });
});

describe('roomTypeOf', () => {
  for (const { name, type } of SAMPLES) {
    it(`finds ${type} in a scoped ${name}`, () => assert.equal(roomTypeOf(scopedRoom('t1', name)), type));
  }
  for (const scoped of ['socket-id-without-slash', 't1/not-a-room', 't1/', '/weather']) {
    it(`gives undefined for ${JSON.stringify(scoped)}`, () => assert.equal(roomTypeOf(scoped), undefined));
  }
});
