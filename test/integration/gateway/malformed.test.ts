/**
 * Hostile and broken input. On /ws every malformed frame gets an `error` reply with its code and the connection
 * stays (a ping afterwards gets its pong); only a frame over the 1 MiB hard cap closes it (1009). On socket.io a
 * bad payload gets an error ack. Nothing of this disturbs other clients or the process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import { sioClient, sioConnected, wsClient, type WsClient } from '../../harness/clients.ts';
import { assertNoSecretsIn, closeAll, connect, delivered, markerOf, metric, rawUpgrade, token, type Conn } from './support.ts';

const MAX_MESSAGE_BYTES = 4096;

const nested = (depth: number, leaf = '0') => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;

/** Frames that are not a valid client message, with the error code each must get. */
const CORPUS: ReadonlyArray<{ name: string; frame: string | Buffer; binary?: boolean; code: string }> = [
  { name: 'not JSON', frame: 'hello', code: 'invalid_json' },
  { name: 'truncated JSON', frame: '{"type":"ping"', code: 'invalid_json' },
  { name: 'an empty frame', frame: '', code: 'invalid_json' },
  { name: 'a JSON array', frame: '[{"type":"ping"}]', code: 'invalid_message' },
  { name: 'a number', frame: '42', code: 'invalid_message' },
  { name: 'a string', frame: '"ping"', code: 'invalid_message' },
  { name: 'null', frame: 'null', code: 'invalid_message' },
  { name: 'true', frame: 'true', code: 'invalid_message' },
  { name: 'an object without type', frame: '{"topics":["field:1"]}', code: 'invalid_message' },
  { name: 'a numeric type', frame: '{"type":42}', code: 'invalid_message' },
  { name: 'a null type', frame: '{"type":null}', code: 'invalid_message' },
  { name: 'an object type', frame: '{"type":{"toString":"ping"}}', code: 'invalid_message' },
  { name: 'an own __proto__ key carrying the type', frame: '{"__proto__":{"type":"ping"}}', code: 'invalid_message' },
  { name: 'an unknown type', frame: '{"type":"launch_missiles"}', code: 'unknown_type' },
  ...['disconnect', 'connect', 'connect_error', 'disconnecting', 'newListener', 'removeListener', '__proto__', 'constructor', 'hasOwnProperty', 'error', 'connected', 'pong', 'subscribed', 'event']
    .map((type) => ({ name: `the reserved or server-side name "${type}"`, frame: JSON.stringify({ type }), code: 'unknown_type' })),
  { name: 'a 3000-character unknown type', frame: JSON.stringify({ type: 'x'.repeat(3000) }), code: 'unknown_type' },
  { name: 'topics as a string', frame: '{"type":"subscribe","topics":"field:1"}', code: 'invalid_message' },
  { name: 'topics empty', frame: '{"type":"subscribe","topics":[]}', code: 'invalid_message' },
  { name: 'topics of numbers', frame: '{"type":"subscribe","topics":[1,2]}', code: 'invalid_message' },
  { name: 'topics with null', frame: '{"type":"unsubscribe","topics":["field:1",null]}', code: 'invalid_message' },
  { name: 'a huge topics list', frame: JSON.stringify({ type: 'subscribe', topics: Array.from({ length: 500 }, (_, i) => `f:${i}`) }), code: 'invalid_message' },
  { name: 'a topic name over 200 characters', frame: JSON.stringify({ type: 'subscribe', topics: [`field:${'x'.repeat(300)}`] }), code: 'invalid_message' },
  { name: 'a numeric room', frame: '{"type":"join_room","room":5}', code: 'invalid_message' },
  { name: 'a missing room', frame: '{"type":"leave_room"}', code: 'invalid_message' },
  { name: 'an array room', frame: '{"type":"join_room","room":["chat:1"]}', code: 'invalid_message' },
  { name: 'a broadcast without message', frame: '{"type":"broadcast","room":"chat:1"}', code: 'invalid_message' },
  { name: 'a broadcast with a null message', frame: '{"type":"broadcast","room":"chat:1","message":null}', code: 'invalid_message' },
  { name: 'typing that is not a boolean', frame: '{"type":"typing","room":"chat:1","typing":"yes"}', code: 'invalid_message' },
  { name: 'a numeric message_id', frame: '{"type":"read","room":"chat:1","message_id":7}', code: 'invalid_message' },
  { name: 'a numeric refresh token', frame: '{"type":"refresh","token":42}', code: 'invalid_message' },
  { name: 'a room name that is not a room', frame: '{"type":"join_room","room":"__proto__"}', code: 'invalid_room' },
  { name: 'a room with a tenant separator', frame: '{"type":"join_room","room":"field:../tenant-b/field:1"}', code: 'invalid_room' },
  { name: 'a frame just over MAX_MESSAGE_BYTES', frame: JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_MESSAGE_BYTES) }), code: 'message_too_large' },
  { name: 'a frame of 900 KiB', frame: JSON.stringify({ type: 'ping', pad: 'x'.repeat(900 * 1024) }), code: 'message_too_large' },
  { name: 'a binary frame', frame: Buffer.from('{"type":"ping"}'), binary: true, code: 'invalid_message' },
  { name: 'deeply nested JSON (2 000 levels)', frame: `{"type":"broadcast","room":"chat:1","message":${nested(2000)}}`, code: 'invalid_message' },
  { name: 'JSON nested 40 levels in a small frame', frame: `{"type":"broadcast","room":"chat:1","message":${nested(40)}}`, code: 'invalid_message' },
  { name: 'deeply nested objects', frame: `{"type":"subscribe","topics":["a"],"x":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`, code: 'invalid_message' },
  { name: 'invalid UTF-8', frame: Buffer.from([0x7b, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), code: 'invalid_json' },
  { name: 'a lone surrogate half in UTF-8 (CESU)', frame: Buffer.concat([Buffer.from('{"type":"ping","x":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), code: 'invalid_json' },
];

describe('malformed input', () => {
  let gateway: GatewayProcess;
  /** Members of chat:bystanders on both transports: they must keep receiving whatever others send. */
  let bystanders: Conn[];
  let published = 0;

  before(async () => {
    gateway = await startGateway({ MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES), RATE_LIMIT_MESSAGES_PER_SECOND: '10000' });
    bystanders = [];
    for (const transport of ['ws', 'socketio'] as const) {
      const conn = await connect(gateway, transport, { token: await token({ sub: `bystander-${transport}` }), tenant: 't1' });
      assert.equal((await conn.request('join_room', { room: 'chat:bystanders' }))?.['type'], 'room_joined');
      bystanders.push(conn);
    }
  });
  after(async () => {
    closeAll(bystanders);
    await gateway.stop();
  });

  /** The process is up and other clients still get their messages. */
  const assertUndisturbed = async () => {
    const health = await gateway.api('/healthz', { serviceKey: null });
    assert.equal(health.status, 200);
    const marker = `still-there-${++published}`;
    const { body } = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:bystanders', message: { marker } } });
    assert.equal(body.recipients, 2);
    for (const conn of bystanders) {
      await delivered(conn, (m) => markerOf(m) === marker, marker);
      assert.equal(conn.isOpen(), true);
    }
  };

  const rawMember = async (): Promise<WsClient> => {
    const client = await wsClient(gateway.wsUrl({ tenant_id: 't1' }), { authorization: `Bearer ${await token({ sub: 'fuzzer' })}` });
    await client.inbox.next('connected');
    return client;
  };

  it('answers every malformed /ws frame with an error of the right code and keeps the connection', async () => {
    const client = await rawMember();
    const before = await metric(gateway, 'rtgw_error_replies_total', { code: 'invalid_message' });
    let invalidMessages = 0;
    for (const entry of CORPUS) {
      client.ws.send(entry.frame, { binary: entry.binary ?? false });
      const reply = await client.inbox.next(() => true);
      assert.equal(reply['type'], 'error', `${entry.name}: ${JSON.stringify(reply)}`);
      assert.equal(reply['code'], entry.code, `${entry.name}: ${JSON.stringify(reply)}`);
      assert.equal(typeof reply['message'], 'string');
      assert.ok(String(reply['message']).length < 300, `${entry.name}: the reply does not echo the input`);
      if (entry.code === 'invalid_message') invalidMessages += 1;
      const pong = await client.request({ type: 'ping' }, 'pong');
      assert.equal(pong['type'], 'pong', entry.name);
    }
    assert.equal(client.ws.readyState, client.ws.OPEN);
    assert.equal(await metric(gateway, 'rtgw_error_replies_total', { code: 'invalid_message' }), before + invalidMessages);
    // The connection is still fully usable, not just answering pings.
    assert.equal((await client.request({ type: 'join_room', room: 'chat:fuzz' }, 'room_joined'))['room'], 'chat:fuzz');
    client.close();
    await assertUndisturbed();
  });

  it('answers a burst of malformed frames with one error each', async () => {
    const client = await rawMember();
    const burst = CORPUS.filter((entry) => typeof entry.frame === 'string' && entry.frame.length < 2000);
    for (const entry of burst) client.ws.send(entry.frame);
    client.send({ type: 'ping' });
    await client.inbox.next('pong');
    // One error each. Not necessarily in order: frames refused by the transport are answered at once, the others
    // after socket.io's dispatch, one tick later.
    const codes = client.inbox.ofType('error').map((m) => m['code']);
    assert.deepEqual(codes.sort(), burst.map((entry) => entry.code).sort());
    client.close();
    await assertUndisturbed();
  });

  it('closes a /ws connection with 1009 for a frame over 1 MiB, and only that connection', async () => {
    const client = await rawMember();
    client.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(1024 * 1024 + 16) }));
    const closed = await client.closed;
    assert.equal(closed.code, 1009);
    await assertUndisturbed();
  });

  it('answers bad socket.io payloads with an error ack and keeps the socket connected', async () => {
    const sio = await connect(gateway, 'socketio', { token: await token({ sub: 'sio-fuzzer' }), tenant: 't1' });
    assert.equal((await sio.request('join_room', { room: 'chat:fuzz' }))?.['type'], 'room_joined');
    const cases: Array<[string, unknown, string]> = [
      ['subscribe', 'field:1', 'invalid_message'],
      ['subscribe', { topics: 'field:1' }, 'invalid_message'],
      ['subscribe', { topics: Array.from({ length: 51 }, (_, i) => `field:${i}`) }, 'invalid_message'],
      ['subscribe', [['field:1']], 'invalid_message'],
      ['join_room', { room: 5 }, 'invalid_message'],
      ['join_room', 42, 'invalid_message'],
      ['join_room', { room: 'nope' }, 'invalid_room'],
      ['leave_room', {}, 'invalid_message'],
      ['broadcast', { room: 'chat:fuzz' }, 'invalid_message'],
      ['broadcast', { room: 'chat:fuzz', message: JSON.parse(nested(40)) }, 'invalid_message'],
      ['broadcast', { room: 'chat:fuzz', message: { pad: 'x'.repeat(MAX_MESSAGE_BYTES) } }, 'message_too_large'],
      ['typing', { room: 'chat:fuzz', typing: 'yes' }, 'invalid_message'],
      ['read', { room: 'chat:fuzz' }, 'invalid_message'],
      ['refresh', { token: ['x'] }, 'invalid_message'],
      ['ping', 'payload', 'invalid_message'],
      ['launch_missiles', {}, 'unknown_type'],
      ['__proto__', {}, 'unknown_type'],
      ['constructor', {}, 'unknown_type'],
      ['hasOwnProperty', {}, 'unknown_type'],
      ['error', {}, 'unknown_type'],
      ['connected', {}, 'unknown_type'],
    ];
    for (const [event, payload, code] of cases) {
      const reply = await sio.request(event, payload as never);
      assert.equal(reply?.['type'], 'error', `${event} ${JSON.stringify(payload).slice(0, 80)}: ${JSON.stringify(reply)}`);
      assert.equal(reply?.['code'], code, `${event} ${JSON.stringify(payload).slice(0, 80)}`);
      assert.equal(sio.isOpen(), true);
    }
    // Without an ack, the error comes as an `error` event.
    sio.send('join_room', { room: 7 });
    const notice = await sio.inbox.next((m) => m['__event'] === 'error');
    assert.equal(notice['code'], 'invalid_message');
    assert.equal(notice['close_code'], undefined, 'an error reply does not close');
    assert.equal((await sio.request('ping'))?.['type'], 'pong');
    sio.close();
    await assertUndisturbed();
  });

  it('survives socket.io packets the stock client would never send (the offender may be dropped, nobody else)', async () => {
    const forger = sioClient(gateway.httpUrl, { auth: { token: await token({ sub: 'packet-forger' }) }, query: { tenant_id: 't1' } });
    await sioConnected(forger);
    const packets = [
      '42["disconnect",{}]', '42["connect"]', '42["__proto__",{"type":"ping"}]', '42[]', '42{"type":"ping"}', '42"ping"', '4garbage', '42[42]',
      `42["broadcast",{"room":"chat:1","message":${nested(20000)}}]`, '42["subscribe",{"topics":["field:1"]}', '0/admin,{}', '9',
    ];
    for (const packet of packets) forger.socket.io.engine.send(packet);
    await assertUndisturbed();
    forger.close();
  });

  it('survives a refused /ws client that answers the close with frames no client may send', async () => {
    const { status, socket } = await rawUpgrade(gateway, {});
    assert.equal(status, 101);
    // Unmasked client frames are a protocol error (ws emits 'error' on the refused socket).
    socket!.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    socket!.write(Buffer.from([0x88, 0x02, 0x03, 0xe7]));
    await new Promise<void>((resolve) => socket!.once('close', () => resolve()).resume());
    const healthy = await fetch(`${gateway.httpUrl}/healthz`);
    assert.equal(healthy.status, 200);
    const conn = await connect(gateway, 'ws', { token: await token({ sub: 'after-garbage' }) });
    assert.equal(typeof conn.welcome['client_id'], 'string');
    conn.close();
  });

  it('never writes a token, key or secret to the gateway output', () => {
    assertNoSecretsIn(gateway.process.output());
  });
});
