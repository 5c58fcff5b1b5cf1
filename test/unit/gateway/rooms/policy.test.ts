import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Identity } from '../../../../gateway/src/auth/identity.ts';
import { ErrorCode } from '../../../../gateway/src/protocol/codes.ts';
import { parseRoom } from '../../../../gateway/src/rooms/names.ts';
import { decide, type RoomAction, type RoomPolicyOptions } from '../../../../gateway/src/rooms/policy.ts';

const identity = (userId: string, tenantId: string, orgs: string[], roles: string[]): Identity => ({
  userId,
  tenantId,
  orgs,
  roles,
  expiresAt: undefined,
  viaTicket: false,
});

const IDENTITIES = {
  /** An ordinary user of tenant t1, member of org o1, with a role that is not a broadcast role. */
  member: identity('u1', 't1', ['o1'], ['viewer']),
  /** Same tenant, member of o1 and o2, with a broadcast role. */
  publisher: identity('u2', 't1', ['o1', 'o2'], ['publisher']),
  /** Another tenant, no orgs, no roles. */
  outsider: identity('u3', 't2', [], []),
} as const;

const OPTIONS: RoomPolicyOptions = { broadcastRoles: ['admin', 'publisher'] };
const ACTIONS: readonly RoomAction[] = ['subscribe', 'publish', 'signal'];

/**
 * identity, room, and the verdict for subscribe / publish / signal: 'y' allowed, '-' forbidden.
 * Every room type appears for every identity.
 */
const TABLE: readonly (readonly [keyof typeof IDENTITIES, string, string])[] = [
  ['member', 'user:u1', 'y--'],
  ['member', 'user:u2', '---'],
  ['member', 'tenant:t1', 'y--'],
  ['member', 'tenant:t2', '---'],
  ['member', 'org:o1', 'y--'],
  ['member', 'org:o2', '---'],
  ['member', 'field:1', 'y--'],
  ['member', 'farm:1', 'y--'],
  ['member', 'chat:1', 'yyy'],
  ['member', 'alerts', 'y--'],
  ['member', 'weather', 'y--'],
  ['member', 'global', 'y--'],

  ['publisher', 'user:u2', 'y--'],
  ['publisher', 'user:u1', '---'],
  ['publisher', 'tenant:t1', 'yy-'],
  ['publisher', 'tenant:t2', '---'],
  ['publisher', 'org:o1', 'yy-'],
  ['publisher', 'org:o2', 'yy-'],
  ['publisher', 'org:o3', '---'],
  ['publisher', 'field:1', 'yy-'],
  ['publisher', 'farm:1', 'yy-'],
  ['publisher', 'chat:1', 'yyy'],
  ['publisher', 'alerts', 'y--'],
  ['publisher', 'weather', 'y--'],
  ['publisher', 'global', 'y--'],

  ['outsider', 'user:u3', 'y--'],
  ['outsider', 'user:u1', '---'],
  ['outsider', 'tenant:t2', 'y--'],
  ['outsider', 'tenant:t1', '---'],
  ['outsider', 'org:o1', '---'],
  ['outsider', 'field:1', 'y--'],
  ['outsider', 'farm:1', 'y--'],
  ['outsider', 'chat:1', 'yyy'],
  ['outsider', 'alerts', 'y--'],
  ['outsider', 'weather', 'y--'],
  ['outsider', 'global', 'y--'],
];

describe('decide: identities x rooms x actions', () => {
  it('covers every room type for every identity', () => {
    for (const who of Object.keys(IDENTITIES)) {
      const types = new Set(TABLE.filter(([w]) => w === who).map(([, room]) => parseRoom(room)?.type));
      assert.equal(types.size, 9, `${who} covers ${[...types].join(', ')}`);
    }
  });

  for (const [who, room, verdicts] of TABLE) {
    ACTIONS.forEach((action, i) => {
      const allowed = verdicts[i] === 'y';
      it(`${who} ${allowed ? 'may' : 'may not'} ${action} ${room}`, () => {
        const decision = decide(IDENTITIES[who], room, action, OPTIONS);
        if (allowed) {
          assert.deepEqual(decision, { allow: true, room: parseRoom(room) });
        } else {
          assert.equal(decision.allow, false);
          if (decision.allow) return;
          assert.equal(decision.code, ErrorCode.forbidden);
          assert.ok(decision.reason.length > 0);
        }
      });
    });
  }
});

describe('decide: rules the table rests on', () => {
  it('lets no role publish to read-only rooms', () => {
    const root = identity('root', 't1', [], ['admin', 'publisher']);
    for (const room of ['alerts', 'weather', 'global']) {
      const decision = decide(root, room, 'publish', OPTIONS);
      assert.equal(decision.allow, false);
      if (!decision.allow) assert.match(decision.reason, /read-only/);
    }
  });

  it('never lets a client publish to a user room, even its own and with every role', () => {
    const root = identity('root', 't1', [], ['admin', 'publisher']);
    const decision = decide(root, 'user:root', 'publish', OPTIONS);
    assert.equal(decision.allow, false);
    if (!decision.allow) assert.match(decision.reason, /user rooms/);
  });

  it('uses the configured broadcast roles, not fixed ones', () => {
    const ops = identity('u9', 't1', [], ['ops']);
    assert.equal(decide(ops, 'field:1', 'publish', OPTIONS).allow, false);
    assert.equal(decide(ops, 'field:1', 'publish', { broadcastRoles: ['ops'] }).allow, true);
    assert.equal(decide(IDENTITIES.publisher, 'field:1', 'publish', { broadcastRoles: [] }).allow, false);
  });

  it('matches roles and ids exactly (case-sensitive)', () => {
    const shouty = identity('U1', 'T1', ['O1'], ['ADMIN']);
    assert.equal(decide(shouty, 'field:1', 'publish', OPTIONS).allow, false);
    assert.equal(decide(shouty, 'user:u1', 'subscribe', OPTIONS).allow, false);
    assert.equal(decide(shouty, 'tenant:t1', 'subscribe', OPTIONS).allow, false);
    assert.equal(decide(shouty, 'org:o1', 'subscribe', OPTIONS).allow, false);
  });

  it('checks membership before the broadcast role', () => {
    const admin = identity('a', 't1', [], ['admin']);
    const decision = decide(admin, 'org:o1', 'publish', OPTIONS);
    assert.equal(decision.allow, false);
    if (!decision.allow) assert.match(decision.reason, /organisation/);
    assert.equal(decide(admin, 'tenant:t2', 'publish', OPTIONS).allow, false);
  });
});

describe('decide: invalid room names', () => {
  for (const action of ACTIONS) {
    for (const room of ['', 'nope', 'field:', 'field:a/b', 'alerts:1', 't1/field:1']) {
      it(`${action} ${JSON.stringify(room)} is invalid_room`, () => {
        const decision = decide(IDENTITIES.publisher, room, action, OPTIONS);
        assert.equal(decision.allow, false);
        if (!decision.allow) assert.equal(decision.code, ErrorCode.invalidRoom);
      });
    }
  }

  it('quotes at most 64 characters of the name', () => {
    const decision = decide(IDENTITIES.member, 'z'.repeat(500), 'subscribe', OPTIONS);
    assert.equal(decision.allow, false);
    if (decision.allow) return;
    assert.ok(decision.reason.includes('z'.repeat(64)));
    assert.ok(!decision.reason.includes('z'.repeat(65)));
  });
});
