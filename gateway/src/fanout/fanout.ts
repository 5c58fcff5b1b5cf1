/**
 * Publishing to rooms, counting members and disconnecting users, across the fleet. This is the only code that
 * addresses adapter rooms for the HTTP API and the NATS bridge; with the Redis Streams adapter the same calls
 * reach every replica.
 */
import type { Server } from 'socket.io';
import type { GatewayMetrics, DeliverySource } from '../metrics/metrics.ts';
import { CloseCode, ErrorCode } from '../protocol/codes.ts';
import { roomName, scopedRoom } from '../rooms/names.ts';
import type { Transports } from '../session/session.ts';

export interface Fanout {
  /**
   * Emits `event` to the tenant's rooms (a connection in several of them gets it once); resolves with the
   * number of connections it reached.
   */
  publish(tenantId: string, rooms: string | readonly string[], event: string, payload: unknown, source: DeliverySource): Promise<number>;
  /** Connections in the tenant's room, fleet-wide. */
  members(tenantId: string, room: string): Promise<number>;
  /** Closes every connection of the user (4004); resolves with how many. */
  disconnectUser(tenantId: string, userId: string): Promise<number>;
}

export function createLocalFanout(io: Server, transports: Transports, metrics: GatewayMetrics): Fanout {
  const localMembers = (scoped: string) => io.of('/').adapter.rooms.get(scoped)?.size ?? 0;
  return {
    async publish(tenantId, rooms, event, payload, source) {
      const scoped = (typeof rooms === 'string' ? [rooms] : rooms).map((room) => scopedRoom(tenantId, room));
      const stop = metrics.publishDuration.startTimer({ source });
      const recipients = scoped.length === 1 ? localMembers(scoped[0]!) : io.of('/').adapter.sockets(new Set(scoped)).then((ids) => ids.size);
      io.to(scoped).emit(event, payload);
      stop();
      metrics.publishes.inc({ source });
      const reached = await recipients;
      metrics.deliveries.inc({ source }, reached);
      metrics.messagesOut.inc({ type: event });
      return reached;
    },
    async members(tenantId, room) {
      return localMembers(scopedRoom(tenantId, room));
    },
    async disconnectUser(tenantId, userId) {
      const ids = io.of('/').adapter.rooms.get(scopedRoom(tenantId, roomName('user', userId)));
      let count = 0;
      for (const id of [...(ids ?? [])]) {
        const socket = io.of('/').sockets.get(id);
        if (!socket) continue;
        transports.close(socket, CloseCode.disconnectedByService, ErrorCode.forbidden);
        count += 1;
      }
      return count;
    },
  };
}
