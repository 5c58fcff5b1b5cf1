/**
 * A connection's token over its lifetime, on both transports: expiry closes it (4001) unless the client sent a
 * fresh token in time (`refresh`); a refresh for someone else is refused and changes nothing. And the short-lived
 * WebSocket token (POST /v1/ws-token) for clients that can only use ?token= / auth.token.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { assertNoSecretsIn, both, connect, logLines, metric, refusal, remember, token, type Conn } from './support.ts';

/** How long until a token made now with `expiresIn` seconds is past its exp (exp is whole seconds), plus a margin. */
const pastExpiry = (expiresIn: number) => (expiresIn + 1) * 1000 + 300;

describe('token expiry and refresh', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ JWT_CLOCK_SKEW_SECONDS: '0' });
  });
  after(() => gateway.stop());

  it('closes a connection whose token expires: 4001 on /ws, an error notice with close_code 4001 then disconnect on socket.io', async () => {
    const conns = await both(async (transport) => connect(gateway, transport, { token: await token({ sub: `short-${transport}`, expiresIn: 2 }), tenant: 't1' }));
    const [ws, sio] = conns as [Conn, Conn];
    assert.deepEqual(await ws.closed, { code: 4001, reason: 'Authentication Required' });
    assert.deepEqual(await sio.closed, { code: 4001, reason: 'Authentication Required' });
    const notice = sio.inbox.ofType('error').at(-1);
    assert.equal(notice?.['code'], 'invalid_token');
    assert.equal(notice?.['close_code'], 4001);
    assert.ok(logLines(gateway).some((line) => line['outcome'] === 'expired' && line['user_id'] === 'short-ws'));
  });

  it('keeps a connection open past the old expiry once the client refreshed its token', async () => {
    const conns = await both(async (transport) => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'refresher', expiresIn: 2 }), tenant: 't1' });
      const reply = await conn.request('refresh', { token: await token({ sub: 'refresher', expiresIn: 3600 }) });
      assert.equal(reply?.['type'], 'token_refreshed', transport);
      assert.ok(Date.parse(reply?.['expires_at']) > Date.now() + 3000_000, transport);
      return conn;
    });
    await sleep(pastExpiry(2));
    for (const conn of conns) {
      assert.equal(conn.isOpen(), true, conn.transport);
      assert.equal((await conn.request('ping'))?.['type'], 'pong', conn.transport);
      conn.close();
    }
  });

  it('refuses a refresh with another user\'s or tenant\'s token, and the connection stays as it was', async () => {
    const conns = await both(async (transport) => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'victim', expiresIn: 2 }), tenant: 't1' });
      for (const other of [await token({ sub: 'mallory', expiresIn: 3600 }), await token({ sub: 'victim', tenant: 't2', expiresIn: 3600 })]) {
        const reply = await conn.request('refresh', { token: other });
        assert.equal(reply?.['type'], 'error', transport);
        assert.equal(reply?.['code'], 'invalid_token', transport);
        assert.equal((await conn.request('ping'))?.['type'], 'pong', transport);
      }
      // Still the victim's session, still bound by the victim's original expiry.
      const joined = await conn.request('join_room', { room: 'user:victim' });
      assert.equal(joined?.['type'], 'room_joined');
      return conn;
    });
    const closed = await Promise.all(conns.map((conn) => conn.closed));
    for (const result of closed) assert.equal(result.code, 4001);
  });

  it('refuses a refresh with an expired, unsigned or garbage token (invalid_token), counted by reason', async () => {
    const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: 'expired' });
    const conns = await both(async (transport) => {
      const conn = await connect(gateway, transport, { token: await token({ sub: 'r2' }), tenant: 't1' });
      const bad = [await token({ sub: 'r2', expiresIn: -10 }), await token({ sub: 'r2', secret: 'some-other-secret-of-at-least-32-characters' }), remember('garbage-refresh-token')];
      for (const fresh of bad) {
        const reply = await conn.request('refresh', { token: fresh });
        assert.equal(reply?.['code'], 'invalid_token', transport);
      }
      const malformed = await conn.request('refresh', { token: 42 });
      assert.equal(malformed?.['code'], 'invalid_message', transport);
      assert.equal((await conn.request('ping'))?.['type'], 'pong');
      return conn;
    });
    assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: 'expired' }), before + 2);
    for (const conn of conns) conn.close();
  });

  it('audits every refresh with the address, the user and, when refused, the reason', () => {
    const lines = logLines(gateway).filter((line) => line['event'] === 'auth' && (line['outcome'] === 'refreshed' || line['outcome'] === 'refresh_refused'));
    assert.ok(lines.filter((line) => line['outcome'] === 'refreshed').length >= 2);
    assert.ok(lines.filter((line) => line['outcome'] === 'refresh_refused').length >= 10);
    for (const line of lines) {
      assert.equal(line['ip'], '127.0.0.1', JSON.stringify(line));
      assert.equal(typeof line['user_id'], 'string');
      if (line['outcome'] === 'refresh_refused') assert.equal(typeof line['reason'], 'string');
    }
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});

