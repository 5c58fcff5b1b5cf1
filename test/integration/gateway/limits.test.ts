/**
 * Limits on both transports: the per-connection message rate (rate_limited replies, then 4008 for a client that
 * keeps flooding) and the connection limits per user, per IP and per tenant (4029, and a slot frees when a
 * connection closes). The gateway trusts X-Forwarded-For here, so each test has its own client addresses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { waitFor } from '../../harness/process.ts';
import {
  TRANSPORTS, assertNoSecretsIn, both, closeAll, connect, logLines, metric, rawUpgrade, refusal, token, type Conn, type ConnectOptions, type Transport,
} from './support.ts';

const RATE = 5;

describe('limits (RATE_LIMIT 5/s burst 5; at most 2 connections per user, 2 per IP, 3 per tenant)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({
      RATE_LIMIT_MESSAGES_PER_SECOND: String(RATE),
      RATE_LIMIT_BURST: String(RATE),
      MAX_CONNECTIONS_PER_USER: '2',
      MAX_CONNECTIONS_PER_IP: '2',
      MAX_CONNECTIONS_PER_TENANT: '3',
      TRUST_PROXY: 'true',
    });
  });
  after(() => gateway.stop());

  let nextIp = 0;
  /** A client of its own address (X-Forwarded-For), so only the limit under test can apply. */
  const as = async (sub: string, tenant: string, ip = `10.0.0.${++nextIp}`): Promise<ConnectOptions> => ({
    token: await token({ sub, tenant }),
    tenant,
    headers: { 'x-forwarded-for': ip },
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: messages over the rate get rate_limited errors; a client that backs off keeps its connection`, async () => {
      const conn = await connect(gateway, transport, await as(`polite-${transport}`, 'rate'));
      const replies = await Promise.all(Array.from({ length: RATE + 3 }, () => conn.request('ping')));
      const pongs = replies.filter((reply) => reply?.['type'] === 'pong').length;
      const limited = replies.filter((reply) => reply?.['code'] === 'rate_limited');
      assert.ok(pongs >= RATE, `the burst is served (${pongs} pongs)`);
      assert.ok(limited.length >= 1, 'messages over the burst are refused');
      assert.equal(pongs + limited.length, RATE + 3);
      assert.equal(limited[0]?.['type'], 'error');
      assert.equal(limited[0]?.['close_code'], undefined);
      // Back off for a second: the bucket refills and the connection was never closed.
      await sleep(1100);
      assert.equal(conn.isOpen(), true);
      assert.equal((await conn.request('ping'))?.['type'], 'pong');
      conn.close();
    });
  }

  it('closes a client that keeps flooding: 4008 on /ws, an error notice with close_code 4008 then disconnect on socket.io', async () => {
    const before = await metric(gateway, 'rtgw_rate_limited_total', { scope: 'message' });
    const conns = await both(async (transport) => connect(gateway, transport, await as(`flooder-${transport}`, 'rate')));
    for (const conn of conns) for (let i = 0; i < 60; i++) conn.send('ping');
    const [ws, sio] = conns as [Conn, Conn];
    assert.deepEqual(await ws.closed, { code: 4008, reason: 'Rate Limit Exceeded' });
    assert.deepEqual(await sio.closed, { code: 4008, reason: 'Rate Limit Exceeded' });
    for (const conn of conns) {
      const errors = conn.inbox.ofType('error');
      assert.ok(errors.some((m) => m['code'] === 'rate_limited' && m['close_code'] === undefined), `${conn.transport}: warned first`);
    }
    assert.equal(sio.inbox.ofType('error').at(-1)?.['close_code'], 4008);
    assert.ok((await metric(gateway, 'rtgw_rate_limited_total', { scope: 'message' })) > before + 2);
    for (const transport of TRANSPORTS) {
      assert.ok(logLines(gateway).some((line) => line['event'] === 'rate_limit' && line['user_id'] === `flooder-${transport}` && String(line['ip']).startsWith('10.0.0.')));
    }
  });

  /** Opens `count` connections, alternating transports. */
  const open = async (count: number, options: (i: number) => Promise<ConnectOptions>): Promise<Conn[]> => {
    const conns: Conn[] = [];
    for (let i = 0; i < count; i++) conns.push(await connect(gateway, TRANSPORTS[i % 2]!, await options(i)));
    return conns;
  };

  /** Every transport is refused with 4029 for `scope`; then closing one connection lets a new one in. */
  const assertLimit = async (scope: 'user' | 'ip' | 'tenant', conns: Conn[], extra: (transport: Transport) => Promise<ConnectOptions>) => {
    const before = await metric(gateway, 'rtgw_rate_limited_total', { scope });
    for (const transport of TRANSPORTS) {
      const refused = await refusal(gateway, transport, await extra(transport));
      assert.equal(refused.code, 4029, `${transport}: ${JSON.stringify(refused)}`);
      assert.match(refused.reason, /^Too Many Connections/, transport);
    }
    assert.equal(await metric(gateway, 'rtgw_rate_limited_total', { scope }), before + 2);
    assert.ok(logLines(gateway).some((line) => line['reason'] === `too_many_connections_per_${scope}` && typeof line['ip'] === 'string' && typeof line['user_id'] === 'string'));
    // A slot frees when a connection closes (the server notices the close a moment later).
    conns.shift()!.close();
    for (const transport of TRANSPORTS) {
      const admitted = await waitFor(`a ${transport} connection once a slot is free`, async () => {
        const conn = await connect(gateway, transport, await extra(transport)).catch(() => undefined);
        return conn;
      }, 5000, 50);
      assert.equal(typeof admitted.welcome['client_id'], 'string');
      // Full again.
      assert.equal((await refusal(gateway, transport === 'ws' ? 'socketio' : 'ws', await extra(transport))).code, 4029);
      admitted.close();
    }
    closeAll(conns);
  };

  it('refuses a third connection of one user with 4029 on both transports (MAX_CONNECTIONS_PER_USER)', async () => {
    const conns = await open(2, () => as('busy-user', 'lim-user'));
    await assertLimit('user', conns, () => as('busy-user', 'lim-user'));
  });

  it('refuses a third connection from one address with 4029 on both transports (MAX_CONNECTIONS_PER_IP)', async () => {
    let user = 0;
    const conns = await open(2, () => as(`ip-user-${++user}`, `lim-ip-${user}`, '10.9.9.9'));
    await assertLimit('ip', conns, () => as(`ip-user-${++user}`, `lim-ip-${user}`, '10.9.9.9'));
  });

  it('refuses a fourth connection of one tenant with 4029 on both transports (MAX_CONNECTIONS_PER_TENANT)', async () => {
    let user = 0;
    const conns = await open(3, () => as(`tenant-user-${++user}`, 'lim-tenant'));
    await assertLimit('tenant', conns, () => as(`tenant-user-${++user}`, 'lim-tenant'));
  });

  it('an upgrade that ws itself turns down after authentication (bad Sec-WebSocket-Version) does not keep a slot', async () => {
    const options = await as('odd-version', 'lim-version');
    const headers = { authorization: `Bearer ${options.token}`, ...options.headers } as Record<string, string>;
    for (let i = 0; i < 3; i++) assert.equal((await rawUpgrade(gateway, { ...headers, 'sec-websocket-version': '12' })).status, 400);
    // The user's limit is 2: both still fit.
    const conns = await open(2, async () => options);
    for (const conn of conns) assert.equal(typeof conn.welcome['client_id'], 'string');
    closeAll(conns);
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});
