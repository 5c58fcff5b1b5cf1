/**
 * Browser origins (CORS_ALLOWED_ORIGINS) on both transports: a page on another origin cannot open a connection
 * with the user's credentials; the allowed origin and clients without an Origin (apps, services) can.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { sioClient, wsClient } from '../../harness/clients.ts';
import { assertNoSecretsIn, connect, logLines, metric, token } from './support.ts';

const ALLOWED = 'https://app.example.com';
const EVIL = 'https://evil.example';

/** A GET with any Origin header (fetch would not let a test set it reliably). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('origins (CORS_ALLOWED_ORIGINS=https://app.example.com)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ CORS_ALLOWED_ORIGINS: ALLOWED });
  });
  after(() => gateway.stop());

  it('refuses a /ws upgrade from another origin with HTTP 403, before any authentication', async () => {
    const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: 'origin_not_allowed' });
    const auth = { authorization: `Bearer ${await token()}` };
    await assert.rejects(wsClient(gateway.wsUrl({ tenant_id: 't1' }), { ...auth, origin: EVIL }), /HTTP 403/);
    // Lookalikes of the allowed origin are other origins.
    for (const lookalike of ['https://app.example.com.evil.example', 'http://app.example.com', 'https://app.example.com:8443', 'null']) {
      await assert.rejects(wsClient(gateway.wsUrl({ tenant_id: 't1' }), { ...auth, origin: lookalike }), /HTTP 403/, lookalike);
    }
    assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: 'origin_not_allowed' }), before + 5);
  });

  it('accepts a /ws upgrade from the allowed origin, and from clients that send no Origin', async () => {
    const fromPage = await connect(gateway, 'ws', { token: await token({ sub: 'page' }), headers: { origin: ALLOWED } });
    assert.equal(fromPage.welcome['user']['user_id'], 'page');
    const fromApp = await connect(gateway, 'ws', { token: await token({ sub: 'app' }) });
    assert.equal(fromApp.welcome['user']['user_id'], 'app');
    fromPage.close();
    fromApp.close();
  });

  it('refuses a socket.io long-polling handshake from another origin with HTTP 403', async () => {
    const refused = await get(`${gateway.httpUrl}/socket.io/?EIO=4&transport=polling`, { origin: EVIL });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    const allowed = await get(`${gateway.httpUrl}/socket.io/?EIO=4&transport=polling`, { origin: ALLOWED });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['access-control-allow-origin'], ALLOWED);
  });

  it('refuses a socket.io websocket upgrade from another origin', async () => {
    const upgrade = await get(`${gateway.httpUrl}/socket.io/?EIO=4&transport=websocket`, {
      origin: EVIL, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    }).catch((error: Error) => ({ status: -1, headers: {}, body: error.message }));
    assert.notEqual(upgrade.status, 101);
  });

  for (const transports of [['websocket'], ['polling']] as const) {
    it(`socket.io-client over ${transports[0]}: another origin never connects, the allowed one does`, async () => {
      const evil = sioClient(gateway.httpUrl, { transports: [...transports], auth: { token: await token() }, extraHeaders: { origin: EVIL } });
      const error = await new Promise<Error>((resolve, reject) => {
        evil.socket.once('connect_error', resolve);
        evil.socket.once('connect', () => reject(new Error('connected from a forbidden origin')));
      });
      assert.ok(error instanceof Error);
      assert.equal(evil.inbox.ofType('connected').length, 0);
      evil.close();
      const good = await connect(gateway, 'socketio', { token: await token({ sub: 'sio-page' }), headers: { origin: ALLOWED }, sioTransports: [...transports] });
      assert.equal(good.welcome['user']['user_id'], 'sio-page');
      good.close();
    });
  }

  it('audits every origin refusal with the address, the origin and the reason', () => {
    const refusals = logLines(gateway).filter((line) => line['event'] === 'auth' && line['reason'] === 'origin_not_allowed');
    assert.ok(refusals.length >= 7, String(refusals.length));
    for (const line of refusals) {
      assert.equal(typeof line['origin'], 'string');
      assert.equal(line['ip'], '127.0.0.1', JSON.stringify(line));
      assert.ok(['ws', 'socketio'].includes(line['transport']), JSON.stringify(line));
    }
    assert.ok(refusals.some((line) => line['origin'] === EVIL));
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});
