/**
 * The packet behind each broadcast, for the transports on bare WebSockets, and engine.io's pre-framed bytes made
 * only when a member reads them.
 *
 * socket.io's adapter encodes a broadcast once (`_encode`), frames that encoding for engine.io's WebSocket
 * transport whoever the members are, then hands every local member the same encoding and the same options object
 * (`writeToEngine(encodedPackets, options)`). Replacing `_encode` puts the packet on its options object: /ws builds
 * its JSON frame from the packet instead of parsing the encoding back, a closing notice is recognised without
 * parsing, and a broadcast that reaches no socket.io client never pays for engine.io's frame.
 */
import * as wsModule from 'ws';

/** ws's frame builder (public on the module, untyped in @types/ws); the adapter pre-frames broadcasts with it too. */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] } };

/** A complete unmasked WebSocket text frame, header and payload, to be written as-is to every member. */
export function textFrame(text: string): Buffer[] {
  return Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
}

export interface BroadcastPacket {
  readonly data?: readonly unknown[];
}

/** The options object of a broadcast, as writeToEngine receives it. */
export interface BroadcastOptions {
  wsPreEncodedFrame?: Buffer[];
  [PACKET]?: BroadcastPacket;
}

const PACKET = Symbol('rtgw.broadcastPacket');

interface AdapterInternals {
  encoder: { encode(packet: BroadcastPacket): (string | Buffer)[] };
  _encode(packet: BroadcastPacket, options: BroadcastOptions): (string | Buffer)[];
}

/** The packet of the broadcast that `options` (writeToEngine's second argument) came with. */
export function broadcastPacket(options: BroadcastOptions | undefined): BroadcastPacket | undefined {
  return options?.[PACKET];
}

/** Replaces the adapter's `_encode` (in-memory and Redis Streams alike: every local delivery goes through it). */
export function keepBroadcastPackets(adapter: unknown): void {
  const internals = adapter as AdapterInternals;
  internals._encode = (packet, options) => {
    const encodedPackets = internals.encoder.encode(packet);
    const [encoded] = encodedPackets;
    if (encodedPackets.length === 1 && typeof encoded === 'string') {
      let frame: Buffer[] | undefined;
      // What the adapter would have made up front; "4" is Engine.IO's message packet type.
      Object.defineProperty(options, 'wsPreEncodedFrame', {
        configurable: true,
        enumerable: true,
        get: () => (frame ??= textFrame(`4${encoded}`)),
      });
    }
    options[PACKET] = packet;
    return encodedPackets;
  };
}
