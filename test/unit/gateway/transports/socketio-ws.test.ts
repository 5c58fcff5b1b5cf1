/**
 * The socket.io packets of clients served without engine.io: decoded as socket.io-parser decodes them (it is the
 * oracle here), refused where it refuses them, and the server's events encoded as it encodes them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, Encoder, PacketType } from 'socket.io-parser';
import { eventFrame, parseSioPacket } from '../../../../gateway/src/transports/socketio-ws.ts';

/** What socket.io-parser makes of a text packet: the packet, or undefined when it throws. */
function stock(text: string): { type: number; nsp: string; id?: number; data?: unknown } | undefined {
  const decoder = new Decoder();
  let decoded: { type: number; nsp: string; id?: number; data?: unknown } | undefined;
  decoder.on('decoded', (packet: typeof decoded) => {
    decoded = packet;
  });
  try {
    decoder.add(text);
  } catch {
    return undefined;
  }
  if (!decoded) return undefined;
  const { type, nsp, id, data } = decoded;
  return { type, nsp, ...(id !== undefined ? { id } : {}), ...(data !== undefined ? { data } : {}) };
}

const ACCEPTED = [
  '0', '0{"token":"abc"}', '0{"token":"abc","pid":"p1","offset":"17-0"}', '0/admin,', '0/admin,{"token":"x"}',
  '1', '1/admin,',
  '2["ping",{}]', '2["join_room",{"room":"chat:1"}]', '27["ping",{}]', '2123["subscribe",{"topics":["a","b"]}]', '2["event"]', '2[42]',
  '2/admin,["x",1]', '2/admin,5["x",1]', '2["message",{"text":"مرحبا"}]',
  '35[]', '35["ok",1]',
];

const REFUSED = [
  '', '9', '7["x"]', 'x', '2', '2[]', '2{"type":"ping"}', '2"ping"', '2["disconnect",{}]', '2["connect"]',
  '2["connect_error"]', '2["newListener"]', '2["x",', '0"token"', '0[1]', '1{"a":1}', '3["ok"]x', '4{"message":"x"}',
  '5-["x",{"_placeholder":true,"num":0}]',
];

describe('parseSioPacket', () => {
  for (const text of ACCEPTED) {
    it(`decodes ${JSON.stringify(text)} as socket.io-parser does`, () => {
      const expected = stock(text);
      assert.ok(expected, 'socket.io-parser accepts it too');
      assert.deepEqual(parseSioPacket(text), expected);
    });
  }
  for (const text of REFUSED) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      assert.equal(parseSioPacket(text), undefined);
    });
  }
  it('refuses only what socket.io-parser refuses too, but for deliberate differences', () => {
    // An empty frame (socket.io-parser reads it as a CONNECT), an EVENT without an event, an ACK without an id (a
    // reply to nothing), a CONNECT_ERROR (only servers send one) and binary attachments (not served here).
    const deliberate = new Set(['', '2', '3["ok"]', '4{"message":"x"}', '5-["x",{"_placeholder":true,"num":0}]']);
    for (const text of REFUSED.filter((t) => !deliberate.has(t))) assert.equal(stock(text), undefined, `socket.io-parser accepts ${text}`);
    for (const text of deliberate) assert.equal(parseSioPacket(text), undefined);
  });
});

describe('eventFrame', () => {
  it('is socket.io-parser\'s encoding of the EVENT behind the Engine.IO message type', () => {
    const encoder = new Encoder();
    for (const [event, payload, offset] of [['event', { type: 'event', data: { a: 'é' } }, '17-0'], ['pong', { type: 'pong' }, undefined], ['count', 3, 'x']] as const) {
      const args = offset === undefined ? [event, payload] : [event, payload, offset];
      const [encoded] = encoder.encode({ type: PacketType.EVENT, nsp: '/', data: args });
      assert.equal(eventFrame(event, payload, offset), `4${encoded as string}`);
    }
  });
});
