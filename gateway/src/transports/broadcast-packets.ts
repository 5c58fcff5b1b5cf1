/**
 * The packet behind each broadcast, for the transports on bare WebSockets, and engine.io's frame of it made only
 * when a member needs it.
 *
 * socket.io's adapter encodes a broadcast once (`_encode`), frames that encoding for engine.io's WebSocket
 * transport whoever the members are, then hands every local member the same encoding and the same options object
 * (`writeToEngine(encodedPackets, options)`). With `_encode` replaced (encodeKeepingPacket, installed by
 * fanout/local-delivery.ts) the packet is on that options object: /ws builds its JSON frame from the packet instead
 * of parsing the encoding back, a closing notice is recognised without parsing, and a broadcast that reaches no
 * socket.io client is never framed for one. A packet of JSON data (jsonEventPacket: the HTTP API's and the NATS
 * bridge's) is encoded without socket.io-parser's search for binary.
 */

/**
 * A complete unmasked WebSocket text frame, header and payload, to be written as-is to every member (RFC 6455
 * 5.2: FIN and opcode 1, then the length in 7 bits, or 126 and 16 bits, or 127 and 64 bits). One buffer, the text
 * encoded into it after the header: each member's write is then one plain write, not a writev of header and
 * payload (which costs more per member than building the frame once), and there is no second copy to join them.
 */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, header);
  return frame;
}

/** A packet as the adapter encodes it (an EVENT's data is `[event, ...args]`). */
export interface BroadcastPacket {
  readonly type?: number;
  readonly nsp?: string;
  readonly id?: number;
  readonly data?: readonly unknown[];
  readonly [JSON_DATA]?: true;
}

/** An EVENT packet as socket.io's adapters take it (the adapter sets `nsp` to its namespace's name). */
export interface EventPacket {
  type: 2;
  nsp?: string;
  id?: number;
  data: unknown[];
  [JSON_DATA]?: true;
}

/** The options object of a broadcast, as writeToEngine receives it. */
export interface BroadcastOptions {
  [PACKET]?: BroadcastPacket;
}

const PACKET = Symbol('rtgw.broadcastPacket');
const JSON_DATA = Symbol('rtgw.jsonData');

/**
 * An EVENT packet whose data is JSON data: what JSON.parse returns, and objects, strings and numbers built from it
 * (the HTTP API's and the NATS bridge's envelopes). It holds no binary, so its encoding skips socket.io-parser's
 * search for binary (a walk of the whole payload, each broadcast) and is `2` and its JSON. The mark lives on the
 * object: on one replica it reaches `_encode`; through the Redis stream the packet is serialised, and each
 * replica, the publisher included, encodes the packet it reads back as socket.io-parser does.
 */
export function jsonEventPacket(data: unknown[]): EventPacket {
  return { type: 2, data, [JSON_DATA]: true };
}

/** The packet of the broadcast that `options` (writeToEngine's second argument) came with. */
export function broadcastPacket(options: BroadcastOptions | undefined): BroadcastPacket | undefined {
  return options?.[PACKET];
}

/** socket.io-parser's Encoder, as the adapter holds it. */
export interface PacketEncoder {
  readonly replacer?: unknown;
  encode(packet: unknown): (string | Buffer)[];
}

/**
 * The adapter's `_encode` as fanout/local-delivery.ts replaces it (in-memory and Redis Streams alike: every local
 * delivery goes through it). The packet goes on the options every member receives. Unlike the stock `_encode`,
 * it does not frame the encoding for engine.io's WebSocket transport up front: socket.io clients on a WebSocket
 * are served by SocketIoWsSession, which frames a broadcast once when it has a member (`engineIoFrame`), and the
 * few left to engine.io (long-polling, or kept by engine.io) frame it themselves.
 */
export function encodeKeepingPacket(encoder: PacketEncoder, packet: BroadcastPacket, options: BroadcastOptions): (string | Buffer)[] {
  options[PACKET] = packet;
  // socket.io-parser's encodeAsString for an EVENT on the main namespace without an ack id (and the default
  // encoder: no JSON replacer), minus the search.
  if (packet[JSON_DATA] === true && packet.type === 2 && packet.nsp === '/' && packet.id === undefined && encoder.replacer === undefined) {
    return [`2${JSON.stringify(packet.data)}`];
  }
  return encoder.encode(packet);
}

/** One-entry cache: a broadcast hands the same encoding to every member, so it is framed once. */
let lastEncoded: string | undefined;
let lastFrame: readonly Buffer[] = [];

/** A broadcast's encoding as engine.io's WebSocket transport frames it ("4" is Engine.IO's message packet type). */
export function engineIoFrame(encoded: string): readonly Buffer[] {
  if (encoded !== lastEncoded) {
    lastFrame = [textFrame(`4${encoded}`)];
    lastEncoded = encoded;
  }
  return lastFrame;
}
