/**
 * The packet behind each broadcast, for the transports on bare WebSockets, and engine.io's frame of it made only
 * when a member needs it.
 *
 * socket.io's adapter encodes a broadcast once (`_encode`), frames that encoding for engine.io's WebSocket
 * transport whoever the members are, then hands every local member the same encoding and the same options object
 * (`writeToEngine(encodedPackets, options)`). Replacing `_encode` puts the packet on its options object: /ws builds
 * its JSON frame from the packet instead of parsing the encoding back, a closing notice is recognised without
 * parsing, and a broadcast that reaches no socket.io client is never framed for one.
 */
import * as wsModule from 'ws';

/** ws's frame builder (public on the module, untyped in @types/ws), the one the stock adapter's `_encode` uses. */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] } };

/**
 * A complete unmasked WebSocket text frame, header and payload, to be written as-is to every member. One buffer:
 * each member's write is then one plain write, not a writev of header and payload (which costs more per member
 * than the copy costs once).
 */
export function textFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
}

export interface BroadcastPacket {
  readonly data?: readonly unknown[];
}

/** An EVENT packet as socket.io's adapters take it (type 2, on the main namespace unless the adapter says). */
export interface EventPacket {
  type: 2;
  nsp: string;
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
 * search for binary (a walk of the whole payload, each broadcast) and is `2` and its JSON.
 */
export function jsonEventPacket(data: unknown[]): EventPacket {
  return { type: 2, nsp: '/', data, [JSON_DATA]: true };
}

interface AdapterInternals {
  encoder: { encode(packet: BroadcastPacket): (string | Buffer)[] };
  _encode(packet: BroadcastPacket & Partial<EventPacket>, options: BroadcastOptions): (string | Buffer)[];
}

/** The packet of the broadcast that `options` (writeToEngine's second argument) came with. */
export function broadcastPacket(options: BroadcastOptions | undefined): BroadcastPacket | undefined {
  return options?.[PACKET];
}

/**
 * Replaces the adapter's `_encode` (in-memory and Redis Streams alike: every local delivery goes through it). It
 * no longer frames the encoding for engine.io's WebSocket transport up front: socket.io clients on a WebSocket are
 * served by SocketIoWsSession, which frames a broadcast once when it has a member (`engineIoFrame`), and the few
 * left to engine.io (long-polling, or kept by engine.io) frame it themselves.
 */
export function keepBroadcastPackets(adapter: unknown): void {
  const internals = adapter as AdapterInternals;
  internals._encode = (packet, options) => {
    options[PACKET] = packet;
    // socket.io-parser's encodeAsString for an EVENT on the main namespace without an ack id, minus the search.
    if (packet[JSON_DATA] === true && packet.nsp === '/' && packet.id === undefined) return [`2${JSON.stringify(packet.data)}`];
    return internals.encoder.encode(packet);
  };
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
