/**
 * `make run` for real: the dev server prints a token, a service key and three ways to try it. Each printed
 * command is taken from its output and run as printed: seed 000's wscat walk-through (the real wscat binary,
 * driven through stdin), the socket.io-client one-liner, and the curl broadcast that reaches both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { NODE, REPO_ROOT } from '../../harness/gateway.ts';
import type { Json } from '../../harness/clients.ts';
import { freePort } from '../../harness/ports.ts';
import { start, waitFor, type Started } from '../../harness/process.ts';

const BIN = join(REPO_ROOT, 'node_modules', '.bin');

/** Every line of a process's output that parses as a JSON object, with what precedes it on the line. */
function jsonLines(output: string): Array<{ prefix: string; json: Json }> {
  const found: Array<{ prefix: string; json: Json }> = [];
  for (const line of output.split('\n')) {
    const brace = line.indexOf('{');
    if (brace < 0) continue;
    try {
      const json: unknown = JSON.parse(line.slice(brace));
      if (typeof json === 'object' && json !== null) found.push({ prefix: line.slice(0, brace).trim(), json: json as Json });
    } catch {
      // not JSON: a log line fragment or prose
    }
  }
  return found;
}

/** Waits for the first JSON line of `child` after `from` output characters that matches. */
function nextJson(child: Started, what: string, match: (json: Json, prefix: string) => boolean, from = 0): Promise<Json> {
  return waitFor(`${what} (output so far:\n${child.output().slice(-2000)})`, () =>
    jsonLines(child.output().slice(from)).find(({ json, prefix }) => match(json, prefix))?.json, 10000, 20);
}

describe('make run (gateway/src/dev.ts) and the commands it prints', () => {
  let dev: Started;
  let printed: string;
  const children: Started[] = [];
  before(async () => {
    const port = await freePort();
    dev = start(join(BIN, 'node'), ['gateway/src/dev.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '', PORT: String(port), LOG_LEVEL: 'warn' },
    });
    printed = await waitFor('the dev server to print its instructions', () => {
      if (dev.child.exitCode !== null) throw new Error(`dev server exited:\n${dev.output()}`);
      return dev.output().includes('Metrics:') ? dev.output() : undefined;
    }, 20000);
  });
  after(async () => {
    await Promise.all(children.map((child) => child.stop(2000)));
    await dev.stop();
  });

  it('prints DEV_TOKEN= and SERVICE_KEY= lines', () => {
    assert.match(printed, /^DEV_TOKEN=[\w-]+\.[\w-]+\.[\w-]+$/m);
    assert.match(printed, /^SERVICE_KEY=\S+$/m);
  });

  it('seed 000 walk-through: wscat subscribes and pings, socket.io subscribes, curl broadcasts to both', async () => {
    const token = /^DEV_TOKEN=(\S+)$/m.exec(printed)![1]!;
    const serviceKey = /^SERVICE_KEY=(\S+)$/m.exec(printed)![1]!;

    // wscat, as printed (without npx: the devDependency is the same binary).
    const wscatLine = /npx wscat -c "([^"]+)" -H "([^"]+)"/.exec(printed);
    assert.ok(wscatLine, 'the wscat command is printed');
    assert.equal(wscatLine[2], `Authorization: Bearer ${token}`);
    assert.match(wscatLine[1]!, /^ws:\/\/localhost:\d+\/ws\?tenant_id=demo$/);
    const wscat = start(join(BIN, 'wscat'), ['-c', wscatLine[1]!, '-H', wscatLine[2]!], {
      cwd: REPO_ROOT,
      env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.push(wscat);
    const welcome = await nextJson(wscat, 'the connected welcome in wscat', (m) => m['type'] === 'connected');
    assert.deepEqual(welcome['user'], { user_id: 'demo-user', roles: ['publisher'] });
    assert.deepEqual(welcome['tenant'], { tenant_id: 'demo' });

    // The walk-through's two lines, typed as printed (after the "> " prompt).
    const typed = [...printed.matchAll(/^\s*> (\{.*\})$/gm)].map((m) => m[1]!);
    assert.deepEqual(typed, ['{"type":"subscribe","topics":["weather","alerts"]}', '{"type":"ping"}']);
    let mark = wscat.output().length;
    wscat.child.stdin!.write(`${typed[0]}\n`);
    const subscribed = await nextJson(wscat, 'subscribed in wscat', (m) => m['type'] === 'subscribed', mark);
    assert.deepEqual(subscribed['topics'], ['weather', 'alerts']);
    assert.deepEqual(subscribed['failed'], []);
    mark = wscat.output().length;
    wscat.child.stdin!.write(`${typed[1]}\n`);
    const pong = await nextJson(wscat, 'pong in wscat', (m) => m['type'] === 'pong', mark);
    assert.equal(typeof pong['timestamp'], 'string');

    // The socket.io one-liner, run as printed by a shell (node is Node 24 first on the PATH, as in make).
    const oneLiner = /^\s*(node -e '.*' \S+)$/m.exec(printed);
    assert.ok(oneLiner, 'the socket.io one-liner is printed');
    const sio = start('bash', ['-c', `exec ${oneLiner[1]}`], {
      cwd: REPO_ROOT,
      env: { PATH: `${BIN}:${process.env['PATH'] ?? ''}`, HOME: process.env['HOME'] ?? '' },
    });
    children.push(sio);
    const ack = await nextJson(sio, 'the subscribe ack from the one-liner', (m, prefix) => prefix === 'ack');
    assert.equal(ack['type'], 'subscribed');
    assert.deepEqual(ack['topics'], ['weather']);
    const sioWelcome = await nextJson(sio, 'the connected event from the one-liner', (m, prefix) => prefix === 'connected');
    assert.deepEqual(sioWelcome['user']['user_id'], 'demo-user');

    // The curl broadcast, as printed (two lines joined by the backslash).
    const curl = /^\s*(curl -s -X POST .*\\\n.*)$/m.exec(printed);
    assert.ok(curl, 'the curl command is printed');
    assert.ok(curl[1]!.includes(`Bearer ${serviceKey}`));
    const wscatMark = wscat.output().length;
    const sioMark = sio.output().length;
    const curlRun = start('bash', ['-c', curl[1]!], { cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '' } });
    assert.equal(await curlRun.exited, 0, curlRun.output());
    const answer = JSON.parse(curlRun.output()) as Json;
    assert.equal(answer['status'], 'sent');
    assert.equal(answer['recipients'], 2);

    for (const [child, from] of [[wscat, wscatMark], [sio, sioMark]] as const) {
      const event = await nextJson(child, 'the broadcast event', (m) => m['type'] === 'event', from);
      assert.equal(event['event_type'], 'weather.alert');
      assert.equal(event['priority'], 'high');
      assert.equal(event['message'], 'Important weather alert');
      assert.deepEqual(event['data'], { event_type: 'weather.alert', text: 'Storm expected' });
    }

    // Closing stdin ends wscat's session.
    wscat.child.stdin!.end();
    assert.equal(await wscat.exited, 0);
  });

  it('serves the printed metrics and health URLs', async () => {
    const metricsUrl = /Metrics: curl -s (\S+)/.exec(printed)![1]!;
    const healthUrl = /Health: curl -s (\S+)/.exec(printed)![1]!;
    const metrics = await fetch(metricsUrl);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^rtgw_connections\{transport="ws"\} \d+$/m);
    const health = (await (await fetch(healthUrl)).json()) as Json;
    assert.equal(health['status'], 'healthy');
  });
});
