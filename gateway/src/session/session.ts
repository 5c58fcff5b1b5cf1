/**
 * One client session, whatever its transport: admission (authentication, limits, audit), automatic rooms, the
 * nine client messages, token expiry, presence. Transports (transports/socketio.ts, transports/ws-json.ts)
 * present each client as a `ClientConnection` and call in here, so there is exactly one implementation of the
 * protocol; neither transport's framing reaches this file.
 */
import type { Server } from 'socket.io';
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
import { authenticateHandshake, type HandshakeInput } from './handshake.ts';

/** What a connection carries for its lifetime and across connection-state recovery (persisted with it). */
export interface SessionData {
  identity: Identity;
  ip: string;
  connectedAt: number;
}

export type TransportName = 'ws' | 'socketio';

/** A client connection as the session sees it; each transport implements it. */
export interface ClientConnection {
  readonly id: string;
  readonly transport: TransportName;
  readonly data: SessionData;
  /** Scoped rooms (`{tenant}/{room}`), plus the connection's own id room. */
  readonly rooms: ReadonlySet<string>;
  /** Whether connection-state recovery restored this session. */
  readonly recovered: boolean;
  /** The recovery session id, when recovery is on (raw /ws clients send it back to resume). */
  readonly sessionId: string | undefined;
  readonly rateLimiter: MessageRateLimiter;
  join(scopedRooms: readonly string[]): void;
  leave(scopedRoom: string): void;
  /** To this connection only, now; `offset`, when given, is the recovery point the message carries. */
  send(event: string, payload: unknown, offset?: string): void;
}

export type Ack = (reply?: unknown) => void;

/**
 * Closing a connection is a message: an `error` notice with `close_code`, delivered like any other event, after
 * which the transport closes the connection with that code. The same notice emitted to a room through the
 * adapter closes those connections on every replica, in stream order (DELETE /v1/users/{id}/connections).
 */
export function closeConnection(io: Server, connectionId: string, closeCode: CloseCodeValue, errorCode: ErrorCodeValue, reconnectAfterMs?: number): void {
  io.local.to(connectionId).emit('error', closingNotice(closeCode, errorCode, reconnectAfterMs));
}

/** The close code an outgoing message asks for: set on `error` notices that end the connection. */
export function closeCodeOf(event: unknown, payload: unknown): CloseCodeValue | undefined {
  if (event !== 'error' || typeof payload !== 'object' || payload === null) return undefined;
  return (payload as { close_code?: CloseCodeValue }).close_code;
}

export interface SessionDeps {
  readonly config: GatewayConfig;
  readonly verifier: TokenVerifier;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly presence: PresenceStore;
  readonly limiter: ConnectionLimiter;
  /**
   * With the Redis Streams adapter: the newest stream offset this replica has read. The welcome carries it, so a
   * client has a recovery point before its first broadcast without writing the welcome to the stream.
   */
  readonly recoveryOffset?: () => string | undefined;
  /** Open connections per transport, kept as they open and close (read by the metrics and /readyz). */
  readonly connectionCounts?: Map<string, number>;
  readonly clock?: () => number;
}

/** What the transport learnt before handing the connection over. */
export interface AdmissionRequest extends HandshakeInput {
  readonly ip: string;
  readonly transport: TransportName;
}

export type Admission =
  | { readonly ok: true; readonly identity: Identity; readonly release: () => void }
  | { readonly ok: false; readonly closeCode: CloseCodeValue; readonly reason: string };

export interface Sessions {
  /** Authenticates and applies the connection limits; audited and counted here. */
  admit(request: AdmissionRequest): Promise<Admission>;
  /** A restored session must belong to the identity that resumes it; the refusal, if not. */
  checkRecovered(previous: SessionData, identity: Identity, request: AdmissionRequest): Admission | undefined;
  /** The connection is registered with the adapter: automatic rooms, presence, welcome, expiry watch. */
  opened(conn: ClientConnection, resumeRequested: boolean): void;
  /** One client message (`payload` is the body without its type), answered through `ack` when given. */
  message(conn: ClientConnection, event: unknown, payload: unknown, ack: Ack | undefined): void;
  /** About to leave its rooms: presence leave events to chat rooms. */
  closing(conn: ClientConnection): void;
  /** Gone (after leaving its rooms). */
  closed(conn: ClientConnection, reason: string): void;
  /**
   * The same connection is served by another transport object from now on (same id, rooms, identity and
   * limits slot): no close, no open, only the bookkeeping kept per object moves.
   */
  handedOver(from: ClientConnection, to: ClientConnection): void;
  rateLimiter(): MessageRateLimiter;
}

/** Seconds before expiry when the client is told to send a fresh token. */
const TOKEN_EXPIRY_WARNING_SECONDS = 30;
const EXPIRY_SWEEP_MS = 1000;

