import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { includesPacket } from '../../../../gateway/src/fanout/stream-order.ts';

describe('includesPacket (which stored broadcasts a recovered session missed)', () => {
  const rooms = ['sid1', 't1/field:1', 't1/user:u1'];
  it('includes a broadcast to one of the session rooms, or to everyone', () => {
    assert.equal(includesPacket(rooms, { rooms: ['t1/field:1'], except: [] }), true);
    assert.equal(includesPacket(rooms, { rooms: ['t1/field:2', 't1/user:u1'], except: [] }), true);
    assert.equal(includesPacket(rooms, { rooms: [], except: [] }), true);
  });
  it('excludes a broadcast to other rooms, or one that excepts a session room (the sender itself)', () => {
    assert.equal(includesPacket(rooms, { rooms: ['t2/field:1'], except: [] }), false);
    assert.equal(includesPacket(rooms, { rooms: ['t1/field:1'], except: ['sid1'] }), false);
  });
});
