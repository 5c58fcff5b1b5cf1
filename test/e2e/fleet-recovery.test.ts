import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inbox, ResumingWsClient, sioClient, sioConnected, type SioClient } from '../harness/clients.ts';
import { waitFor } from '../harness/process.ts';
import { startHaproxy, type Service } from '../harness/services.ts';
import { hsToken } from '../harness/tokens.ts';
import { startFleet, type Fleet } from './fleet.ts';

const TOTAL = 60;

/** The sequence numbers of the test events a client received, in order. */
function sequence(inbox: Inbox): number[] {
  return inbox.messages.filter((m) => m['type'] === 'event' && typeof m['data']?.['seq'] === 'number').map((m) => m['data']['seq'] as number);
}

async function connectionsOf(fleet: Fleet, index: number): Promise<number> {
  const res = await fleet.gateways[index]!.api('/metrics', { serviceKey: null });
  let total = 0;
  for (const match = /^rtgw_connections\{[^}]*\} (\d+)$/gm, text = String(res.body); ;) {
    const found = match.exec(text);
    if (!found) break;
    total += Number(found[1]);
  }
  return total;
}

describe('fleet: nothing lost or doubled when a replica dies or drains', () => {
  let fleet: Fleet;
  let proxy: Service;
  before(async () => {
    fleet = await startFleet(3);
    proxy = await startHaproxy(fleet.gateways.map((g, i) => ({ name: `g${i}`, port: g.port })));
  });
  after(async () => {
    await proxy.stop();
    await fleet.stop();
  });

  for (const mode of ['SIGKILL', 'SIGTERM'] as const) {
    it(`every client that reconnects within the window gets every event once, in order (${mode})`, async () => {
      const tenant = `t-${mode}`;
      const token = await hsToken({ sub: 'watcher', tenant });
      const lb = proxy.url.replace('http', 'ws');
      const sio: SioClient[] = [];
      const raw: ResumingWsClient[] = [];
      for (let i = 0; i < 6; i++) {
        const client = sioClient(proxy.url, {
          auth: { token }, query: { tenant_id: tenant }, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500,
        });
        await sioConnected(client);
        await client.request('subscribe', { topics: ['field:1'] });
        sio.push(client);
        const resuming = new ResumingWsClient(`${lb}/ws?tenant_id=${tenant}`, { authorization: `Bearer ${token}` });
        await resuming.connect();
        await resuming.inbox.next('connected');
        resuming.send({ type: 'subscribe', topics: ['field:1'] });
        await resuming.inbox.next('subscribed');
        raw.push(resuming);
      }
      // The victim: the busier of replicas 1 and 2 (the publisher talks to replica 0).
      const counts = [await connectionsOf(fleet, 1), await connectionsOf(fleet, 2)];
      const victimIndex = counts[0]! >= counts[1]! ? 1 : 2;
      const victim = fleet.gateways[victimIndex]!;
      assert.ok(Math.max(...counts) > 0, 'some clients are on the victim');

      for (let seq = 1; seq <= TOTAL; seq++) {
        const res = await fleet.gateways[0]!.api('/broadcast', { json: { tenant_id: tenant, field_id: '1', message: { event_type: 'field.updated', seq } } });
        assert.equal(res.status, 200);
        if (seq === 20) {
          if (mode === 'SIGKILL') victim.process.kill('SIGKILL');
          else victim.process.kill('SIGTERM');
        }
        await sleep(25);
      }
      const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
      for (const [i, client] of [...sio.map((c) => c.inbox), ...raw.map((c) => c.inbox)].entries()) {
        await waitFor(`client ${i} to have all ${TOTAL} events`, () => sequence(client).length >= TOTAL, 30000);
      }
      await sleep(500);
      for (const [i, inbox] of [...sio.map((c) => c.inbox), ...raw.map((c) => c.inbox)].entries()) {
        assert.deepEqual(sequence(inbox), expected, `client ${i}: lost or doubled events`);
      }
      assert.ok(raw.some((c) => c.recovered > 0) || sio.some((c) => c.socket.recovered), 'at least one client recovered a session');
      // The survivors counted those recoveries, and none failed.
      let recovered = 0;
      for (const gateway of fleet.gateways.filter((g) => g !== victim)) {
        const text = String((await gateway.api('/metrics', { serviceKey: null })).body);
        for (const m of text.matchAll(/^rtgw_session_recoveries_total\{[^}]*result="(\w+)"[^}]*\} (\d+)$/gm)) {
          if (m[1] === 'recovered') recovered += Number(m[2]);
          else assert.equal(Number(m[2]), 0, `failed recoveries: ${m[0]}`);
        }
      }
      assert.ok(recovered > 0, 'rtgw_session_recoveries_total{result="recovered"} counted the recoveries');
      for (const client of sio) client.close();
      for (const client of raw) client.close();
      await victim.process.exited;
      // Bring the fleet back to three for the next case.
      const replacement = await fleet.add();
      fleet.gateways.splice(victimIndex, 1);
      fleet.gateways.splice(victimIndex, 0, fleet.gateways.pop()!);
      void replacement;
    });
  }
});
