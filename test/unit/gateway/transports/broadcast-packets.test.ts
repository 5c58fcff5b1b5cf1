/**
 * The adapter's `_encode` replaced (encodeKeepingPacket, installed by deliverLocally), against socket.io's real
 * in-memory adapter and encoder: each member is handed the packet with the encoding, and engine.io's frame is the
 * adapter's own, made on demand.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Adapter } from 'socket.io-adapter';
import { Encoder } from 'socket.io-parser';
import * as wsModule from 'ws';
import { broadcastPacket, engineIoFrame, jsonEventPacket, textFrame, type BroadcastOptions } from '../../../../gateway/src/transports/broadcast-packets.ts';
import { deliverLocally } from '../../../../gateway/src/fanout/local-delivery.ts';

interface Written {
  encodedPackets: (string | Buffer)[];
  options: BroadcastOptions;
}

/** An adapter with members a and b in room r; returns what each member's writeToEngine was given. */
function broadcastOnce(data: unknown[], keep: boolean, packet: object = { type: 2, data, nsp: '/' }, encoder: { encode(packet: unknown): unknown } = new Encoder(), namespace = '/'): Written[] {
  const written: Written[] = [];
  const member = (id: string) => ({ id, client: { writeToEngine: (encodedPackets: (string | Buffer)[], options: BroadcastOptions) => written.push({ encodedPackets, options }) } });
  const sockets = new Map([['a', member('a')], ['b', member('b')]]);
  const adapter = new Adapter({ sockets, name: namespace, server: { encoder } } as never);
  adapter.addAll('a', new Set(['a', 'r']));
  adapter.addAll('b', new Set(['b', 'r']));
  if (keep) deliverLocally(adapter, () => {});
  adapter.broadcast(packet as never, { rooms: new Set(['r']), except: new Set(), flags: {} });
  return written;
}

describe('encodeKeepingPacket (the adapter\'s _encode under deliverLocally)', () => {
  const data = ['event', { type: 'event', message_ar: 'إشعار', data: { n: 1 } }, '7-0'];

  it('hands every member the packet with the same encoding and options', () => {
    const [a, b] = broadcastOnce(data, true);
    assert.ok(a && b);
    assert.equal(a.options, b.options);
    assert.deepEqual(broadcastPacket(a.options)?.data, data);
    assert.deepEqual(a.encodedPackets, [`2${JSON.stringify(data)}`]);
    assert.deepEqual(a.encodedPackets, broadcastOnce(data, false)[0]!.encodedPackets);
  });

  it('frames an encoding as the stock adapter pre-frames it for engine.io, once per broadcast', () => {
    const [ours] = broadcastOnce(data, true);
    const [stock] = broadcastOnce(data, false);
    const encoded = ours!.encodedPackets[0] as string;
    const frame = engineIoFrame(encoded);
    assert.deepEqual(Buffer.concat(frame), Buffer.concat((stock!.options as { wsPreEncodedFrame: Buffer[] }).wsPreEncodedFrame));
    assert.equal(frame.length, 1, 'one buffer: one write per member');
    assert.equal(engineIoFrame(encoded), frame, 'the same frame for every member');
    assert.equal((ours!.options as { wsPreEncodedFrame?: unknown }).wsPreEncodedFrame, undefined, 'not framed up front');
  });

  it('leaves a broadcast without the packet when it is not installed', () => {
    const [stock] = broadcastOnce(data, false);
    assert.equal(broadcastPacket(stock!.options), undefined);
    assert.equal(broadcastPacket(undefined), undefined);
  });

  it('encodes a JSON-data packet (jsonEventPacket) as socket.io-parser does, without its search for binary', () => {
    const payloads: unknown[][] = [
      data,
      ['event', { nested: [1, 2.5, null, true, { deep: 'x' }], text: 'a "quoted" \\ line\n', empty: {} }],
      ['message', 'a string payload'],
      ['notification', null],
    ];
    // socket.io-parser's encoder, counting its calls: a marked packet never reaches it.
    const stock = new Encoder();
    let encoderCalls = 0;
    const counting = { encode: (packet: unknown) => ((encoderCalls += 1), stock.encode(packet as never)) };
    for (const payload of payloads) {
      const [ours] = broadcastOnce(payload, true, jsonEventPacket(payload), counting);
      assert.deepEqual(ours!.encodedPackets, stock.encode({ type: 2, nsp: '/', data: payload }));
      assert.equal(broadcastPacket(ours!.options)?.data, payload);
    }
    assert.equal(encoderCalls, 0);
    broadcastOnce(['event', {}], true, { type: 2, data: ['event', {}] }, counting);
    assert.equal(encoderCalls, 1, 'an unmarked packet is the encoder\'s');
  });

  it('leaves a marked packet to an encoder with a JSON replacer', () => {
    const withReplacer = new Encoder((key, value) => (key === 'secret' ? undefined : value));
    const payload = ['event', { secret: 's', n: 1 }];
    const [ours] = broadcastOnce(payload, true, jsonEventPacket(payload), withReplacer);
    assert.deepEqual(ours!.encodedPackets, ['2["event",{"n":1}]']);
  });

  it('leaves a packet with binary, or not marked as JSON data, to socket.io-parser', () => {
    const binary = ['event', { file: Buffer.from('bytes') }];
    const [unmarked] = broadcastOnce(binary, true);
    assert.equal(unmarked!.encodedPackets.length, 2, 'a binary event: the placeholder packet and the attachment');
    assert.match(unmarked!.encodedPackets[0] as string, /^51-/);
    // The mark only skips the search on the main namespace without an ack id; elsewhere the encoder decides.
    const withAck = { ...jsonEventPacket(['event', { n: 1 }]), id: 7 };
    assert.deepEqual(broadcastOnce(withAck.data, true, withAck)[0]!.encodedPackets, new Encoder().encode({ type: 2, nsp: '/', id: 7, data: withAck.data }));
    const elsewhere = jsonEventPacket(['event', { n: 1 }]);
    assert.deepEqual(broadcastOnce(elsewhere.data, true, elsewhere, new Encoder(), '/admin')[0]!.encodedPackets, ['2/admin,["event",{"n":1}]']);
  });
});

describe('textFrame', () => {
  // ws's own frame builder (public on the module, untyped in @types/ws): what ws.send writes for a text message.
  const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] } };
  const wsFrame = (text: string) => Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));

  it('is byte for byte the frame ws builds, at each length encoding\'s edges, for one- and two-byte strings', () => {
    for (const bytes of [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]) {
      const ascii = 'a'.repeat(bytes);
      assert.deepEqual(textFrame(ascii), wsFrame(ascii), `${bytes} bytes`);
    }
    // Arabic: two bytes of UTF-8 a character, so the length in bytes is not the string's length.
    for (const text of ['إشعار', 'ت'.repeat(63), 'ت'.repeat(64), 'ت'.repeat(40_000), '{"message_ar":"تم تحديث بيانات الحقل","n":1}']) {
      assert.deepEqual(textFrame(text), wsFrame(text), `${text.length} characters`);
    }
  });
});