describe('POST /v1/ws-token', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway.stop());

  const mint = async (bearer: string | undefined) =>
    gateway.api('/v1/ws-token', { method: 'POST', serviceKey: bearer ?? null });

  it('returns a short-lived token that connects on /ws (?token=) and socket.io (auth.token)', async () => {
    const { status, body } = await mint(await token({ sub: 'ticket-user', tenant: 't1', roles: ['publisher'], orgs: ['o1'] }));
    assert.equal(status, 200);
    remember(body.token);
    assert.equal(typeof body.token, 'string');
    assert.ok(body.expires_in > 0 && body.expires_in <= 300, String(body.expires_in));
    assert.ok(Math.abs(Date.parse(body.expires_at) - (Date.now() + body.expires_in * 1000)) < 5000);
    const ws = await connect(gateway, 'ws', { token: body.token, via: 'query', tenant: 't1' });
    const sio = await connect(gateway, 'socketio', { token: body.token, via: 'auth', tenant: 't1' });
    for (const conn of [ws, sio]) {
      assert.equal(conn.welcome['user']['user_id'], 'ticket-user');
      assert.deepEqual(conn.welcome['user']['roles'], ['publisher']);
      // The ticket carries the claims the policy needs.
      assert.equal((await conn.request('join_room', { room: 'org:o1' }))?.['type'], 'room_joined');
      conn.close();
    }
  });

  it('never outlives the token it was minted from', async () => {
    const { status, body } = await mint(await token({ expiresIn: 60 }));
    assert.equal(status, 200);
    remember(body.token);
    assert.ok(body.expires_in <= 60, String(body.expires_in));
  });

  it('keeps the ticket\'s tenant: connecting with another tenant_id is refused with 4003', async () => {
    const { body } = await mint(await token({ sub: 'tt', tenant: 't1' }));
    remember(body.token);
    for (const transport of ['ws', 'socketio'] as const) {
      assert.equal((await refusal(gateway, transport, { token: body.token, via: 'query', tenant: 't2' })).code, 4003);
    }
  });

  it('answers 401 JSON without a token, with a bad token, and with an expired one', async () => {
    const bad = [undefined, remember('definitely-not-a-token'), await token({ secret: 'yet-another-secret-of-at-least-32-characters' }), await token({ expiresIn: -5 })];
    for (const bearer of bad) {
      const { status, body } = await mint(bearer);
      assert.equal(status, 401);
      assert.equal(body.error, 'unauthorized');
      assert.equal(typeof body.message, 'string');
    }
  });

  it('accepts only POST', async () => {
    const { status, body } = await gateway.api('/v1/ws-token', { method: 'GET', serviceKey: await token() });
    assert.equal(status, 405);
    assert.equal(body.error, 'method_not_allowed');
  });

  it('will not exchange a ticket for another ticket (403, counted as ticket_as_input)', async () => {
    const before = await metric(gateway, 'rtgw_auth_failures_total', { reason: 'ticket_as_input' });
    const first = await mint(await token({ sub: 'chain' }));
    remember(first.body.token);
    const second = await mint(first.body.token);
    assert.equal(second.status, 403);
    assert.equal(second.body.error, 'forbidden');
    assert.equal(second.body.token, undefined);
    assert.equal(await metric(gateway, 'rtgw_auth_failures_total', { reason: 'ticket_as_input' }), before + 1);
  });

  it('audits every ticket request with the address, the user or the reason', () => {
    const lines = logLines(gateway).filter((line) => line['event'] === 'auth' && String(line['outcome']).startsWith('ticket_'));
    assert.ok(lines.filter((line) => line['outcome'] === 'ticket_issued').length >= 4);
    assert.ok(lines.filter((line) => line['outcome'] === 'ticket_refused').length >= 4);
    for (const line of lines) {
      assert.equal(line['ip'], '127.0.0.1', JSON.stringify(line));
      if (line['outcome'] === 'ticket_issued') assert.equal(typeof line['user_id'], 'string');
      else assert.equal(typeof line['reason'], 'string');
    }
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});
