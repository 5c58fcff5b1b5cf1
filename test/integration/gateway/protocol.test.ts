/**
 * Seed 000's client protocol, message by message, over raw /ws and socket.io alike: on /ws the reply is the
 * next frame, on socket.io the acknowledgement carries the same object.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from '../../harness/gateway.ts';
import type { Json } from '../../harness/clients.ts';
import { ISO_TIME, payload, TRANSPORTS, connectPeer, type Peer, type Transport } from '../../harness/peers.ts';

/** The reply with its timestamp checked and replaced by 'T', for deepEqual. */
function stamped(reply: Json | null | undefined): Json {
  assert.ok(reply, 'expected a reply');
  assert.match(String(reply['timestamp']), ISO_TIME);
  return { ...payload(reply), timestamp: 'T' };
}

describe('client protocol (seed 000)', () => {
  let gateway: GatewayProcess;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway.stop());

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, () => {
      const other: Transport = transport === 'ws' ? 'socketio' : 'ws';
      const open: Peer[] = [];
      const peer = async (sub: string, on: Transport = transport, extra: { roles?: string[]; tenant?: string } = {}) => {
        const connected = await connectPeer(gateway, { transport: on, sub: `${transport}-${sub}`, ...extra });
        open.push(connected);
        return connected;
      };
      after(() => {
        for (const p of open) p.close();
      });

      it('welcomes with connected: client_id, user, tenant and the automatic rooms', async () => {
        const alice = await peer('alice', transport, { roles: ['viewer'] });
        const welcome = stamped(alice.welcome);
        assert.equal(typeof welcome['client_id'], 'string');
        assert.ok(welcome['client_id'].length > 0);
        assert.equal(welcome['type'], 'connected');
        assert.deepEqual(welcome['user'], { user_id: `${transport}-alice`, roles: ['viewer'] });
        assert.deepEqual(welcome['tenant'], { tenant_id: 't1' });
        assert.deepEqual([...welcome['rooms']].sort(), ['tenant:t1', `user:${transport}-alice`]);
        const second = await peer('alice');
        assert.notEqual(second.welcome['client_id'], alice.welcome['client_id']);
      });

      it('subscribe answers subscribed, listing what failed; the subscription receives events', async () => {
        const bob = await peer('bob');
        const reply = await bob.request('subscribe', { topics: ['field:123', 'weather', 'alerts'] }, 'subscribed');
        assert.deepEqual(stamped(reply), {
          type: 'subscribed',
          topics: ['field:123', 'weather', 'alerts'],
          failed: [],
          errors: [],
          timestamp: 'T',
          message_ar: 'تم الاشتراك في 3 موضوع',
        });

        const mixed = await bob.request('subscribe', { topics: ['farm:9', 'user:somebody-else', 'bogus:1', 'tenant:t2'] }, 'subscribed');
        assert.deepEqual(mixed?.['topics'], ['farm:9']);
        assert.deepEqual(mixed?.['failed'], ['user:somebody-else', 'bogus:1', 'tenant:t2']);
        assert.deepEqual(mixed?.['errors'].map((e: Json) => e['code']), ['forbidden', 'invalid_room', 'forbidden']);

        if (transport === 'socketio') {
          // Without an acknowledgement the reply comes as a `subscribed` event.
          bob.send('subscribe', { topics: ['field:no-ack'] });
          assert.deepEqual((await bob.inbox.next('subscribed'))['topics'], ['field:no-ack']);
        }

        const sent = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'field:123', message: { event_type: 'field.updated', field_id: '123' } } });
        assert.equal(sent.body.recipients, 1);
        const event = await bob.inbox.next('event');
        assert.equal(event['event_type'], 'field.updated');
        assert.deepEqual(event['data'], { event_type: 'field.updated', field_id: '123' });
      });

      it('unsubscribe answers unsubscribed and stops delivery', async () => {
        const carol = await peer('carol');
        await carol.request('subscribe', { topics: ['field:u1', 'weather'] }, 'subscribed');
        const reply = await carol.request('unsubscribe', { topics: ['field:u1'] }, 'unsubscribed');
        assert.deepEqual(stamped(reply), { type: 'unsubscribed', topics: ['field:u1'], timestamp: 'T', message_ar: 'تم إلغاء الاشتراك من 1 موضوع' });
        // field:u1 is empty now (each transport's carol is a different user, but both left it).
        const sent = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'field:u1', message: { n: 1 } } });
        assert.equal(sent.body.recipients, 0);
        // The automatic rooms stay.
        const automatic = await carol.request('unsubscribe', { topics: ['tenant:t1'] }, 'unsubscribed');
        assert.deepEqual(automatic?.['topics'], []);
      });

      it('join_room answers room_joined and leave_room room_left; errors name the request', async () => {
        const dan = await peer('dan');
        assert.deepEqual(stamped(await dan.request('join_room', { room: 'chat:456' }, 'room_joined')), { type: 'room_joined', room: 'chat:456', timestamp: 'T' });
        const members = await gateway.api('/broadcast', { json: { tenant_id: 't1', room: 'chat:456', message: { n: 1 } } });
        assert.equal(members.body.recipients, 1);
        assert.deepEqual(stamped(await dan.request('leave_room', { room: 'chat:456' }, 'room_left')), { type: 'room_left', room: 'chat:456', timestamp: 'T' });

        const invalid = await dan.request('join_room', { room: 'nope' }, 'room_joined');
        assert.equal(invalid?.['type'], 'error');
        assert.equal(invalid?.['code'], 'invalid_room');
        assert.equal(invalid?.['request_type'], 'join_room');
        const automatic = await dan.request('leave_room', { room: `user:${transport}-dan` }, 'room_left');
        assert.equal(automatic?.['code'], 'forbidden');
        assert.equal(automatic?.['request_type'], 'leave_room');
      });

      it('broadcast reaches the other members on both transports, not the sender, not non-members', async () => {
        const room = `chat:room-${transport}`;
        const sender = await peer('erin');
        const sameTransport = await peer('fay');
        const otherTransport = await peer('gus', other);
        const outsider = await peer('hal', other);
        for (const member of [sender, sameTransport, otherTransport]) await member.request('join_room', { room }, 'room_joined');

        const message = { action: 'update', data: { field: 'north', moisture: 0.31 } };
        sender.send('broadcast', { room, message });
        for (const member of [sameTransport, otherTransport]) {
          const received = await member.inbox.next('message');
          assert.deepEqual(stamped(received), { type: 'message', room, from: { user_id: `${transport}-erin` }, message, timestamp: 'T' });
        }
        await Promise.all([sender.settle(), outsider.settle()]);
        assert.deepEqual(sender.inbox.ofType('message'), []);
        assert.deepEqual(outsider.inbox.ofType('message'), []);
      });

      it('broadcast is acknowledged empty, and refused outside the room or to a read-only room', async () => {
        const ivy = await peer('ivy');
        await ivy.request('join_room', { room: 'chat:ack' }, 'room_joined');
        if (transport === 'socketio') {
          const ack = await ivy.request('broadcast', { room: 'chat:ack', message: 'hi' });
          assert.ok(ack === null || ack === undefined, `an empty ack, got ${JSON.stringify(ack)}`);
        }
        const notMember = await ivy.request('broadcast', { room: 'chat:elsewhere', message: 'hi' }, 'never');
        assert.equal(notMember?.['code'], 'not_in_room');
        assert.equal(notMember?.['request_type'], 'broadcast');
        await ivy.request('subscribe', { topics: ['weather'] }, 'subscribed');
        const readOnly = await ivy.request('broadcast', { room: 'weather', message: 'hi' }, 'never');
        assert.equal(readOnly?.['code'], 'forbidden');
        const noMessage = await ivy.request('broadcast', { room: 'chat:ack' }, 'never');
        assert.equal(noMessage?.['code'], 'invalid_message');
      });

      it('ping answers pong', async () => {
        const jon = await peer('jon');
        assert.deepEqual(stamped(await jon.request('ping', {}, 'pong')), { type: 'pong', timestamp: 'T' });
      });

      it('typing and read reach the other members as chat.typing and chat.read events', async () => {
        const room = `chat:signals-${transport}`;
        const kai = await peer('kai');
        const lou = await peer('lou', other);
        for (const member of [kai, lou]) await member.request('join_room', { room }, 'room_joined');

        kai.send('typing', { room, typing: true });
        const typing = await lou.inbox.next('event');
        assert.deepEqual(stamped(typing), {
          type: 'event',
          event_type: 'chat.typing',
          priority: 'low',
          message: 'User typing',
          message_ar: 'المستخدم يكتب',
          data: { room, user_id: `${transport}-kai`, typing: true },
          subject: null,
          timestamp: 'T',
        });
        kai.send('read', { room, message_id: 'msg_789' });
        const read = await lou.inbox.next('event');
        assert.equal(read['event_type'], 'chat.read');
        assert.equal(read['priority'], 'low');
        assert.equal(read['message'], 'Message read');
        assert.deepEqual(read['data'], { room, user_id: `${transport}-kai`, message_id: 'msg_789' });
        await kai.settle();
        assert.deepEqual(kai.inbox.ofType('event'), []);

        const outside = await kai.request('typing', { room: 'chat:not-joined', typing: true }, 'never');
        assert.equal(outside?.['code'], 'not_in_room');
        const notChat = await kai.request('read', { room: 'tenant:t1', message_id: 'm1' }, 'never');
        assert.equal(notChat?.['code'], 'forbidden');
      });
    });
  }
});
