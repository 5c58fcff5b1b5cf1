/**
 * The HTTP side of the gateway: health, readiness, metrics, the short-lived WebSocket token, and the service API
 * (seed 000's POST /broadcast, seed 004's per-recipient messages, seed 001's connection management).
 * Every error is JSON: {"error": code, "message": text}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, TicketRefusedError, authenticateService, extractToken, type ServiceKeys, type TicketIssuer, type TokenVerifier } from '../auth/index.ts';
import type { Logger } from '../log.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import type { Fanout } from '../fanout/fanout.ts';
import type { PresenceStore } from '../presence/presence.ts';
import { eventEnvelope, notification, now, serviceMessage } from '../protocol/server-messages.ts';
import { isValidId, parseRoom, roomName } from '../rooms/names.ts';

export const MAX_BODY_BYTES = 1_048_576;
export const MAX_RECIPIENTS = 1000;

export interface Readiness {
  readonly ready: boolean;
  readonly body: Record<string, unknown>;
}

export interface ApiDeps {
  readonly version: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly verifier: TokenVerifier;
  readonly ticketIssuer: TicketIssuer;
  /** undefined: no service keys configured, so the service API answers 503. */
  readonly serviceKeys: ServiceKeys | undefined;
  readonly presence: PresenceStore;
  readonly fanout: Fanout;
  readonly readiness: () => Promise<Readiness>;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) };
  // Answered before the body was read (401/403, 413): the rest of it is still on the socket, so the connection
  // cannot carry another request. Say so, or a keep-alive client reuses it and its next request is reset.
  if (!res.req.complete) headers['connection'] = 'close';
  res.writeHead(status, headers);
  res.end(text);
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return Promise.reject(new HttpError(413, 'payload_too_large', `the body is over ${MAX_BODY_BYTES} bytes`));
  // Plain listeners rather than `for await`: the async iterator costs more than the parse for a small body.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData).off('end', onEnd);
        reject(new HttpError(413, 'payload_too_large', `the body is over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      let body: unknown;
      try {
        body = JSON.parse((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8'));
      } catch {
        reject(new HttpError(400, 'invalid_json', 'the body is not valid JSON'));
        return;
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) reject(new HttpError(400, 'invalid_body', 'the body must be a JSON object'));
      else resolve(body as Record<string, unknown>);
    };
    req.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

/**
 * The path and query of a request. An origin-form target (`/path?query`, what clients send) is split, not parsed
 * as a URL, on every request; anything else (absolute-form, dot segments, backslashes, percent-encoded dots or
 * slashes, a fragment) is parsed as a URL, which normalises it as before.
 */
class RequestTarget {
  readonly pathname: string;
  readonly #query: string;
  #searchParams: URLSearchParams | undefined;

  constructor(raw: string) {
    if (raw[0] !== '/' || raw.includes('/.') || raw.includes('\\') || raw.includes('%2') || raw.includes('#')) {
      const url = new URL(raw, 'http://gateway.invalid');
      this.pathname = url.pathname;
      this.#query = url.search.slice(1);
      return;
    }
    const q = raw.indexOf('?');
    this.pathname = q < 0 ? raw : raw.slice(0, q);
    this.#query = q < 0 ? '' : raw.slice(q + 1);
  }

  get searchParams(): URLSearchParams {
    return (this.#searchParams ??= new URLSearchParams(this.#query));
  }
}

interface Route {
  readonly methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse, url: RequestTarget): Promise<void> | void;
}

/** A route under /v1/users/{id}/: `userId` is that id, decoded and checked. */
interface UserRoute {
  readonly methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse, url: RequestTarget, userId: string): Promise<void>;
}

function allowed(route: { readonly methods: readonly string[] }, method: string): void {
  if (!route.methods.includes(method)) throw new HttpError(405, 'method_not_allowed', `use ${route.methods.join(' or ')}`);
}

/** "/broadcast/" and "/broadcast//" are "/broadcast"; "/" stays. */
function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === 47 /* / */) end -= 1;
  return end === path.length ? path : path.slice(0, end);
}

/** A percent-encoded path segment; a malformed encoding (e.g. "%ZZ") is the client's error, not ours. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'invalid_path', `"${segment}" is not a valid percent-encoded path segment`);
  }
}

function tenantParam(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new HttpError(400, 'tenant_required', `${where} needs "tenant_id": every target is scoped to one tenant`);
  if (!isValidId(value)) throw new HttpError(400, 'invalid_tenant', '"tenant_id" is not a valid tenant id');
  return value;
}

function idParam(value: unknown, name: string): string {
  if (typeof value !== 'string' || !isValidId(value)) throw new HttpError(400, 'invalid_body', `"${name}" must be a non-empty id without "/" or spaces`);
  return value;
}

export function createApiHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const requireService = (req: IncomingMessage): string => {
    if (!deps.serviceKeys) throw new HttpError(503, 'service_api_disabled', 'SERVICE_API_KEYS is not configured');
    const result = authenticateService(deps.serviceKeys, req.headers);
    if (result.status === 'missing') throw new HttpError(401, 'unauthorized', 'send a service key: Authorization: Bearer <key> or X-API-Key');
    if (result.status === 'invalid') {
      deps.logger.warn({ event: 'service_auth', outcome: 'refused', ip: req.socket.remoteAddress, path: req.url?.split('?')[0] }, 'service key refused');
      throw new HttpError(403, 'forbidden', 'the service key is not valid');
    }
    return result.service;
  };

  const issueWsToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const source = extractToken({ headers: req.headers });
    if (!source) throw new HttpError(401, 'unauthorized', 'send your token in the Authorization: Bearer header');
    try {
      const identity = await deps.verifier.verify(source.token);
      const ticket = await deps.ticketIssuer.issue(identity);
      deps.logger.info({ event: 'auth', outcome: 'ticket_issued', ip: req.socket.remoteAddress, user_id: identity.userId, tenant_id: identity.tenantId }, 'ws token issued');
      send(res, 200, {
        token: ticket.token,
        expires_at: new Date(ticket.expiresAt * 1000).toISOString(),
        expires_in: Math.max(0, ticket.expiresAt - Math.floor(Date.now() / 1000)),
      });
    } catch (error) {
      const reason = error instanceof AuthError || error instanceof TicketRefusedError ? error.reason : 'refused';
      deps.metrics.authFailures.inc({ reason });
      deps.logger.warn({ event: 'auth', outcome: 'ticket_refused', ip: req.socket.remoteAddress, reason }, 'ws token refused');
      // A valid ticket presented for another one: authenticated, but not allowed (tickets must not extend themselves).
      if (reason === 'ticket_as_input') throw new HttpError(403, 'forbidden', 'a ws token cannot be exchanged for another one');
      throw new HttpError(401, 'unauthorized', `the token was refused: ${reason}`);
    }
  };

  const broadcast = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const service = requireService(req);
    const body = await readJson(req);
    const tenantId = tenantParam(body['tenant_id'], 'POST /broadcast');
    const message = body['message'];
    if (message === undefined || message === null) throw new HttpError(400, 'invalid_body', 'POST /broadcast needs "message"');
    let room: string;
    if (body['room'] !== undefined) {
      if (typeof body['room'] !== 'string' || !parseRoom(body['room'])) throw new HttpError(400, 'invalid_room', '"room" is not a valid room name');
      room = body['room'];
    } else if (body['user_id'] !== undefined) room = roomName('user', idParam(body['user_id'], 'user_id'));
    else if (body['field_id'] !== undefined) room = roomName('field', idParam(body['field_id'], 'field_id'));
    else if (body['farm_id'] !== undefined) room = roomName('farm', idParam(body['farm_id'], 'farm_id'));
    else room = roomName('tenant', tenantId);
    const fromMessage = typeof message === 'object' && !Array.isArray(message) ? (message as Record<string, unknown>) : {};
    const eventType = [body['event_type'], fromMessage['event_type']].find((v): v is string => typeof v === 'string' && v !== '') ?? 'system.notification';
    const envelope = eventEnvelope({ eventType, data: message, priority: body['priority'] ?? fromMessage['priority'] });
    const recipients = await deps.fanout.members(tenantId, room);
    await deps.fanout.publish(tenantId, room, 'event', envelope, 'http');
    deps.logger.info({ event: 'publish', source: 'http', service, tenant_id: tenantId, room, event_type: eventType, recipients }, 'broadcast');
    send(res, 200, { status: 'sent', recipients, room, timestamp: now() });
  };

  const messages = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const service = requireService(req);
    const body = await readJson(req);
    const tenantId = tenantParam(body['tenant_id'], 'POST /v1/messages');
    const list = body['user_ids'] ?? body['recipientIds'];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_RECIPIENTS) {
      throw new HttpError(400, 'invalid_body', `"user_ids" (or "recipientIds") must be an array of 1 to ${MAX_RECIPIENTS} user ids`);
    }
    const userIds = [...new Set(list.map((id) => idParam(id, 'user_ids[]')))];
    let event: string;
    let payload: unknown;
    const note = body['notification'];
    if (note !== undefined) {
      if (typeof note !== 'object' || note === null || Array.isArray(note) || typeof (note as Record<string, unknown>)['title'] !== 'string') {
        throw new HttpError(400, 'invalid_body', '"notification" must be an object with a "title" (and usually a "body")');
      }
      event = 'notification';
      payload = notification(note as Record<string, unknown>);
    } else {
      if (body['message'] === undefined || body['message'] === null) throw new HttpError(400, 'invalid_body', 'send "message" or "notification"');
      event = 'message';
      payload = serviceMessage(service, body['message'], body['metadata']);
    }
    const sent: string[] = [];
    const failed: string[] = [];
    // The member counts in parallel (each a round trip to the fleet), then one publish to every online user's room.
    const counts = await Promise.all(userIds.map((userId) => deps.fanout.members(tenantId, roomName('user', userId))));
    userIds.forEach((userId, i) => (counts[i]! > 0 ? sent : failed).push(userId));
    if (sent.length > 0) await deps.fanout.publish(tenantId, sent.map((userId) => roomName('user', userId)), event, payload, 'http');
    const status = failed.length === 0 ? 'sent' : sent.length === 0 ? 'error' : 'partial';
    deps.logger.info({ event: 'publish', source: 'http', service, tenant_id: tenantId, recipients: userIds.length, sent: sent.length }, 'messages');
    send(res, 200, { status, recipients: { total: userIds.length, sent, failed }, sent, failed, timestamp: now() });
  };

  // One handler per route, looked up by path: a publish runs the broadcast handler's code and nothing of the others'.
  const exact = new Map<string, Route>([
    ['/healthz', {
      methods: ['GET', 'HEAD'],
      handle: (_req, res) => send(res, 200, { status: 'healthy', service: 'ws-gateway', version: deps.version, timestamp: now() }),
    }],
    ['/readyz', {
      methods: ['GET', 'HEAD'],
      handle: async (_req, res) => {
        const readiness = await deps.readiness();
        send(res, readiness.ready ? 200 : 503, readiness.body);
      },
    }],
    ['/metrics', {
      methods: ['GET'],
      handle: async (_req, res) => send(res, 200, await deps.metrics.metricsText(), deps.metrics.registry.contentType),
    }],
    ['/v1/ws-token', { methods: ['POST'], handle: issueWsToken }],
    ['/broadcast', { methods: ['POST'], handle: broadcast }],
    ['/v1/messages', { methods: ['POST'], handle: messages }],
    ['/v1/users/connected', {
      methods: ['GET'],
      handle: async (req, res, url) => {
        requireService(req);
        const tenant = url.searchParams.get('tenant_id');
        const users = await deps.presence.connectedUsers(tenant === null ? undefined : tenantParam(tenant, 'the query'));
        send(res, 200, { users, total: users.length, timestamp: now() });
      },
    }],
    ['/v1/presence', {
      // Counts for a tenant, and for one of its rooms when asked: fleet-wide.
      methods: ['GET'],
      handle: async (req, res, url) => {
        requireService(req);
        const tenantId = tenantParam(url.searchParams.get('tenant_id') ?? undefined, 'the query');
        const users = await deps.presence.connectedUsers(tenantId);
        const room = url.searchParams.get('room');
        if (room !== null && !parseRoom(room)) throw new HttpError(400, 'invalid_room', '"room" is not a valid room name');
        send(res, 200, {
          tenant_id: tenantId,
          users_online: users.length,
          connections: users.reduce((sum, user) => sum + user.connections, 0),
          ...(room !== null ? { room: { name: room, connections: await deps.fanout.members(tenantId, room) } } : {}),
          timestamp: now(),
        });
      },
    }],
  ]);
  // /v1/users/{id}/status and /v1/users/{id}/connections.
  const userRoutes: Record<'status' | 'connections', UserRoute> = {
    status: {
      methods: ['GET'],
      handle: async (req, res, url, userId) => {
        requireService(req);
        const tenantId = tenantParam(url.searchParams.get('tenant_id') ?? undefined, 'the query');
        send(res, 200, await deps.presence.status(tenantId, userId));
      },
    },
    connections: {
      methods: ['DELETE'],
      handle: async (req, res, url, userId) => {
        const service = requireService(req);
        const tenantId = tenantParam(url.searchParams.get('tenant_id') ?? undefined, 'the query');
        const disconnected = await deps.fanout.disconnectUser(tenantId, userId);
        deps.logger.info({ event: 'disconnect_user', service, tenant_id: tenantId, user_id: userId, disconnected }, 'user disconnected by service');
        send(res, 200, { user_id: userId, tenant_id: tenantId, disconnected, timestamp: now() });
      },
    },
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, url: RequestTarget): Promise<void> => {
    const path = withoutTrailingSlashes(url.pathname);
    const method = req.method ?? 'GET';
    const route = exact.get(path);
    if (route !== undefined) {
      allowed(route, method);
      return route.handle(req, res, url);
    }
    const userPath = /^\/v1\/users\/([^/]+)\/(status|connections)$/.exec(path);
    if (userPath === null) throw new HttpError(404, 'not_found', `no route for ${method} ${path}`);
    const userRoute = userRoutes[userPath[2] as 'status' | 'connections'];
    const userId = idParam(decodedSegment(userPath[1]!), 'user id');
    allowed(userRoute, method);
    return userRoute.handle(req, res, url, userId);
  };

  return (req, res) => {
    const url = new RequestTarget(req.url ?? '/');
    routes(req, res, url).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      if (error instanceof HttpError) return send(res, error.status, { error: error.code, message: error.message });
      deps.logger.error({ err: error, path: url.pathname }, 'request failed');
      send(res, 500, { error: 'internal_error', message: 'internal error' });
    });
  };
}
