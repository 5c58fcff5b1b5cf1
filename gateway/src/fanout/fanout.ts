/**
 * Publishing to rooms, counting members and disconnecting users, across the fleet. This is the only code that
 * addresses adapter rooms for the HTTP API and the NATS bridge; with the Redis Streams adapter the same calls
 * reach every replica.
 */
import type { Server } from 'socket.io';
import type { DeliverySource, GatewayMetrics } from '../metrics/metrics.ts';
import { CloseCode, ErrorCode } from '../protocol/codes.ts';
import { closingNotice } from '../protocol/server-messages.ts';
import { roomName, scopedRoom } from '../rooms/names.ts';
import { jsonEventPacket } from '../transports/broadcast-packets.ts';

export interface Fanout {
  /**
   * Emits `event` to the tenant's rooms; a connection in several of them gets it once. `event` is one of the
   * gateway's own event names (never a caller's: socket.io's reserved names are not checked here), and `payload`
   * JSON data (parsed from a request or a message, or built from such data): on one replica it is encoded without
   * a search for binary (jsonEventPacket).
   */
  publish(tenantId: string, rooms: string | readonly string[], event: string, payload: unknown, source: DeliverySource): Promise<void>;
  /** Connections in any of the tenant's rooms, fleet-wide (replicas that do not answer in time count as 0). */
  members(tenantId: string, rooms: string | readonly string[]): Promise<number>;
  /** Closes every connection of the user on every replica (4004); resolves with how many there were. */
  disconnectUser(tenantId: string, userId: string): Promise<number>;
}

const MEMBERS_EVENT = 'rtgw:members';

/** A publish's `except`: no one. Shared, not built per publish: socket.io's adapters and ours only read it. */
const NO_ONE: Set<string> = new Set();

export function createFanout(io: Server, metrics: GatewayMetrics, options: { clustered: boolean }): Fanout {
  const nsp = io.of('/');
  const localMembers = (scoped: readonly string[]): number => {
    if (scoped.length === 1) return nsp.adapter.rooms.get(scoped[0]!)?.size ?? 0;
    const ids = new Set<string>();
    for (const room of scoped) for (const id of nsp.adapter.rooms.get(room) ?? []) ids.add(id);
    return ids.size;
  };
  const scope = (tenantId: string, rooms: string | readonly string[]) =>
    (typeof rooms === 'string' ? [rooms] : rooms).map((room) => scopedRoom(tenantId, room));

  if (options.clustered) {
    // Another replica asks how many of its connections are in these rooms.
    io.on(MEMBERS_EVENT, (rooms: unknown, answer: unknown) => {
      if (typeof answer !== 'function' || !Array.isArray(rooms)) return;
      (answer as (count: number) => void)(localMembers(rooms.filter((r): r is string => typeof r === 'string')));
    });
  }

  const members = async (scoped: readonly string[]): Promise<number> => {
    const local = localMembers(scoped);
    if (!options.clustered) return local;
    try {
      // One Pub/Sub round trip; the adapter waits at most 5 s for replicas that NUMSUB says exist.
      const answers: unknown[] = await io.serverSideEmitWithAck(MEMBERS_EVENT, scoped);
      return local + answers.reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
    } catch (error) {
      // Timed out: some replica did not answer (it may be dying). What we have is a lower bound.
      const partial = (error as { responses?: unknown[] }).responses ?? [];
      return local + partial.reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
    }
  };

  // What io.to(rooms).emit(event, payload) does, without io.to()'s BroadcastOperators, the packet marked as JSON
  // data (jsonEventPacket). With the Redis Streams adapter it reaches every replica.
  const broadcast = (scoped: readonly string[], event: string, payload: unknown): void =>
    nsp.adapter.broadcast(jsonEventPacket([event, payload]), { rooms: new Set(scoped), except: NO_ONE, flags: {} });

  return {
    async publish(tenantId, rooms, event, payload, source) {
      const scoped = scope(tenantId, rooms);
      const started = performance.now();
      broadcast(scoped, event, payload);
      metrics.publishBatch.published(source, event, (performance.now() - started) / 1000);
    },
    members: (tenantId, rooms) => members(scope(tenantId, rooms)),
    async disconnectUser(tenantId, userId) {
      const room = scopedRoom(tenantId, roomName('user', userId));
      const count = await members([room]);
      // Through the stream: every replica delivers the notice, then closes those connections (session.ts).
      broadcast([room], 'error', closingNotice(CloseCode.disconnectedByService, ErrorCode.disconnectedByService));
      return count;
    },
  };
}
