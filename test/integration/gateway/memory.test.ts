/**
 * What an open connection keeps alive. The HTTP requests that opened a socket.io connection (headers, raw headers,
 * the token among them) must be collectable once the session is established. A client that opens with a
 * WebSocket is served without engine.io (socketio-ws.ts); for one that starts with polling, engine.io holds the
 * requests for the connection's lifetime (Socket.request, and a 'close' listener of its upgrade response), which
 * the gateway undoes; once it has upgraded, engine.io's and socket.io's objects go too (the take-over). In-process,
 * so the test can see the garbage collector's verdict through a WeakRef.
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
import { waitFor } from '../../harness/process.ts';
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
  const requests: { url: string; ref: WeakRef<IncomingMessage> }[] = [];
  before(async () => {
    port = await freePort();
    assembled = buildGateway(parseConfig({ JWT_SECRET_KEY: TEST_SECRET, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' }), createLogger('silent'));
    const track = (req: IncomingMessage) => void requests.push({ url: req.url ?? '', ref: new WeakRef(req) });
    assembled.gateway.http.prependListener('upgrade', track);
    assembled.gateway.http.prependListener('request', track);
    await assembled.gateway.listen();
  });
  after(async () => {
    await assembled.gateway.close();
    for (const resource of assembled.resources) await resource.close();
  });

  const open = async (transports: ('polling' | 'websocket')[]) => {
    const client: ClientSocket = ioClient(`http://127.0.0.1:${port}`, {
      transports,
      query: { tenant_id: 'acme' },
      auth: { token: await hsToken({ sub: 'alice', tenant: 'acme' }) },
      reconnection: false,
    });
    const welcome = await new Promise<Record<string, unknown>>((resolve, reject) => {
      client.once('connected', resolve);
      client.once('connect_error', reject);
    });
    assert.equal((welcome['user'] as Record<string, unknown>)['user_id'], 'alice');
    return client;
  };

  /** Nothing the session needs went with the requests, and nothing of the token stayed. */
  const stillWorks = async (client: ClientSocket) => {
    const pong = await client.timeout(5000).emitWithAck('ping', {});
    assert.equal((pong as Record<string, unknown>)['type'], 'pong');
    const sockets = await assembled.gateway.io.fetchSockets();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0]!.handshake.headers.authorization, undefined);
    assert.equal((sockets[0]!.handshake.auth as Record<string, unknown>)['token'], undefined);
  };

  it('keeps no request of a socket.io client that opens with a WebSocket', async () => {
    requests.length = 0;
    const client = await open(['websocket']);
    try {
      assert.equal(requests.length, 1);
      assert.equal(await collected(requests[0]!.ref), true, 'the upgrade request is still reachable');
      await stillWorks(client);
    } finally {
      client.close();
    }
  });

  it('lets the first polling request and the upgrade request of a polling client go once it is on the WebSocket', async () => {
    requests.length = 0;
    const client = await open(['polling', 'websocket']);
    try {
      await new Promise<void>((resolve) => (client.io.engine.transport.name === 'websocket' ? resolve() : client.io.engine.once('upgrade', () => resolve())));
      const first = requests.find((r) => r.url.includes('transport=polling') && !r.url.includes('sid='));
      const upgrade = requests.find((r) => r.url.includes('transport=websocket'));
      assert.ok(first && upgrade, requests.map((r) => r.url).join('\n'));
      assert.equal(await collected(first.ref), true, 'the first polling request is still reachable');
      assert.equal(await collected(upgrade.ref), true, 'the upgrade request is still reachable');
      await stillWorks(client);
    } finally {
      client.close();
    }
  });

  it('lets the socket.io socket and the engine.io connection of a polling client go once it is on the WebSocket', async () => {
    const { io } = assembled.gateway;
    const refs: { socket: WeakRef<object>; conn: WeakRef<object> }[] = [];
    const track = (socket: { conn: object }) => void refs.push({ socket: new WeakRef(socket), conn: new WeakRef(socket.conn) });
    io.on('connection', track);
    const client = await open(['polling', 'websocket']);
    try {
      await new Promise<void>((resolve) => (client.io.engine.transport.name === 'websocket' ? resolve() : client.io.engine.once('upgrade', () => resolve())));
      assert.equal(refs.length, 1);
      // The connection is served on its WebSocket without engine.io: engine.io no longer counts it.
      await waitFor('the take-over', () => io.engine.clientsCount === 0, 5000);
      assert.equal(io.of('/').sockets.size, 1);
      assert.equal(await collected(refs[0]!.socket), true, 'the socket.io socket is still reachable');
      assert.equal(await collected(refs[0]!.conn), true, 'the engine.io connection is still reachable');
      await stillWorks(client);
    } finally {
      io.off('connection', track);
      client.close();
    }
  });
});
