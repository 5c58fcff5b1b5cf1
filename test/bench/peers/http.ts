/**
 * The HTTP side both hand-written peers share: `GET /healthz`, `GET /metrics` (nodejs_eventloop_lag_seconds,
 * measured as prom-client does: a setImmediate's delay) and `POST /broadcast` with the service key and
 * `{tenant_id, room, message}`, whose seed 000 event envelope is handed to the peer's own `publish`.
 *
 * The envelope is the gateway's own (eventEnvelope): a peer sends the bytes the gateway sends, less the recovery
 * offset it does not keep, so CPU per delivery compares the same output. The fixed texts (`message`, and
 * `message_ar` in Arabic, which makes the JSON a two-byte string in V8) are most of its size.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { eventEnvelope, type EventEnvelope } from '../../../gateway/src/protocol/server-messages.ts';

export type Publish = (tenant: string, room: string, envelope: EventEnvelope) => number | undefined;

export function httpRoutes(serviceKey: string, publish: Publish): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      const start = process.hrtime.bigint();
      await new Promise((resolve) => setImmediate(resolve));
      res.end(`nodejs_eventloop_lag_seconds ${Number(process.hrtime.bigint() - start) / 1e9}\n`);
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.end('ok');
      return;
    }
    if (req.method !== 'POST' || path !== '/broadcast') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `Bearer ${serviceKey}`) {
      res.writeHead(401).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: { tenant_id?: unknown; room?: unknown; message?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (typeof body.tenant_id !== 'string' || typeof body.room !== 'string') {
      res.writeHead(400).end();
      return;
    }
    const recipients = publish(body.tenant_id, body.room, eventEnvelope({ eventType: 'system.notification', data: body.message }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'sent', ...(recipients !== undefined ? { recipients } : {}) }));
  };
}
