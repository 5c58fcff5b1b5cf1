/**
 * The raw /ws framing of broadcasts: socket.io's encoded EVENT becomes one complete WebSocket text frame (written
 * as-is to every member), translated once per broadcast.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as wsModule from 'ws';
import { jsonFrame, jsonFrameFromEncoding, translatePacket } from '../../../../gateway/src/transports/ws-json.ts';

interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, binary: boolean) => void): void;
  write(chunk: Buffer): void;
}
// Exported by ws's ESM entry, not typed by @types/ws.
const { Receiver } = wsModule as unknown as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

/** Parses a server-to-client frame the way a client does (ws's own Receiver). */
function readFrame(frame: Buffer): { text: string; binary: boolean } {
  const receiver = new Receiver({ isServer: false });
  let got: { text: string; binary: boolean } | undefined;
  receiver.on('message', (data, binary) => {
    got = { text: data.toString('utf8'), binary };
  });
  receiver.write(frame);
  assert.ok(got, 'a whole message in the frame');
  return got;
}

describe('jsonFrame', () => {
  it('sends an object payload as itself, with the recovery offset as id', () => {
    assert.deepEqual(JSON.parse(jsonFrame('event', { type: 'event', data: { a: 1 } }, '17-0')), { type: 'event', data: { a: 1 }, id: '17-0' });
  });
  it('wraps anything else in {type, data}; no id without a string offset', () => {
    assert.deepEqual(JSON.parse(jsonFrame('count', 3, undefined)), { type: 'count', data: 3 });
    assert.deepEqual(JSON.parse(jsonFrame('list', [1, 2], 5)), { type: 'list', data: [1, 2] });
  });
  it('does not change the payload it was given', () => {
    const payload = { type: 'event' };
    jsonFrame('event', payload, '1-0');
    assert.deepEqual(payload, { type: 'event' });
  });
});

describe('jsonFrameFromEncoding', () => {
  const encode = (data: unknown[]) => `2${JSON.stringify(data)}`;
  it('is jsonFrame, byte for byte, for the payloads it takes', () => {
    const payloads: Record<string, unknown>[] = [
      { type: 'event', message_ar: 'إشعار', data: { nested: [1, { a: '"quoted"\n' }] }, subject: null },
      {},
      { type: 'message', room: 'chat:1', emoji: '😀', text: ']},"id":"x' },
    ];
    for (const payload of payloads) {
      for (const tail of [[], ['12-3'], [7], [null]]) {
        const data = ['event', payload, ...tail];
        assert.equal(jsonFrameFromEncoding(encode(data), data), jsonFrame('event', payload, tail[0]), JSON.stringify(data));
      }
    }
  });
  it('leaves to jsonFrame what it cannot cut: other payloads, an own id, another shape of encoding', () => {
    const cases: [unknown[], string?][] = [
      [['event', 'text']],
      [['event', [1, 2]]],
      [['event', null]],
      [['event', { id: 'theirs', a: 1 }, '1-0']],
      [['event', new Date(0)]],
      [['event']],
      [['event', {}, '1-0', 'extra']],
      [['event', { a: 1 }], '2/chat,["event",{"a":1}]'],
      [['event', { a: 1 }], '21["event",{"a":1}]'],
      [['event', { a: 1 }], '2["event",{"a":2},"1-0"]'],
    ];
    for (const [data, encoded] of cases) assert.equal(jsonFrameFromEncoding(encoded ?? encode(data), data), undefined, JSON.stringify(data));
  });
});

/** The encoding alone, as when no packet came with it. */
const translateEncoding = (encoded: string) => translatePacket(undefined, encoded);

describe('translatePacket', () => {
  it('turns a socket.io EVENT into a complete unmasked text frame of the JSON message', () => {
    const translated = translateEncoding('2["event",{"type":"event","data":{"é":"ü"}},"5-1"]');
    assert.ok(translated);
    assert.equal(translated.frame[0], 0x81, 'FIN + text opcode');
    assert.equal(translated.frame[1]! & 0x80, 0, 'server frames are not masked');
    const { text, binary } = readFrame(translated.frame);
    assert.equal(binary, false);
    assert.deepEqual(JSON.parse(text), { type: 'event', data: { 'é': 'ü' }, id: '5-1' });
    assert.equal(translated.closeCode, undefined);
  });
  it('frames long messages with the extended length', () => {
    const big = 'x'.repeat(70_000);
    const translated = translateEncoding(`2["event",{"type":"event","data":"${big}"}]`);
    assert.ok(translated);
    assert.equal(JSON.parse(readFrame(translated.frame).text).data, big);
  });
  it('reports the close code of an error notice that ends the connection', () => {
    assert.equal(translateEncoding('2["error",{"type":"error","code":"disconnected_by_service","close_code":4004}]')?.closeCode, 4004);
    assert.equal(translateEncoding('2["error",{"type":"error","code":"not_in_room"}]')?.closeCode, undefined);
  });
  it('translates a broadcast once: the same packet gives the same frame object', () => {
    const packet = { data: ['message', { type: 'message', room: 'chat:1' }] };
    const encoded = `2${JSON.stringify(packet.data)}`;
    const translated = translatePacket(packet, encoded);
    assert.ok(translated);
    assert.equal(translatePacket(packet, encoded), translated);
    assert.notEqual(translatePacket({ data: [...packet.data] }, encoded), translated, 'another broadcast with the same content is framed anew');
    assert.deepEqual(JSON.parse(readFrame(translated.frame).text), { type: 'message', room: 'chat:1' });
  });
  it('frames a packet as it frames its encoding', () => {
    const data = ['event', { type: 'event', data: { 'é': 'ü' } }, '5-1'];
    assert.deepEqual(translatePacket({ data }, `2${JSON.stringify(data)}`)?.frame, translateEncoding(`2${JSON.stringify(data)}`)?.frame);
    assert.equal(translatePacket({ data: [42] }, '2[42]'), undefined);
    assert.equal(translatePacket({}, '2'), undefined);
  });
  it('frames what the encoding says for payloads it cannot cut, as JSON sees them', () => {
    const data = ['event', new Date(0), '1-0'];
    const translated = translatePacket({ data }, `2${JSON.stringify(data)}`);
    assert.ok(translated);
    assert.deepEqual(JSON.parse(readFrame(translated.frame).text), { type: 'event', data: '1970-01-01T00:00:00.000Z', id: '1-0' });
    const own = ['event', { id: 'theirs', a: 1 }, '2-0'];
    assert.deepEqual(JSON.parse(readFrame(translatePacket({ data: own }, `2${JSON.stringify(own)}`)!.frame).text), { id: '2-0', a: 1 });
  });
  it('sends no event that wants an ack, carries binary or is on another namespace, even with its packet', () => {
    const data = ['message', { type: 'message', room: 'chat:1' }];
    for (const encoded of [`21${JSON.stringify(data)}`, `51-${JSON.stringify(['message', { _placeholder: true, num: 0 }])}`, `2/chat,${JSON.stringify(data)}`]) {
      assert.equal(translatePacket({ data }, encoded), undefined, encoded);
    }
  });
  it('ignores what is not an event (acks, binary events, garbage)', () => {
    assert.equal(translateEncoding('30["ok"]'), undefined);
    assert.equal(translateEncoding('2{"not":"an array"}'), undefined);
    assert.equal(translateEncoding('2[not json'), undefined);
    assert.equal(translateEncoding('2[42]'), undefined);
  });
});
