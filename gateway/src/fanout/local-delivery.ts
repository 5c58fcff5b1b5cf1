/**
 * How a broadcast reaches this replica's members. socket.io's adapter (the in-memory one, MemorySessionStore, the
 * Redis Streams adapter: each broadcasts through the same two instance methods) encodes a broadcast once
 * (`_encode`) and then hands every local member the encoding (`apply`). Both are replaced here, in one place:
 *
 * - `_encode` puts the packet on the options every member receives, and encodes a packet of JSON data without
 *   socket.io-parser's search for binary (transports/broadcast-packets.ts);
 * - `apply` walks a single target room's members without the Set the adapter builds for each broadcast so that a
 *   connection in two of the target rooms gets it once (at thousands of members, a measurable share of a
 *   broadcast's CPU); several rooms, or everyone, keep the adapter's own walk;
 * - and it counts each broadcast's local recipients, telling `delivered` once per broadcast that reached any.
 *
 * The adapter also calls `apply` for fetchSockets, socketsJoin and the like: those were not just encoded, so they
 * are not counted.
 */
import type { BroadcastOptions as AdapterBroadcastOptions } from 'socket.io-adapter';
import { encodeKeepingPacket, type BroadcastOptions, type BroadcastPacket, type PacketEncoder } from '../transports/broadcast-packets.ts';

interface AdapterInternals {
  rooms: Map<string, Set<string>>;
  nsp: { sockets: Map<string, unknown> };
  encoder: PacketEncoder;
  _encode(packet: BroadcastPacket, options: BroadcastOptions): (string | Buffer)[];
  apply(options: AdapterBroadcastOptions, callback: (socket: unknown) => void): void;
  computeExceptSids(except: Set<string> | undefined): Set<string>;
}

/** A broadcast's data (`[event, payload, ...]`) reached `count` connections on this replica. */
export type Delivered = (data: readonly unknown[], count: number) => void;

export function deliverLocally(adapter: unknown, delivered: Delivered): void {
  const internals = adapter as AdapterInternals;
  const stockApply = internals.apply.bind(internals);
  // The packet just encoded: the adapter calls apply right after _encode, synchronously, for the same broadcast.
  let justEncoded: BroadcastPacket | undefined;
  internals._encode = (packet, options) => {
    // Set once the encoding succeeded: a broadcast that throws here leaves nothing for a later apply to count.
    const encoding = encodeKeepingPacket(internals.encoder, packet, options);
    justEncoded = packet;
    return encoding;
  };
  internals.apply = (options, callback) => {
    const packet = justEncoded;
    justEncoded = undefined;
    let count = 0;
    if (options.rooms.size === 1) {
      const [room] = options.rooms;
      const members = internals.rooms.get(room!);
      if (members === undefined) return;
      // A publish excludes no one: no Set of excluded ids to build.
      const except = options.except === undefined || options.except.size === 0 ? undefined : internals.computeExceptSids(options.except);
      const { sockets } = internals.nsp;
      for (const id of members) {
        if (except !== undefined && except.has(id)) continue;
        const socket = sockets.get(id);
        if (socket === undefined) continue;
        callback(socket);
        count += 1;
      }
    } else if (packet === undefined) {
      return stockApply(options, callback);
    } else {
      stockApply(options, (socket) => {
        count += 1;
        callback(socket);
      });
    }
    if (packet?.data !== undefined && count > 0) delivered(packet.data, count);
  };
}
