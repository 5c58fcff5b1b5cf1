/**
 * socket.io clients that open with a WebSocket are served without engine.io (transports/socketio-ws.ts). The
 * stock client is pinned by every other test; this one speaks Engine.IO v4 / socket.io v5 by hand to pin what
 * the stock client never does: other namespaces, retried CONNECTs, silence, binary frames.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { sioClient, sioConnected } from '../../harness/clients.ts';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { connect, token } from './support.ts';

/** A WebSocket speaking Engine.IO by hand: every text frame it receives, in order. */
class HandClient {
  readonly ws: WebSocket;
  readonly closed: Promise<number>;
  private readonly frames: string[] = [];
  /** Every text frame, pings included, in order. */
  readonly all: string[] = [];
  private waiter: (() => void) | undefined;

  constructor(url: string, options: { autoPong?: boolean } = {}) {
    this.ws = new WebSocket(url);
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
    this.ws.on('message', (data) => {
      const text = String(data);
      this.all.push(text);
      // Answer the server's pings unless told not to: what socket.io-client does.
      if (text === '2') {
        if (options.autoPong !== false) this.ws.send('3');
        return;
      }
      this.frames.push(text);
      this.waiter?.();
    });
  }

  async opened(): Promise<void> {
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
  }

  /** The next text frame (pings aside), within 5 s. */
  async next(): Promise<string> {
    const deadline = Date.now() + 5000;
    while (this.frames.length === 0) {
      if (Date.now() > deadline) throw new Error('no frame within 5 s');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.frames.shift()!;
  }

  send(frame: string | Buffer): void {
    this.ws.send(frame);
  }
}

describe('socket.io over a bare WebSocket, by hand', () => {
  let gateway: GatewayProcess;
  let url: string;
  before(async () => {
    gateway = await startGateway({ PING_INTERVAL_MS: '1000', PING_TIMEOUT_MS: '1000' });
    url = `ws://127.0.0.1:${gateway.port}/socket.io/?EIO=4&transport=websocket&tenant_id=t1`;
  });
  after(() => gateway.stop());

  const open = async (options: { autoPong?: boolean } = {}) => {
    const client = new HandClient(url, options);
    await client.opened();
    const handshake = JSON.parse((await client.next()).slice(1)) as Record<string, unknown>;
    return { client, handshake };
  };

  it('opens like engine.io, refuses other namespaces, and lets a refused CONNECT be retried on the same connection', async () => {
    const { client, handshake } = await open();
    assert.equal(typeof handshake['sid'], 'string');
    assert.deepEqual(handshake['upgrades'], []);
    assert.equal(handshake['pingInterval'], 1000);
    assert.equal(handshake['pingTimeout'], 1000);
    assert.equal(handshake['maxPayload'], 1_048_576);

    client.send('40/admin,{}');
    assert.equal(await client.next(), '44/admin,{"message":"Invalid namespace"}');

    client.send(`40${JSON.stringify({ token: 'not-a-token' })}`);
    const refused = await client.next();
    assert.ok(refused.startsWith('44{'), refused);
    assert.equal((JSON.parse(refused.slice(2)) as { data: { code: number } }).data.code, 4001);

    client.send(`40${JSON.stringify({ token: await token({ sub: 'by-hand' }) })}`);
    const connected = JSON.parse((await client.next()).slice(2)) as Record<string, unknown>;
    assert.equal(typeof connected['sid'], 'string');
    assert.equal(typeof connected['pid'], 'string');
    const welcome = JSON.parse((await client.next()).slice(2)) as [string, Record<string, unknown>, string?];
    assert.equal(welcome[0], 'connected');
    assert.equal(welcome[1]['client_id'], connected['sid']);
    // A ping right after the CONNECT reply restarts the client's ping timer, however long the admission took.
    const connectAt = client.all.findIndex((f) => f.startsWith('40{"sid"'));
    assert.equal(client.all[connectAt + 1], '2');

    // An event with an ack id is answered with an ACK of that id; a second CONNECT changes nothing.
    client.send('40{}');
    client.send('427["ping",{}]');
    const ack = await client.next();
    assert.ok(ack.startsWith('437['), ack);
    assert.equal((JSON.parse(ack.slice(3)) as [Record<string, unknown>])[0]['type'], 'pong');

    // socket.io's DISCONNECT ends the session; the connection closes normally.
    client.send('41');
    assert.equal(await client.closed, 1000);
  });

  it('drops a connection after three refused CONNECTs, and one that sends anything else before its CONNECT', async () => {
    const { client } = await open();
    for (let i = 0; i < 3; i++) {
      client.send(`40${JSON.stringify({ token: 'not-a-token' })}`);
      assert.ok((await client.next()).startsWith('44{'));
    }
    assert.equal(await client.closed, 1006);

    const early = await open();
    early.client.send('42["ping",{}]');
    assert.equal(await early.client.closed, 1006);
  });

  it('pings every pingInterval and drops a client that does not answer, whoever else is connected', async () => {
    const answering = await connect(gateway, 'socketio', { token: await token({ sub: 'answers' }), tenant: 't1' });
    const { client } = await open({ autoPong: false });
    client.send(`40${JSON.stringify({ token: await token({ sub: 'silent' }) })}`);
    assert.ok((await client.next()).startsWith('40{'));
    assert.equal(await client.closed, 1006);
    assert.equal((await answering.request('ping'))?.['type'], 'pong');
    answering.close();
  });

  it('drops a client that sends a binary frame or a packet socket.io would not parse, and nobody else', async () => {
    const bystander = await connect(gateway, 'socketio', { token: await token({ sub: 'bystander' }), tenant: 't1' });
    for (const garbage of [Buffer.from([1, 2, 3]), '451-["x",{"_placeholder":true,"num":0}]', '42{"type":"ping"}', 'x']) {
      const { client } = await open();
      client.send(`40${JSON.stringify({ token: await token({ sub: 'garbage' }) })}`);
      assert.ok((await client.next()).startsWith('40{'));
      await client.next(); // the welcome
      client.send(garbage);
      assert.equal(await client.closed, 1006, `after ${String(garbage)}`);
    }
    assert.equal((await bystander.request('ping'))?.['type'], 'pong');
    bystander.close();
  });

  it('survives a second CONNECT on the same engine.io (polling) connection, after the request was let go', async () => {
    const client = sioClient(gateway.httpUrl, { transports: ['polling'], auth: { token: await token({ sub: 'twice' }) }, query: { tenant_id: 't1' } });
    await sioConnected(client);
    const welcomes: unknown[] = [];
    client.socket.on('connected', (welcome: unknown) => welcomes.push(welcome));
    // What the stock client never does on one connection: leave the namespace and CONNECT again (socket.io
    // packets; engine.io adds its message type).
    client.socket.io.engine.send('1');
    client.socket.io.engine.send(`0${JSON.stringify({ token: await token({ sub: 'twice' }) })}`);
    for (let i = 0; i < 50 && welcomes.length === 0; i++) await sleep(100);
    assert.equal(welcomes.length, 1);
    assert.equal((await gateway.api('/healthz', { serviceKey: null })).status, 200);
    client.close();
  });
});

describe('refused upgrades whose client resets at once (CORS_ALLOWED_ORIGINS=https://app.example.com)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway({ CORS_ALLOWED_ORIGINS: 'https://app.example.com' });
  });
  after(() => gateway.stop());

  it('never crash the process', async () => {
    const paths = ['/socket.io/?EIO=4&transport=websocket', '/ws', '/elsewhere'];
    for (let round = 0; round < 5; round++) {
      for (const path of paths) {
        const socket = tcpConnect(gateway.port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.on('error', () => {});
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: https://evil.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\n\r\n`);
        socket.resetAndDestroy();
      }
    }
    await sleep(300);
    assert.equal(gateway.process.child.exitCode, null, gateway.process.output().slice(-2000));
    assert.equal((await gateway.api('/healthz', { serviceKey: null })).status, 200);
  });
});
