/**
 * One client session, whatever its transport: authentication middleware, automatic rooms, the nine client
 * messages, token expiry, limits. Raw /ws connections reach this code as socket.io sockets (see
 * transports/ws-json.ts), so there is exactly one implementation of the protocol.
 */
import type { Server, Socket } from 'socket.io';
import type { Identity, TokenVerifier } from '../auth/index.ts';
import { AuthError } from '../auth/index.ts';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { ConnectionLimiter } from '../limits/connection-limits.ts';
import { MessageRateLimiter } from '../limits/rate-limit.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import type { PresenceStore } from '../presence/presence.ts';
import { CloseCode, ErrorCode, type CloseCodeValue, type ErrorCodeValue } from '../protocol/codes.ts';
import { CLIENT_MESSAGE_TYPES, parseClientMessage, type ClientMessage } from '../protocol/client-messages.ts';
import {
  closingNotice, errorReply, eventEnvelope, now, pongReply, roomMessage, roomReply, subscribedReply, unsubscribedReply,
} from '../protocol/server-messages.ts';
import { decide } from '../rooms/policy.ts';
import { parseRoom, roomName, scopedRoom, unscopeRoom } from '../rooms/names.ts';
import { ExpiryWatch } from './expiry.ts';
import { authenticateHandshake } from './handshake.ts';

/** What a socket carries for its lifetime (and across connection-state recovery). */
export interface SessionData {
  identity: Identity;
  ip: string;
  connectedAt: number;
}

export type GatewaySocket = Socket<Record<string, never>, Record<string, (...args: any[]) => void>, Record<string, never>, SessionData>;

export interface Transports {
  /** 'ws' for raw JSON WebSocket connections, 'socketio' otherwise. */
  transportOf(socket: Socket): 'ws' | 'socketio';
  /**
   * Closes the connection now: a close frame with the code on /ws; on socket.io a server disconnect, or for
   * 1012 (draining) a transport close so the stock client reconnects by itself and recovers its session.
   */
  closeNow(socket: Socket, closeCode: CloseCodeValue): void;
  /** The client's address (X-Forwarded-For only when trusted). */
  clientIp(socket: Socket): string;
}

/**
 * Closing a connection is a message: an `error` notice with `close_code`, delivered like any other event, after
 * which the connection closes with that code. The same notice emitted to a room through the adapter closes
 * those connections on every replica, in stream order (DELETE /v1/users/{id}/connections).
 */
export function closeConnection(io: Server, socket: Socket, closeCode: CloseCodeValue, errorCode: ErrorCodeValue, reconnectAfterMs?: number): void {
  io.local.to(socket.id).emit('error', closingNotice(closeCode, errorCode, reconnectAfterMs));
}

export interface SessionDeps {
  readonly config: GatewayConfig;
  readonly verifier: TokenVerifier;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly presence: PresenceStore;
  readonly limiter: ConnectionLimiter;
  readonly transports: Transports;
  /**
   * With the Redis Streams adapter: the newest stream offset this replica has read. The welcome carries it, so a
   * client has a recovery point before its first broadcast without writing the welcome to the stream.
   */
  readonly recoveryOffset?: () => string | undefined;
  readonly clock?: () => number;
}

/** Seconds before expiry when the client is told to send a fresh token. */
const TOKEN_EXPIRY_WARNING_SECONDS = 30;
const EXPIRY_SWEEP_MS = 1000;

type Ack = (reply?: unknown) => void;

class ConnectionRefused extends Error {
  readonly data: { code: CloseCodeValue; reason: string };
  constructor(code: CloseCodeValue, reason: string) {
    super(reason);
    this.data = { code, reason };
  }
}

