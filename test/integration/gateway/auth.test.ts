/**
 * Connection authentication on both transports against real gateway processes: where the token may come from,
 * the refusal codes (4001, 4003) and how each transport reports them, hostile tokens (each counted by reason),
 * RS256 through a JWKS endpoint with algorithm confusion attempted, and the audit trail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportSPKI } from 'jose';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { wsClient } from '../../harness/clients.ts';
import { rsaKeyPair, signedToken, unsignedToken } from '../../harness/tokens.ts';
import {
  TRANSPORTS, assertNoSecretsIn, both, connect, logLines, metric, refusal, remember, token, type ConnectOptions, type Transport,
} from './support.ts';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'rtgw-tests';
/** A token this gateway accepts: right issuer and audience. */
const good = (options: Parameters<typeof token>[0] = {}) => token({ issuer: ISSUER, audience: AUDIENCE, ...options });

const gateways: GatewayProcess[] = [];

describe('authentication (HS256 gateway with JWT_ISSUER and JWT_AUDIENCE)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_SKEW_SECONDS: '0' });
    gateways.push(gateway);
  });
  after(() => gateway.stop());

  const accepted: Array<[Transport, ConnectOptions['via']]> = [['ws', 'header'], ['ws', 'query'], ['socketio', 'header'], ['socketio', 'auth'], ['socketio', 'query']];
  for (const [transport, via] of accepted) {
    it(`accepts a token from ${via === 'header' ? 'Authorization: Bearer' : via === 'auth' ? 'auth.token' : '?token='} on ${transport}`, async () => {
      const conn = await connect(gateway, transport, { token: await good({ sub: `u-${via}`, tenant: 'acme' }), via, tenant: 'acme' });
      assert.equal(conn.welcome['user']['user_id'], `u-${via}`);
      assert.equal(conn.welcome['tenant']['tenant_id'], 'acme');
      assert.deepEqual([...conn.welcome['rooms']].sort(), ['tenant:acme', `user:u-${via}`]);
      assert.equal((await conn.request('ping'))?.['type'], 'pong');
      conn.close();
    });
  }

  it('accepts a token through socket.io long-polling with the Authorization header', async () => {
    const conn = await connect(gateway, 'socketio', { token: await good({ sub: 'poller' }), via: 'header', sioTransports: ['polling', 'websocket'] });
    assert.equal(conn.welcome['user']['user_id'], 'poller');
    conn.close();
  });

  it('takes the tenant from the token when the client sends no tenant_id', async () => {
    const [ws, sio] = await both(async (transport) => connect(gateway, transport, { token: await good({ tenant: 'implicit' }) }));
    assert.equal(ws!.welcome['tenant']['tenant_id'], 'implicit');
    assert.equal(sio!.welcome['tenant']['tenant_id'], 'implicit');
    ws!.close();
    sio!.close();
  });

  it('counts ?token= in rtgw_deprecated_token_query_total, and only ?token=', async () => {
    const before = await metric(gateway, 'rtgw_deprecated_token_query_total');
    const viaQuery = await both(async (transport) => connect(gateway, transport, { token: await good(), via: 'query' }));
    assert.equal(await metric(gateway, 'rtgw_deprecated_token_query_total'), before + 2);
    const viaHeader = await connect(gateway, 'ws', { token: await good(), via: 'header' });
    const viaAuth = await connect(gateway, 'socketio', { token: await good(), via: 'auth' });
    assert.equal(await metric(gateway, 'rtgw_deprecated_token_query_total'), before + 2);
    for (const conn of [...viaQuery, viaHeader, viaAuth]) conn.close();
  });

  it('prefers the Authorization header over ?token= (a bad query token does not matter, nor is it counted)', async () => {
    const before = await metric(gateway, 'rtgw_deprecated_token_query_total');
    const url = gateway.wsUrl({ tenant_id: 't1', token: 'not-a-token' });
    const client = await wsClient(url, { authorization: `Bearer ${await good({ sub: 'header-wins' })}` });
    assert.equal((await client.inbox.next('connected'))['user']['user_id'], 'header-wins');
    assert.equal(await metric(gateway, 'rtgw_deprecated_token_query_total'), before);
    client.close();
  });

  /** Hostile and broken tokens: each refused with 4001 (4003 for the tenant) on both transports, counted by reason. */
  const hostile: Array<{ name: string; token: () => Promise<string | undefined>; reason: string; code?: number; tenant?: string }> = [
    { name: 'no token at all', token: async () => undefined, reason: 'missing_token' },
    { name: 'alg none (unsigned)', token: async () => remember(unsignedToken({ sub: 'mallory', tenant_id: 't1', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })), reason: 'algorithm_not_allowed' },
    { name: 'an expired token', token: () => good({ expiresIn: -60 }), reason: 'expired' },
    { name: 'a token not yet valid (nbf in the future)', token: () => good({ notBefore: 600 }), reason: 'not_yet_valid' },
    { name: 'a wrong issuer', token: () => token({ issuer: 'https://evil.test', audience: AUDIENCE }), reason: 'invalid_issuer' },
    { name: 'no issuer', token: () => token({ audience: AUDIENCE }), reason: 'invalid_issuer' },
    { name: 'a wrong audience', token: () => token({ issuer: ISSUER, audience: 'another-api' }), reason: 'invalid_audience' },
    { name: 'a garbage string', token: async () => remember('not-a-jwt-garbage-string-%%%'), reason: 'malformed_token' },
    { name: 'three garbage segments', token: async () => remember('aaaa.bbbb.cccc'), reason: 'malformed_token' },
    { name: 'a token signed with another secret', token: () => good({ secret: 'another-secret-that-is-at-least-32-characters' }), reason: 'invalid_signature' },
    { name: 'a token without a tenant claim', token: () => good({ tenant: undefined }), reason: 'missing_tenant' },
    { name: 'a token for another tenant (tenant_id given)', token: () => good({ sub: 'eve', tenant: 'other' }), tenant: 't1', reason: 'tenant_mismatch', code: 4003 },
  ];
  for (const attempt of hostile) {
    it(`refuses ${attempt.name} with ${attempt.code ?? 4001} on both transports, counted as ${attempt.reason}`, async () => {
      const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: attempt.reason });
      const code = attempt.code ?? 4001;
      const reason = code === 4003 ? 'Tenant Mismatch' : 'Authentication Required';
      const tokenValue = await attempt.token();
      for (const transport of TRANSPORTS) {
        const refused = await refusal(gateway, transport, { token: tokenValue, tenant: attempt.tenant ?? 't1' });
        assert.deepEqual(refused, { code, reason }, transport);
      }
      // socket.io's handshake auth is a second way in; it must refuse the same tokens.
      if (tokenValue !== undefined) {
        assert.deepEqual(await refusal(gateway, 'socketio', { token: tokenValue, via: 'header', tenant: attempt.tenant ?? 't1' }), { code, reason });
      }
      const expected = tokenValue === undefined ? 2 : 3;
      assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: attempt.reason }), before + expected);
    });
  }

  it('audits every attempt with ip, user and reason', () => {
    const audits = logLines(gateway).filter((line) => line['event'] === 'auth' && (line['outcome'] === 'refused' || line['outcome'] === 'accepted'));
    assert.ok(audits.length > 30);
    for (const line of audits) {
      assert.equal(line['ip'], '127.0.0.1', JSON.stringify(line));
      assert.ok(['ws', 'socketio'].includes(line['transport']), JSON.stringify(line));
      if (line['outcome'] === 'accepted') {
        assert.equal(typeof line['user_id'], 'string');
        assert.equal(typeof line['tenant_id'], 'string');
        assert.ok(['header', 'auth', 'query'].includes(line['via']));
      } else {
        assert.equal(typeof line['reason'], 'string');
      }
    }
    const reasons = new Set(audits.filter((line) => line['outcome'] === 'refused').map((line) => line['reason']));
    for (const attempt of hostile) assert.ok(reasons.has(attempt.reason), attempt.reason);
    // The token was valid, so the user of a tenant mismatch is known and audited.
    assert.ok(audits.some((line) => line['reason'] === 'tenant_mismatch' && line['user_id'] === 'eve'));
    // ?token= use is audited separately, with who and where from.
    const deprecated = logLines(gateway).filter((line) => String(line['msg']).includes('?token='));
    assert.ok(deprecated.length >= 2);
    for (const line of deprecated) assert.ok(line['ip'] && line['user_id'], JSON.stringify(line));
  });
});

