/**
 * Every close code and error code a client can see. The reference docs (docs/reference/protocol.md) list the same
 * tables; test/unit/docs/reference.test.ts keeps them in step.
 */

/** WebSocket close codes (raw /ws), and `connect_error.data.code` / `error` event `close_code` on socket.io. */
export const CloseCode = {
  /** Missing, invalid or expired token (seed 000). */
  authenticationRequired: 4001,
  /** `tenant_id` does not match the token's tenant claim (seed 000). */
  tenantMismatch: 4003,
  /** A service disconnected this user through DELETE /v1/users/{id}/connections. */
  disconnectedByService: 4004,
  /** Over the message rate limit for too long. */
  rateLimited: 4008,
  /** Too many connections for this IP, user or tenant. */
  tooManyConnections: 4029,
  /** The replica is draining (rolling update, scale-down): reconnect, after the advised delay. */
  serviceRestart: 1012,
  /** A frame larger than the hard cap (the transport closes: standard code). */
  messageTooBig: 1009,
} as const;
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export const CLOSE_REASONS: Readonly<Record<CloseCodeValue, string>> = {
  4001: 'Authentication Required',
  4003: 'Tenant Mismatch',
  4004: 'Disconnected By Service',
  4008: 'Rate Limit Exceeded',
  4029: 'Too Many Connections',
  1012: 'Service Restart',
  1009: 'Message Too Big',
};

/** `code` of an `error` reply; the connection stays open after every one of these. */
export const ErrorCode = {
  invalidJson: 'invalid_json',
  invalidMessage: 'invalid_message',
  unknownType: 'unknown_type',
  messageTooLarge: 'message_too_large',
  invalidRoom: 'invalid_room',
  forbidden: 'forbidden',
  notInRoom: 'not_in_room',
  rateLimited: 'rate_limited',
  tooManyRooms: 'too_many_rooms',
  invalidToken: 'invalid_token',
  internalError: 'internal_error',
  /** With close_code 1012: this replica is going away; reconnect (after reconnect_after_ms). */
  serviceRestart: 'service_restart',
  /** With close_code 4004: a service disconnected this user. */
  disconnectedByService: 'disconnected_by_service',
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
