/**
 * The room policy: a pure decision from (identity, room, action). Every client action on a room asks it;
 * nothing else decides who may do what.
 */
import type { Identity } from '../auth/identity.ts';
import { ErrorCode, type ErrorCodeValue } from '../protocol/codes.ts';
import { parseRoom, type Room } from './names.ts';

/** subscribe/join: receive the room's messages. publish: client `broadcast`. signal: `typing` and `read`. */
export type RoomAction = 'subscribe' | 'publish' | 'signal';

export type Decision =
  | { readonly allow: true; readonly room: Room }
  | { readonly allow: false; readonly code: ErrorCodeValue; readonly reason: string };

export interface RoomPolicyOptions {
  /** Role claims that let a client `broadcast` beyond chat rooms (BROADCAST_ROLES). */
  readonly broadcastRoles: readonly string[];
}

const deny = (code: ErrorCodeValue, reason: string): Decision => ({ allow: false, code, reason });

/** Rooms clients can only read: the platform writes to them (HTTP API, NATS). */
const READ_ONLY: ReadonlySet<string> = new Set(['alerts', 'weather', 'global']);

function mayRead(identity: Identity, room: Room): Decision {
  switch (room.type) {
    case 'user':
      return room.id === identity.userId ? { allow: true, room } : deny(ErrorCode.forbidden, 'a user room is only for its own user');
    case 'tenant':
      return room.id === identity.tenantId ? { allow: true, room } : deny(ErrorCode.forbidden, 'a tenant room is only for its own tenant');
    case 'org':
      return identity.orgs.includes(room.id!) ? { allow: true, room } : deny(ErrorCode.forbidden, 'not a member of this organisation');
    case 'field':
    case 'farm':
    case 'chat':
    case 'alerts':
    case 'weather':
    case 'global':
      return { allow: true, room };
  }
}

export function decide(identity: Identity, roomName: string, action: RoomAction, options: RoomPolicyOptions): Decision {
  const room = parseRoom(roomName);
  if (!room) return deny(ErrorCode.invalidRoom, `"${roomName.slice(0, 64)}" is not a valid room name`);
  const read = mayRead(identity, room);
  if (!read.allow || action === 'subscribe') return read;
  if (READ_ONLY.has(room.type)) return deny(ErrorCode.forbidden, `${room.type} is read-only for clients`);
  if (action === 'signal') {
    return room.type === 'chat' ? read : deny(ErrorCode.forbidden, 'typing and read receipts are for chat rooms');
  }
  // publish
  if (room.type === 'chat') return read;
  if (room.type === 'user') return deny(ErrorCode.forbidden, 'clients cannot broadcast to user rooms; services use the HTTP API');
  const privileged = identity.roles.some((role) => options.broadcastRoles.includes(role));
  return privileged ? read : deny(ErrorCode.forbidden, 'broadcasting to this room needs a role that allows it');
}