describe('authentication (RS256 gateway with a JWKS endpoint)', () => {
  let gateway: GatewayProcess;
  let jwksServer: Server;
  let keys: Awaited<ReturnType<typeof rsaKeyPair>>;
  let jwksRequests = 0;

  before(async () => {
    keys = await rsaKeyPair('k1');
    jwksServer = createServer((req, res) => {
      jwksRequests += 1;
      if (req.url !== '/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [keys.jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    gateway = await startGateway({ JWT_ALGORITHMS: 'RS256', JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    gateways.push(gateway);
  });
  after(async () => {
    await gateway.stop();
    jwksServer.closeAllConnections();
    await new Promise((resolve) => jwksServer.close(resolve));
  });

  it('accepts an RS256 token signed by a key of the JWKS, on both transports', async () => {
    const rs = remember(await signedToken({ key: keys.privateKey, alg: 'RS256', kid: 'k1', sub: 'rsa-user', tenant: 't1' }));
    const conns = await both((transport) => connect(gateway, transport, { token: rs, via: 'header', tenant: 't1' }));
    for (const conn of conns) assert.equal(conn.welcome['user']['user_id'], 'rsa-user');
    assert.ok(jwksRequests >= 1, 'the gateway fetched the JWKS');
    for (const conn of conns) conn.close();
  });

  it('refuses an HS256 token whose HMAC secret is the RSA public key PEM (algorithm confusion)', async () => {
    const pem = await exportSPKI(keys.publicKey as Parameters<typeof exportSPKI>[0]);
    const confused = await token({ sub: 'mallory', tenant: 't1', secret: new TextEncoder().encode(pem) });
    const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: 'algorithm_not_allowed' });
    for (const transport of TRANSPORTS) {
      assert.deepEqual(await refusal(gateway, transport, { token: confused, via: 'header', tenant: 't1' }), { code: 4001, reason: 'Authentication Required' });
    }
    assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: 'algorithm_not_allowed' }), before + 2);
  });

  it('refuses an HS256 token made with the JWKS key itself as a secret, and alg none', async () => {
    const fromJwk = await token({ sub: 'mallory', tenant: 't1', secret: new TextEncoder().encode(JSON.stringify(keys.jwk)) });
    const none = remember(unsignedToken({ sub: 'mallory', tenant_id: 't1', exp: Math.floor(Date.now() / 1000) + 3600 }));
    for (const hostileToken of [fromJwk, none]) {
      for (const transport of TRANSPORTS) {
        assert.equal((await refusal(gateway, transport, { token: hostileToken, tenant: 't1' })).code, 4001);
      }
    }
  });

  it('refuses an RS256 token signed by a key that is not in the JWKS', async () => {
    const stranger = await rsaKeyPair('k1');
    const forged = remember(await signedToken({ key: stranger.privateKey, alg: 'RS256', kid: 'k1', sub: 'mallory', tenant: 't1' }));
    const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: 'invalid_signature' });
    for (const transport of TRANSPORTS) {
      assert.deepEqual(await refusal(gateway, transport, { token: forged, tenant: 't1' }), { code: 4001, reason: 'Authentication Required' });
    }
    assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: 'invalid_signature' }), before + 2);
  });
});

describe('authentication: secrets in the output', () => {
  it('never writes a token, key or secret to the gateway output', () => {
    assert.equal(gateways.length, 2);
    for (const gateway of gateways) assertNoSecretsIn(gateway.process.output());
  });
});
