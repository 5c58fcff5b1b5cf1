/**
 * What an open connection keeps alive. The HTTP request that opened a socket.io connection (headers, raw headers,
 * the token among them) must be collectable once the session is established: engine.io holds it twice for the
 * connection's lifetime (Socket.request, and a 'close' listener of its upgrade response), which the gateway
 * undoes. In-process, so the test can see the garbage collector's verdict through a WeakRef.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { parseConfig } from '../../../gateway/src/config.ts';
import { createLogger } from '../../../gateway/src/log.ts';
import { buildGateway, type Assembled } from '../../../gateway/src/main.ts';
import { freePort } from '../../harness/ports.ts';
import { TEST_SECRET, hsToken } from '../../harness/tokens.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether `ref`'s target is collected. A deref() keeps the target alive until the job ends, so each collection runs in a later job. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    await sleep(20);
    gc();
    await sleep(0);
    if (ref.deref() === undefined) return true;
  }
  return false;
}

describe('memory held by an open connection', () => {
  let assembled: Assembled;
  let port: number;
  const upgrades: WeakRef<IncomingMessage>[] = [];
  before(async () => {
    port = await freePort();
    assembled = buildGateway(parseConfig({ JWT_SECRET_KEY: TEST_SECRET, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' }), createLogger('silent'));
    assembled.gateway.http.prependListener('upgrade', (req: IncomingMessage) => upgrades.push(new WeakRef(req)));
    await assembled.gateway.listen();
  });
  after(async () => {
    await assembled.gateway.close();
    for (const resource of assembled.resources) await resource.close();
  });

  it('lets the upgrade request of a socket.io websocket connection go, and the connection still works', async () => {
    const client: ClientSocket = ioClient(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      query: { tenant_id: 'acme' },
      auth: { token: await hsToken({ sub: 'alice', tenant: 'acme' }) },
      reconnection: false,
    });
    try {
      const welcome = await new Promise<Record<string, unknown>>((resolve, reject) => {
        client.once('connected', resolve);
        client.once('connect_error', reject);
      });
      assert.equal((welcome['user'] as Record<string, unknown>)['user_id'], 'alice');
      assert.equal(upgrades.length, 1);
      assert.equal(await collected(upgrades[0]!), true, 'the upgrade request is still reachable');
      // Nothing the session needs went with it.
      const pong = await client.timeout(5000).emitWithAck('ping', {});
      assert.equal((pong as Record<string, unknown>)['type'], 'pong');
      const [server] = await assembled.gateway.io.fetchSockets();
      assert.equal(server?.handshake.headers.authorization, undefined);
      assert.equal(server?.handshake.query['tenant_id'], 'acme');
    } finally {
      client.close();
    }
  });
});