export function registerSessions(io: Server, deps: SessionDeps): void {
  const { config, metrics, logger, transports } = deps;
  const clock = deps.clock ?? Date.now;
  const policy = { broadcastRoles: config.broadcastRoles };
  const expiries = new ExpiryWatch<GatewaySocket>(TOKEN_EXPIRY_WARNING_SECONDS);
  const sweep = setInterval(() => {
    const { warn, expire } = expiries.due(clock());
    for (const socket of warn) {
      const expiresAt = socket.data.identity.expiresAt;
      if (expiresAt === undefined) continue;
      socket.emit('token_expiring', { type: 'token_expiring', expires_at: new Date(expiresAt * 1000).toISOString(), timestamp: now() });
    }
    for (const socket of expire) {
      logger.info({ event: 'auth', outcome: 'expired', user_id: socket.data.identity.userId, tenant_id: socket.data.identity.tenantId }, 'token expired: disconnecting');
      closeConnection(io, socket, CloseCode.authenticationRequired, ErrorCode.invalidToken);
    }
  }, EXPIRY_SWEEP_MS);
  sweep.unref();

  io.use(async (socket, next) => {
    const ip = transports.clientIp(socket);
    const transport = transports.transportOf(socket);
    try {
      const result = await authenticateHandshake(
        { headers: socket.handshake.headers, url: socket.handshake.url, handshakeAuth: socket.handshake.auth },
        deps.verifier,
      );
      if (!result.ok) {
        metrics.authFailures.inc({ reason: result.reason });
        logger.warn({ event: 'auth', outcome: 'refused', ip, transport, user_id: result.userId, reason: result.reason }, 'connection refused');
        next(new ConnectionRefused(result.closeCode, result.message));
        return;
      }
      const { identity } = result;
      if (result.deprecatedToken) {
        metrics.deprecatedTokenUse.inc();
        logger.warn({ event: 'auth', ip, user_id: identity.userId }, 'token passed in the ?token= query parameter (deprecated): send it in the Authorization header');
      }
      const admission = deps.limiter.admit({ ip, tenantId: identity.tenantId, userId: identity.userId });
      if (!admission.ok) {
        metrics.rateLimited.inc({ scope: admission.scope });
        logger.warn({ event: 'auth', outcome: 'refused', ip, user_id: identity.userId, tenant_id: identity.tenantId, reason: `too_many_connections_per_${admission.scope}` }, 'connection refused');
        next(new ConnectionRefused(CloseCode.tooManyConnections, `Too Many Connections (per ${admission.scope})`));
        return;
      }
      // A recovered session carries its previous identity: only the same user of the same tenant may take it.
      const previous = socket.recovered ? socket.data.identity : undefined;
      if (previous && (previous.userId !== identity.userId || previous.tenantId !== identity.tenantId)) {
        admission.release();
        metrics.authFailures.inc({ reason: 'session_identity_mismatch' });
        logger.warn({ event: 'auth', outcome: 'refused', ip, user_id: identity.userId, reason: 'session_identity_mismatch' }, 'connection refused');
        next(new ConnectionRefused(CloseCode.tenantMismatch, 'Session Belongs To Another Identity'));
        return;
      }
      // Released on whichever comes first; a socket that never finishes connecting only gets the conn close.
      socket.once('disconnect', admission.release);
      socket.conn.once('close', admission.release);
      metrics.authSuccesses.inc({ source: result.tokenSource });
      logger.info({ event: 'auth', outcome: 'accepted', ip, transport, user_id: identity.userId, tenant_id: identity.tenantId, via: result.tokenSource }, 'connection authenticated');
      forgetToken(socket);
      socket.data.identity = identity;
      socket.data.ip = ip;
      socket.data.connectedAt ??= clock();
      next();
    } catch (error) {
      logger.error({ err: error, ip }, 'authentication failed unexpectedly');
      next(new ConnectionRefused(CloseCode.authenticationRequired, 'Authentication Required'));
    }
  });

  io.on('connection', (socket: GatewaySocket) => {
    const transport = transports.transportOf(socket);
    const identity = () => socket.data.identity;
    const { tenantId, userId } = identity();
    const rateLimiter = new MessageRateLimiter(config.limits.messagesPerSecond, config.limits.messageBurst, clock());

    metrics.connects.inc({ transport });
    // socket.io-client sends pid and offset when it reconnects; raw /ws clients send session_id and last_event_id.
    const auth = socket.handshake.auth as { pid?: unknown } | undefined;
    if (typeof auth?.pid === 'string') metrics.sessionRecoveries.inc({ transport, result: socket.recovered ? 'recovered' : 'failed' });
    void socket.join([scopedRoom(tenantId, roomName('tenant', tenantId)), scopedRoom(tenantId, roomName('user', userId))]);
    void deps.presence.connected(tenantId, userId, socket.id).catch((error: unknown) => logger.error({ err: error }, 'presence update failed'));

    const close = (closeCode: CloseCodeValue, errorCode: ErrorCodeValue) => closeConnection(io, socket, closeCode, errorCode);
    socket.onAnyOutgoing((event: string, payload: unknown) => {
      const closeCode = event === 'error' ? (payload as { close_code?: CloseCodeValue } | null)?.close_code : undefined;
      // The notice is written right after this listener returns; close once it is on the wire.
      if (closeCode !== undefined) process.nextTick(() => transports.closeNow(socket, closeCode));
    });

    expiries.set(socket, identity().expiresAt);

    const visibleRooms = () => {
      const rooms: string[] = [];
      for (const scoped of socket.rooms) {
        const unscoped = unscopeRoom(scoped);
        if (unscoped && unscoped.tenantId === tenantId) rooms.push(unscoped.room);
      }
      return rooms;
    };
    const automaticRooms = new Set([roomName('tenant', tenantId), roomName('user', userId)]);

    const welcome = {
      type: 'connected',
      status: 'connected',
      client_id: socket.id,
      // Present when connection-state recovery is on: raw /ws clients send it back (with the last event id) to resume.
      ...(sessionIdOf(socket) ? { session_id: sessionIdOf(socket) } : {}),
      user: { user_id: userId, roles: identity().roles },
      tenant: { tenant_id: tenantId },
      rooms: visibleRooms(),
      recovered: socket.recovered,
      timestamp: now(),
    };
    const offset = deps.recoveryOffset?.();
    if (offset !== undefined) io.local.to(socket.id).emit('connected', welcome, offset);
    else socket.emit('connected', welcome);

    const sendError = (ack: Ack | undefined, code: ErrorCodeValue, message: string, requestType?: string) => {
      metrics.errorReplies.inc({ code });
      const reply = errorReply(code, message, requestType);
      if (ack) ack(reply);
      else socket.emit('error', reply);
    };

    const join = (room: string): { ok: true } | { ok: false; code: ErrorCodeValue; reason: string } => {
      const decision = decide(identity(), room, 'subscribe', policy);
      if (!decision.allow) return { ok: false, code: decision.code, reason: decision.reason };
      const scoped = scopedRoom(tenantId, room);
      // socket.rooms holds the socket's own id room too.
      if (!socket.rooms.has(scoped) && socket.rooms.size - 1 >= config.limits.maxRoomsPerConnection) {
        return { ok: false, code: ErrorCode.tooManyRooms, reason: `at most ${config.limits.maxRoomsPerConnection} rooms per connection` };
      }
      const joined = !socket.rooms.has(scoped);
      void socket.join(scoped);
      if (joined) announcePresence(room, 'join');
      return { ok: true };
    };

    const leave = (room: string): { ok: true } | { ok: false; code: ErrorCodeValue; reason: string } => {
      if (automaticRooms.has(room)) return { ok: false, code: ErrorCode.forbidden, reason: 'automatic rooms cannot be left' };
      const scoped = scopedRoom(tenantId, room);
      if (socket.rooms.has(scoped)) announcePresence(room, 'leave');
      void socket.leave(scoped);
      return { ok: true };
    };

    // Presence join/leave events go to the rooms that enable them (chat rooms), the tenant's own only.
    const announcePresence = (room: string, event: 'join' | 'leave') => {
      if (parseRoom(room)?.type !== 'chat') return;
      socket.to(scopedRoom(tenantId, room)).emit('presence', { type: 'presence', event, room, user_id: userId, client_id: socket.id, timestamp: now() });
    };

    const memberOf = (room: string) => socket.rooms.has(scopedRoom(tenantId, room));

    const handle = async (message: ClientMessage, ack: Ack | undefined): Promise<void> => {
      const reply = (payload?: unknown) => ack?.(payload);
      switch (message.type) {
        case 'ping':
          reply(pongReply());
          return;
        case 'subscribe': {
          const joined: string[] = [];
          const failed: { topic: string; code: ErrorCodeValue; reason: string }[] = [];
          for (const topic of message.topics) {
            const result = join(topic);
            if (result.ok) joined.push(topic);
            else failed.push({ topic, code: result.code, reason: result.reason });
          }
          const payload = subscribedReply(joined, failed);
          if (ack) ack(payload);
          else socket.emit('subscribed', payload);
          return;
        }
        case 'unsubscribe': {
          const left: string[] = [];
          for (const topic of message.topics) if (leave(topic).ok) left.push(topic);
          reply(unsubscribedReply(left));
          return;
        }
        case 'join_room': {
          const result = join(message.room);
          if (!result.ok) return sendError(ack, result.code, result.reason, message.type);
          reply(roomReply('room_joined', message.room));
          return;
        }
        case 'leave_room': {
          const result = leave(message.room);
          if (!result.ok) return sendError(ack, result.code, result.reason, message.type);
          reply(roomReply('room_left', message.room));
          return;
        }
        case 'broadcast': {
          const decision = decide(identity(), message.room, 'publish', policy);
          if (!decision.allow) return sendError(ack, decision.code, decision.reason, message.type);
          if (!memberOf(message.room)) return sendError(ack, ErrorCode.notInRoom, 'join the room before broadcasting to it', message.type);
          const size = Buffer.byteLength(JSON.stringify(message.message));
          if (size > config.limits.maxMessageBytes) {
            return sendError(ack, ErrorCode.messageTooLarge, `"message" is ${size} bytes; the limit is ${config.limits.maxMessageBytes}`, message.type);
          }
          socket.to(scopedRoom(tenantId, message.room)).emit('message', roomMessage(message.room, userId, message.message));
          metrics.publishes.inc({ source: 'client' });
          metrics.messagesOut.inc({ type: 'message' });
          reply();
          return;
        }
        case 'typing':
        case 'read': {
          const decision = decide(identity(), message.room, 'signal', policy);
          if (!decision.allow) return sendError(ack, decision.code, decision.reason, message.type);
          if (!memberOf(message.room)) return sendError(ack, ErrorCode.notInRoom, 'join the room first', message.type);
          const data = message.type === 'typing'
            ? { room: message.room, user_id: userId, typing: message.typing }
            : { room: message.room, user_id: userId, message_id: message.message_id };
          const eventType = message.type === 'typing' ? 'chat.typing' : 'chat.read';
          socket.to(scopedRoom(tenantId, message.room)).emit('event', eventEnvelope({ eventType, data }));
          metrics.publishes.inc({ source: 'client' });
          metrics.messagesOut.inc({ type: eventType });
          reply();
          return;
        }
        case 'refresh': {
          let fresh: Identity;
          try {
            fresh = await deps.verifier.verify(message.token);
          } catch (error) {
            const reason = error instanceof AuthError ? error.reason : 'malformed_token';
            metrics.authFailures.inc({ reason });
            logger.warn({ event: 'auth', outcome: 'refresh_refused', ip: socket.data.ip, user_id: userId, tenant_id: tenantId, reason }, 'token refresh refused');
            return sendError(ack, ErrorCode.invalidToken, `the new token was refused: ${reason}`, message.type);
          }
          if (fresh.userId !== userId || fresh.tenantId !== tenantId) {
            logger.warn({ event: 'auth', outcome: 'refresh_refused', ip: socket.data.ip, user_id: userId, tenant_id: tenantId, reason: 'identity_changed' }, 'token refresh refused');
            return sendError(ack, ErrorCode.invalidToken, 'the new token is for another user or tenant', message.type);
          }
          socket.data.identity = fresh;
          expiries.set(socket, fresh.expiresAt);
          logger.info({ event: 'auth', outcome: 'refreshed', ip: socket.data.ip, user_id: userId, tenant_id: tenantId }, 'token refreshed');
          reply({ type: 'token_refreshed', expires_at: fresh.expiresAt === undefined ? null : new Date(fresh.expiresAt * 1000).toISOString(), timestamp: now() });
          return;
        }
      }
    };

    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = typeof args.at(-1) === 'function' ? (args.pop() as Ack) : undefined;
      const type = typeof event === 'string' && CLIENT_MESSAGE_TYPES.has(event) ? event : 'unknown';
      metrics.messagesIn.inc({ type });
      const verdict = rateLimiter.check(clock());
      if (!verdict.allowed) {
        metrics.rateLimited.inc({ scope: 'message' });
        if (verdict.close) {
          logger.warn({ event: 'rate_limit', user_id: userId, tenant_id: tenantId, ip: socket.data.ip }, 'closing a connection that kept exceeding the message rate limit');
          close(CloseCode.rateLimited, ErrorCode.rateLimited);
          return;
        }
        sendError(ack, ErrorCode.rateLimited, `over ${config.limits.messagesPerSecond} messages per second`, type);
        return;
      }
      const parsed = parseClientMessage(event, args[0]);
      if (!parsed.ok) {
        sendError(ack, parsed.code, parsed.error, typeof event === 'string' ? event.slice(0, 64) : undefined);
        return;
      }
      handle(parsed.message, ack).catch((error: unknown) => {
        logger.error({ err: error, user_id: userId, type: parsed.message.type }, 'client message handler failed');
        sendError(ack, ErrorCode.internalError, 'internal error', parsed.message.type);
      });
    });

    socket.on('disconnecting', () => {
      for (const room of visibleRooms()) announcePresence(room, 'leave');
    });

    socket.on('disconnect', (reason) => {
      expiries.delete(socket);
      metrics.disconnects.inc({ transport, reason: disconnectReasonLabel(reason) });
      void deps.presence.disconnected(tenantId, userId, socket.id).catch((error: unknown) => logger.error({ err: error }, 'presence update failed'));
    });
  });
}

/** The token has done its job: it is not kept in memory for the connection's lifetime, wherever it came from. */
function forgetToken(socket: Socket): void {
  const { handshake } = socket;
  delete handshake.headers.authorization;
  if (typeof handshake.auth === 'object' && handshake.auth !== null) delete (handshake.auth as Record<string, unknown>)['token'];
  if ('token' in handshake.query) {
    delete handshake.query['token'];
    const url = new URL(handshake.url, 'http://gateway.invalid');
    url.searchParams.delete('token');
    handshake.url = `${url.pathname}${url.search}`;
  }
}

/** socket.io's private session id (set when connection-state recovery is on); raw /ws clients resume with it. */
function sessionIdOf(socket: Socket): string | undefined {
  return (socket as unknown as { pid?: string }).pid;
}

/** socket.io's disconnect reasons are a closed set; anything else is folded into "other" to bound the label. */
function disconnectReasonLabel(reason: string): string {
  const known = ['transport close', 'transport error', 'ping timeout', 'parse error', 'forced close', 'server namespace disconnect', 'client namespace disconnect', 'server shutting down', 'forced server close'];
  return known.includes(reason) ? reason.replaceAll(' ', '_') : 'other';
}