export function createSessions(io: Server, deps: SessionDeps): Sessions {
  const { config, metrics, logger } = deps;
  const clock = deps.clock ?? Date.now;
  const policy = { broadcastRoles: config.broadcastRoles };
  const counts = deps.connectionCounts;
  const expiries = new ExpiryWatch<ClientConnection>(TOKEN_EXPIRY_WARNING_SECONDS, clock());
  /** Connections handed over to another transport object, to theirs: a handler that awaited may hold the old one. */
  const successors = new WeakMap<ClientConnection, ClientConnection>();
  const sweep = setInterval(() => {
    const { warn, expire } = expiries.due(clock());
    for (const conn of warn) {
      const expiresAt = conn.data.identity.expiresAt;
      if (expiresAt === undefined) continue;
      conn.send('token_expiring', { type: 'token_expiring', expires_at: new Date(expiresAt * 1000).toISOString(), timestamp: now() });
    }
    for (const conn of expire) {
      logger.info({ event: 'auth', outcome: 'expired', user_id: conn.data.identity.userId, tenant_id: conn.data.identity.tenantId }, 'token expired: disconnecting');
      closeConnection(io, conn.id, CloseCode.authenticationRequired, ErrorCode.invalidToken);
    }
  }, EXPIRY_SWEEP_MS);
  sweep.unref();

  const refuse = (closeCode: CloseCodeValue, reason: string): Admission => ({ ok: false, closeCode, reason });

  async function admit(request: AdmissionRequest): Promise<Admission> {
    const { ip, transport } = request;
    try {
      const result = await authenticateHandshake(request, deps.verifier);
      if (!result.ok) {
        metrics.authFailures.inc({ reason: result.reason });
        logger.warn({ event: 'auth', outcome: 'refused', ip, transport, user_id: result.userId, reason: result.reason }, 'connection refused');
        return refuse(result.closeCode, result.message);
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
        return refuse(CloseCode.tooManyConnections, `Too Many Connections (per ${admission.scope})`);
      }
      metrics.authSuccesses.inc({ source: result.tokenSource });
      logger.info({ event: 'auth', outcome: 'accepted', ip, transport, user_id: identity.userId, tenant_id: identity.tenantId, via: result.tokenSource }, 'connection authenticated');
      return { ok: true, identity, release: admission.release };
    } catch (error) {
      logger.error({ err: error, ip }, 'authentication failed unexpectedly');
      return refuse(CloseCode.authenticationRequired, 'Authentication Required');
    }
  }

  function checkRecovered(previous: SessionData, identity: Identity, request: AdmissionRequest): Admission | undefined {
    if (previous.identity.userId === identity.userId && previous.identity.tenantId === identity.tenantId) return undefined;
    metrics.authFailures.inc({ reason: 'session_identity_mismatch' });
    logger.warn({ event: 'auth', outcome: 'refused', ip: request.ip, user_id: identity.userId, reason: 'session_identity_mismatch' }, 'connection refused');
    return refuse(CloseCode.tenantMismatch, 'Session Belongs To Another Identity');
  }

  const visibleRooms = (conn: ClientConnection): string[] => {
    const rooms: string[] = [];
    for (const scoped of conn.rooms) {
      const unscoped = unscopeRoom(scoped);
      if (unscoped && unscoped.tenantId === conn.data.identity.tenantId) rooms.push(unscoped.room);
    }
    return rooms;
  };

  // Presence join/leave events go to the rooms that enable them (chat rooms), the tenant's own only.
  const announcePresence = (conn: ClientConnection, room: string, event: 'join' | 'leave') => {
    if (parseRoom(room)?.type !== 'chat') return;
    const { tenantId, userId } = conn.data.identity;
    io.to(scopedRoom(tenantId, room)).except(conn.id).emit('presence', { type: 'presence', event, room, user_id: userId, client_id: conn.id, timestamp: now() });
  };

  function opened(conn: ClientConnection, resumeRequested: boolean): void {
    const { identity } = conn.data;
    const { tenantId, userId } = identity;
    metrics.connects.inc({ transport: conn.transport });
    counts?.set(conn.transport, (counts.get(conn.transport) ?? 0) + 1);
    if (resumeRequested) metrics.sessionRecoveries.inc({ transport: conn.transport, result: conn.recovered ? 'recovered' : 'failed' });
    conn.join([scopedRoom(tenantId, roomName('tenant', tenantId)), scopedRoom(tenantId, roomName('user', userId))]);
    void deps.presence.connected(tenantId, userId, conn.id).catch((error: unknown) => logger.error({ err: error }, 'presence update failed'));
    expiries.set(conn, identity.expiresAt);
    const sessionId = conn.sessionId;
    const welcome = {
      type: 'connected',
      status: 'connected',
      client_id: conn.id,
      // Present when connection-state recovery is on: raw /ws clients send it back (with the last event id) to resume.
      ...(sessionId ? { session_id: sessionId } : {}),
      user: { user_id: userId, roles: identity.roles },
      tenant: { tenant_id: tenantId },
      rooms: visibleRooms(conn),
      recovered: conn.recovered,
      timestamp: now(),
    };
    conn.send('connected', welcome, deps.recoveryOffset?.());
  }

  const sendError = (conn: ClientConnection, ack: Ack | undefined, code: ErrorCodeValue, message: string, requestType?: string) => {
    metrics.errorReplies.inc({ code });
    const reply = errorReply(code, message, requestType);
    if (ack) ack(reply);
    else conn.send('error', reply);
  };

  type Outcome = { ok: true } | { ok: false; code: ErrorCodeValue; reason: string };

  const join = (conn: ClientConnection, room: string): Outcome => {
    const decision = decide(conn.data.identity, room, 'subscribe', policy);
    if (!decision.allow) return { ok: false, code: decision.code, reason: decision.reason };
    const scoped = scopedRoom(conn.data.identity.tenantId, room);
    if (conn.rooms.has(scoped)) return { ok: true };
    // conn.rooms holds the connection's own id room too.
    if (conn.rooms.size - 1 >= config.limits.maxRoomsPerConnection) {
      return { ok: false, code: ErrorCode.tooManyRooms, reason: `at most ${config.limits.maxRoomsPerConnection} rooms per connection` };
    }
    conn.join([scoped]);
    announcePresence(conn, room, 'join');
    return { ok: true };
  };

  const leave = (conn: ClientConnection, room: string): Outcome => {
    const { tenantId, userId } = conn.data.identity;
    if (room === roomName('tenant', tenantId) || room === roomName('user', userId)) {
      return { ok: false, code: ErrorCode.forbidden, reason: 'automatic rooms cannot be left' };
    }
    const scoped = scopedRoom(tenantId, room);
    if (conn.rooms.has(scoped)) {
      announcePresence(conn, room, 'leave');
      conn.leave(scoped);
    }
    return { ok: true };
  };

  const memberOf = (conn: ClientConnection, room: string) => conn.rooms.has(scopedRoom(conn.data.identity.tenantId, room));

  async function handle(conn: ClientConnection, message: ClientMessage, ack: Ack | undefined): Promise<void> {
    const reply = (payload?: unknown) => ack?.(payload);
    const { tenantId, userId } = conn.data.identity;
    switch (message.type) {
      case 'ping':
        reply(pongReply());
        return;
      case 'subscribe': {
        const joined: string[] = [];
        const failed: { topic: string; code: ErrorCodeValue; reason: string }[] = [];
        for (const topic of message.topics) {
          const result = join(conn, topic);
          if (result.ok) joined.push(topic);
          else failed.push({ topic, code: result.code, reason: result.reason });
        }
        const payload = subscribedReply(joined, failed);
        if (ack) ack(payload);
        else conn.send('subscribed', payload);
        return;
      }
      case 'unsubscribe': {
        const left: string[] = [];
        for (const topic of message.topics) if (leave(conn, topic).ok) left.push(topic);
        reply(unsubscribedReply(left));
        return;
      }
      case 'join_room': {
        const result = join(conn, message.room);
        if (!result.ok) return sendError(conn, ack, result.code, result.reason, message.type);
        reply(roomReply('room_joined', message.room));
        return;
      }
      case 'leave_room': {
        const result = leave(conn, message.room);
        if (!result.ok) return sendError(conn, ack, result.code, result.reason, message.type);
        reply(roomReply('room_left', message.room));
        return;
      }
      case 'broadcast': {
        const decision = decide(conn.data.identity, message.room, 'publish', policy);
        if (!decision.allow) return sendError(conn, ack, decision.code, decision.reason, message.type);
        if (!memberOf(conn, message.room)) return sendError(conn, ack, ErrorCode.notInRoom, 'join the room before broadcasting to it', message.type);
        const size = Buffer.byteLength(JSON.stringify(message.message));
        if (size > config.limits.maxMessageBytes) {
          return sendError(conn, ack, ErrorCode.messageTooLarge, `"message" is ${size} bytes; the limit is ${config.limits.maxMessageBytes}`, message.type);
        }
        io.to(scopedRoom(tenantId, message.room)).except(conn.id).emit('message', roomMessage(message.room, userId, message.message));
        metrics.publishes.inc({ source: 'client' });
        metrics.messagesOut.inc({ type: 'message' });
        reply();
        return;
      }
      case 'typing':
      case 'read': {
        const decision = decide(conn.data.identity, message.room, 'signal', policy);
        if (!decision.allow) return sendError(conn, ack, decision.code, decision.reason, message.type);
        if (!memberOf(conn, message.room)) return sendError(conn, ack, ErrorCode.notInRoom, 'join the room first', message.type);
        const data = message.type === 'typing'
          ? { room: message.room, user_id: userId, typing: message.typing }
          : { room: message.room, user_id: userId, message_id: message.message_id };
        const eventType = message.type === 'typing' ? 'chat.typing' : 'chat.read';
        io.to(scopedRoom(tenantId, message.room)).except(conn.id).emit('event', eventEnvelope({ eventType, data }));
        metrics.publishes.inc({ source: 'client' });
        metrics.messagesOut.inc({ type: eventType });
        reply();
        return;
      }
      case 'refresh': {
        const ip = conn.data.ip;
        let fresh: Identity;
        try {
          fresh = await deps.verifier.verify(message.token);
        } catch (error) {
          const reason = error instanceof AuthError ? error.reason : 'malformed_token';
          metrics.authFailures.inc({ reason });
          logger.warn({ event: 'auth', outcome: 'refresh_refused', ip, user_id: userId, tenant_id: tenantId, reason }, 'token refresh refused');
          return sendError(conn, ack, ErrorCode.invalidToken, `the new token was refused: ${reason}`, message.type);
        }
        if (fresh.userId !== userId || fresh.tenantId !== tenantId) {
          logger.warn({ event: 'auth', outcome: 'refresh_refused', ip, user_id: userId, tenant_id: tenantId, reason: 'identity_changed' }, 'token refresh refused');
          return sendError(conn, ack, ErrorCode.invalidToken, 'the new token is for another user or tenant', message.type);
        }
        conn.data.identity = fresh;
        // The token check was awaited: the connection may have been handed over meanwhile.
        expiries.set(successors.get(conn) ?? conn, fresh.expiresAt);
        logger.info({ event: 'auth', outcome: 'refreshed', ip, user_id: userId, tenant_id: tenantId }, 'token refreshed');
        reply({ type: 'token_refreshed', expires_at: fresh.expiresAt === undefined ? null : new Date(fresh.expiresAt * 1000).toISOString(), timestamp: now() });
        return;
      }
    }
  }

  function message(conn: ClientConnection, event: unknown, payload: unknown, ack: Ack | undefined): void {
    const type = typeof event === 'string' && CLIENT_MESSAGE_TYPES.has(event) ? event : 'unknown';
    metrics.messagesIn.inc({ type });
    const verdict = conn.rateLimiter.check(clock());
    if (!verdict.allowed) {
      metrics.rateLimited.inc({ scope: 'message' });
      if (verdict.close) {
        const { tenantId, userId } = conn.data.identity;
        logger.warn({ event: 'rate_limit', user_id: userId, tenant_id: tenantId, ip: conn.data.ip }, 'closing a connection that kept exceeding the message rate limit');
        closeConnection(io, conn.id, CloseCode.rateLimited, ErrorCode.rateLimited);
        return;
      }
      sendError(conn, ack, ErrorCode.rateLimited, `over ${config.limits.messagesPerSecond} messages per second`, type);
      return;
    }
    const parsed = parseClientMessage(event, payload);
    if (!parsed.ok) {
      sendError(conn, ack, parsed.code, parsed.error, typeof event === 'string' ? event.slice(0, 64) : undefined);
      return;
    }
    handle(conn, parsed.message, ack).catch((error: unknown) => {
      logger.error({ err: error, user_id: conn.data.identity.userId, type: parsed.message.type }, 'client message handler failed');
      sendError(conn, ack, ErrorCode.internalError, 'internal error', parsed.message.type);
    });
  }

  return {
    admit,
    checkRecovered,
    opened,
    message,
    closing(conn) {
      for (const room of visibleRooms(conn)) announcePresence(conn, room, 'leave');
    },
    closed(conn, reason) {
      expiries.delete(conn);
      counts?.set(conn.transport, (counts.get(conn.transport) ?? 0) - 1);
      metrics.disconnects.inc({ transport: conn.transport, reason: disconnectReasonLabel(reason) });
      const { tenantId, userId } = conn.data.identity;
      void deps.presence.disconnected(tenantId, userId, conn.id).catch((error: unknown) => logger.error({ err: error }, 'presence update failed'));
    },
    handedOver(from, to) {
      successors.set(from, to);
      expiries.move(from, to);
    },
    rateLimiter: () => new MessageRateLimiter(config.limits.messagesPerSecond, config.limits.messageBurst, clock()),
  };
}

/** socket.io's disconnect reasons are a closed set (raw /ws uses the same words); anything else is "other". */
function disconnectReasonLabel(reason: string): string {
  const known = ['transport close', 'transport error', 'ping timeout', 'parse error', 'forced close', 'server namespace disconnect', 'client namespace disconnect', 'server shutting down', 'forced server close'];
  return known.includes(reason) ? reason.replaceAll(' ', '_') : 'other';
}
