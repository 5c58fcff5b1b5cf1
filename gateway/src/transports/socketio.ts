/**
 * The socket.io server (default path /socket.io/, websocket and polling) and the raw /ws upgrade, on one HTTP
 * server. Origins are checked here for both transports; everything after the handshake is transport-blind.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type Socket, type ServerOptions } from 'socket.io';
import { WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { GatewayMetrics } from '../metrics/metrics.ts';
import { CLOSE_REASONS, CloseCode, type CloseCodeValue } from '../protocol/codes.ts';
import type { Transports } from '../session/session.ts';
import { RawJsonConnection, isRawJsonSocket } from './ws-json.ts';

/** Frames above this close the raw connection (1009); frames between maxMessageBytes and this get an error reply. */
const HARD_FRAME_LIMIT_BYTES = 1_048_576;

export function originAllowed(allowed: GatewayConfig['allowedOrigins'], origin: string | undefined): boolean {
  // Browsers always send Origin on WebSocket and cross-origin requests; other clients (wscat, services,
  // mobile apps) have no origin to check.
  if (origin === undefined) return true;
  return allowed === '*' || allowed.includes(origin);
}

export function forwardedIp(headers: IncomingMessage['headers']): string | undefined {
  const forwarded = headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first || undefined;
}

export interface TransportLayer {
  readonly io: Server;
  readonly transports: Transports;
  /** Stops accepting raw /ws upgrades (draining). socket.io's own are stopped by closing its engine. */
  stopAccepting(): void;
}

export function createTransports(
  httpServer: HttpServer,
  config: GatewayConfig,
  deps: { logger: Logger; metrics: GatewayMetrics; serverOptions?: Partial<ServerOptions> },
): TransportLayer {
  let accepting = true;
  /** The client's address for the audit log, before there is a socket (X-Forwarded-For only when trusted). */
  const requestIp = (request: IncomingMessage) => (config.trustProxy ? forwardedIp(request.headers) : undefined) ?? request.socket.remoteAddress ?? '';
  const io = new Server(httpServer, {
    path: '/socket.io/',
    transports: ['polling', 'websocket'],
    pingInterval: config.pingIntervalMs,
    pingTimeout: config.pingTimeoutMs,
    maxHttpBufferSize: HARD_FRAME_LIMIT_BYTES,
    cors: {
      origin: (origin, callback) => callback(null, originAllowed(config.allowedOrigins, origin)),
      credentials: true,
    },
    allowRequest: (request, callback) => {
      if (!accepting) return callback('draining', false);
      const allowed = originAllowed(config.allowedOrigins, request.headers.origin);
      if (!allowed) {
        deps.metrics.authFailures.inc({ reason: 'origin_not_allowed' });
        deps.logger.warn({ event: 'auth', outcome: 'refused', reason: 'origin_not_allowed', origin: request.headers.origin, ip: requestIp(request), transport: 'socketio' }, 'origin not allowed');
      }
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    // Raw /ws upgrades are handled below; leave other paths' upgrades to their handlers.
    destroyUpgrade: false,
    ...(config.recoveryWindowSeconds > 0
      ? { connectionStateRecovery: { maxDisconnectionDuration: config.recoveryWindowSeconds * 1000, skipMiddlewares: false } }
      : {}),
    ...deps.serverOptions,
  });

  // skipUTF8Validation: ws-json.ts checks text frames itself and answers invalid UTF-8 with an error reply, where
  // ws would close the connection (1007).
  const wss = new WebSocketServer({ noServer: true, maxPayload: HARD_FRAME_LIMIT_BYTES, perMessageDeflate: false, skipUTF8Validation: true });
  // One heartbeat timer for every raw connection rather than one each: timers are memory at 100k connections.
  const rawConnections = new Set<RawJsonConnection>();
  const heartbeat = setInterval(() => {
    for (const conn of rawConnections) conn.heartbeat();
  }, config.pingIntervalMs + config.pingTimeoutMs);
  heartbeat.unref();
  httpServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path?.startsWith('/socket.io')) return; // engine.io's own listener
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path !== '/ws' && path !== '/ws/') return refuse(404, 'Not Found');
    if (!accepting) return refuse(503, 'Service Unavailable');
    if (!originAllowed(config.allowedOrigins, request.headers.origin)) {
      deps.metrics.authFailures.inc({ reason: 'origin_not_allowed' });
      deps.logger.warn({ event: 'auth', outcome: 'refused', reason: 'origin_not_allowed', origin: request.headers.origin, ip: requestIp(request), transport: 'ws' }, 'origin not allowed');
      return refuse(403, 'Forbidden');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const conn = new RawJsonConnection(ws, request, {
        maxMessageBytes: config.limits.maxMessageBytes,
        pingIntervalMs: config.pingIntervalMs,
        pingTimeoutMs: config.pingTimeoutMs,
        onErrorReply: (code) => deps.metrics.errorReplies.inc({ code }),
      });
      rawConnections.add(conn);
      conn.once('close', () => rawConnections.delete(conn));
      const query = new URL(request.url ?? '/', 'http://gateway.invalid').searchParams;
      const sessionId = query.get('session_id');
      const lastEventId = query.get('last_event_id');
      conn.attach(io, sessionId && lastEventId ? { sessionId, lastEventId } : undefined);
    });
  });

  const transports: Transports = {
    transportOf: (socket: Socket) => (isRawJsonSocket(socket) ? 'ws' : 'socketio'),
    closeNow(socket: Socket, closeCode: CloseCodeValue) {
      if (isRawJsonSocket(socket)) {
        (socket.conn as unknown as RawJsonConnection).closeWith(closeCode, CLOSE_REASONS[closeCode]);
      } else if (closeCode === CloseCode.serviceRestart) {
        socket.conn.close();
      } else {
        socket.disconnect(true);
      }
    },
    clientIp(socket: Socket) {
      const forwarded = config.trustProxy ? forwardedIp(socket.request.headers) : undefined;
      return forwarded ?? socket.handshake.address ?? '';
    },
  };

  return {
    io,
    transports,
    stopAccepting() {
      accepting = false;
    },
  };
}
