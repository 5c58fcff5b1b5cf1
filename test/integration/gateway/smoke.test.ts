import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { sioClient, sioConnected, wsClient } from '../../harness/clients.ts';
import { hsToken } from '../../harness/tokens.ts';

describe('gateway: both transports share rooms', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway.stop());

  it('delivers a socket.io client broadcast in a chat room to a raw /ws member', async () => {
    const raw = await wsClient(gateway.wsUrl({ tenant_id: 't1' }), { authorization: `Bearer ${await hsToken({ sub: 'alice' })}` });
    await raw.inbox.next('connected');
    const joined = await raw.request({ type: 'join_room', room: 'chat:lobby' }, 'room_joined');
    assert.equal(joined['room'], 'chat:lobby');

    const sio = sioClient(gateway.httpUrl, { auth: { token: await hsToken({ sub: 'bob' }) }, query: { tenant_id: 't1' } });
    const welcome = await sioConnected(sio);
    assert.equal(welcome['user']['user_id'], 'bob');
    assert.deepEqual(await sio.request('join_room', { room: 'chat:lobby' }).then((r) => r.type), 'room_joined');
    assert.equal(await sio.request('broadcast', { room: 'chat:lobby', message: { text: 'hello' } }), null);

    const received = await raw.inbox.next('message');
    assert.deepEqual(received['from'], { user_id: 'bob' });
    assert.deepEqual(received['message'], { text: 'hello' });
    assert.equal(received['room'], 'chat:lobby');
    raw.close();
    sio.close();
  });
});
