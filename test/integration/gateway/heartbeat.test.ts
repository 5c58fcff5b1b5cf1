/**
 * The /ws keep-alive: one timer pings every raw session; a peer that did not answer the previous ping is dropped
 * (without a close frame), one that answers stays connected however long it is idle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { connect, metric, token } from './support.ts';

describe('/ws heartbeat (PING_INTERVAL_MS + PING_TIMEOUT_MS = 2 s)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ PING_INTERVAL_MS: '1000', PING_TIMEOUT_MS: '1000' });
  });
  after(() => gateway.stop());

  it('drops a peer that stops answering pings, and keeps one that answers', async () => {
    const before = await metric(gateway, 'rtgw_disconnects_total', { transport: 'ws', reason: 'ping_timeout' });
    const alive = await connect(gateway, 'ws', { token: await token({ sub: 'answers' }) });
    // autoPong off: the client library no longer answers the server's pings.
    const silent = new WebSocket(gateway.wsUrl(), { headers: { authorization: `Bearer ${await token({ sub: 'silent' })}` }, autoPong: false });
    const pinged = new Promise<void>((resolve) => silent.once('ping', () => resolve()));
    const closed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    await pinged;
    // Abnormal closure: the server drops the TCP connection without a close frame.
    assert.equal(await closed, 1006);
    assert.equal(await metric(gateway, 'rtgw_disconnects_total', { transport: 'ws', reason: 'ping_timeout' }), before + 1);
    await sleep(2500);
    const pong = await alive.request('ping');
    assert.equal(pong?.['type'], 'pong');
    alive.close();
  });
});
