/**
 * JSON logs (pino). Tokens, keys and secrets are never passed to the logger; as a second line of defence the
 * fields that could carry them are redacted.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

export const REDACTED_PATHS = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'headers.cookie', 'req.headers.cookie', 'secret', '*.secret', 'key', '*.key', 'apiKey', '*.apiKey', 'password', '*.password',
  'headers["x-api-key"]', 'req.headers["x-api-key"]',
];

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'realtime-gateway' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination as unknown as pino.DestinationStream) : pino(options);
}
