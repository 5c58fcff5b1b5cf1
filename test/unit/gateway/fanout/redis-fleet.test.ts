/**
 * The Redis Streams adapter's pitfalls, pinned without a network (the doc: docs/reference/recovery.md):
 * the signed hash that sends namespaces to a negative stream index when streamCount > 1, and the stream
 * length derived from the recovery window and publish rate. What travels through the stream and what does not is
 * checked against a real Redis in test/e2e/fleet-stream.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashCode as adapterHashCode } from '@socket.io/redis-streams-adapter/dist/util.js';
import { adapterOptions } from '../../../../gateway/src/fanout/redis-fleet.ts';
import { ConfigError, parseConfig } from '../../../../gateway/src/config.ts';

/** The adapter's hash (dist/util.js), reproduced: Java's String.hashCode, a signed 32-bit integer. */
function hashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) {
    hash = hash * 31 + text.charCodeAt(i);
    hash |= 0;
  }
  return hash;
}

/** The adapter's computeStreamName (dist/adapter.js), reproduced. */
function streamOf(namespace: string, streamName: string, streamCount: number): string {
  return streamCount === 1 ? streamName : `${streamName}-${hashCode(namespace) % streamCount}`;
}

/** The streams the adapter reads when it starts (createReadOnlyClients): name-0 .. name-(count-1). */
function streamsRead(streamName: string, streamCount: number): string[] {
  return streamCount === 1 ? [streamName] : Array.from({ length: streamCount }, (_, i) => `${streamName}-${i}`);
}

const fleetOptions = { url: 'redis://127.0.0.1:1', streamName: 'rtgw:stream', maxLen: 13_200, recoveryWindowMs: 120_000 };

describe('the adapter routes a namespace with a signed hash', () => {
  it('our reproduction is the adapter’s hash', () => {
    for (const namespace of ['/', '/admin', '/chat', '/tenant-t1', '/a-rather-long-namespace-name-that-overflows']) {
      assert.equal(hashCode(namespace), adapterHashCode(namespace), namespace);
    }
  });

  it('with streamCount > 1 some namespaces land on a negative index that no node reads', () => {
    // '/notifications' overflows 32 bits to a negative hash, and -1014064871 % 2 is -1 in JavaScript.
    assert.equal(hashCode('/notifications'), -1014064871);
    const stream = streamOf('/notifications', 'rtgw:stream', 2);
    assert.equal(stream, 'rtgw:stream--1');
    assert.ok(!streamsRead('rtgw:stream', 2).includes(stream), 'published to a stream nobody polls: every broadcast lost');
    // Not a rare case: about half of all namespaces are affected, whatever the count.
    const namespaces = Array.from({ length: 1000 }, (_, i) => `/ns-${i}-${'x'.repeat(i % 17)}`);
    for (const count of [2, 3, 8]) {
      const unread = namespaces.filter((ns) => !streamsRead('rtgw:stream', count).includes(streamOf(ns, 'rtgw:stream', count)));
      assert.ok(unread.length > 100, `streamCount ${count}: ${unread.length} of 1000 namespaces unread`);
    }
  });

  it('the fleet always passes streamCount 1, so every namespace is on the one stream every node reads', () => {
    for (const streamName of ['rtgw:stream', 'other', 's']) {
      const options = adapterOptions({ ...fleetOptions, streamName });
      assert.equal(options.streamCount, 1);
      for (const namespace of ['/', '/notifications', '/tenant', '/admin']) {
        assert.deepEqual(streamsRead(options.streamName, options.streamCount), [streamOf(namespace, options.streamName, options.streamCount)]);
      }
    }
  });

  it('passes maxLen through, keeps messages plaintext and names channels and sessions after the stream', () => {
    assert.deepEqual(adapterOptions(fleetOptions), {
      streamName: 'rtgw:stream',
      streamCount: 1,
      maxLen: 13_200,
      channelPrefix: 'rtgw:stream',
      sessionKeyPrefix: 'rtgw:stream:session:',
      onlyPlaintext: true,
    });
    assert.equal(adapterOptions({ ...fleetOptions, sessionKeyPrefix: 'custom:' }).sessionKeyPrefix, 'custom:');
  });
});

describe('the stream holds the recovery window', () => {
  const SECRET = 'a-test-secret-of-at-least-32-characters';
  const config = (env: Record<string, string>) => parseConfig({ JWT_SECRET_KEY: SECRET, ...env });
  const problems = (env: Record<string, string>): readonly string[] => {
    try {
      config(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems;
    }
    assert.fail(`expected ${JSON.stringify(env)} to be refused`);
  };

  it('derives maxLen as window x rate with 10% headroom (defaults: 120 s x 100/s)', () => {
    assert.equal(config({}).redis.streamMaxLen, 13_200);
    assert.equal(config({ RECOVERY_WINDOW_SECONDS: '300', RECOVERY_MAX_PUBLISH_RATE: '2000' }).redis.streamMaxLen, 660_000);
    assert.equal(config({ RECOVERY_WINDOW_SECONDS: '7', RECOVERY_MAX_PUBLISH_RATE: '3' }).redis.streamMaxLen, 1000, 'never below 1000 entries');
    assert.equal(config({ RECOVERY_WINDOW_SECONDS: '0' }).redis.streamMaxLen, 1000, 'recovery off still needs a stream for fan-out');
  });

  it('accepts a REDIS_STREAM_MAXLEN that holds the window, and refuses one that does not, saying what it needs', () => {
    assert.equal(config({ RECOVERY_WINDOW_SECONDS: '60', RECOVERY_MAX_PUBLISH_RATE: '100', REDIS_STREAM_MAXLEN: '6000' }).redis.streamMaxLen, 6000);
    assert.equal(config({ REDIS_STREAM_MAXLEN: '50000' }).redis.streamMaxLen, 50_000);
    const refused = problems({ RECOVERY_WINDOW_SECONDS: '60', RECOVERY_MAX_PUBLISH_RATE: '100', REDIS_STREAM_MAXLEN: '5999' });
    assert.equal(refused.length, 1);
    assert.match(refused[0]!, /^REDIS_STREAM_MAXLEN: 5999 entries cannot hold RECOVERY_WINDOW_SECONDS=60 at RECOVERY_MAX_PUBLISH_RATE=100\/s \(needs at least 6000\)/);
    // The adapter's own default (10,000) is too short for the default window, when that window is asked for.
    assert.match(problems({ RECOVERY_WINDOW_SECONDS: '120', REDIS_STREAM_MAXLEN: '10000' })[0]!, /needs at least 12000/);
    // A length alone sets the window: what it holds at the rate (the operator's `streamMaxLength`).
    const lengthOnly = config({ REDIS_STREAM_MAXLEN: '10000' });
    assert.deepEqual([lengthOnly.redis.streamMaxLen, lengthOnly.recoveryWindowSeconds], [10_000, 100]);
    assert.equal(config({ REDIS_STREAM_MAXLEN: '10000', RECOVERY_MAX_PUBLISH_RATE: '50' }).recoveryWindowSeconds, 200);
  });

  it('refuses a rate or a window outside its range', () => {
    assert.match(problems({ RECOVERY_MAX_PUBLISH_RATE: '0' })[0]!, /^RECOVERY_MAX_PUBLISH_RATE: 0 is outside/);
    assert.match(problems({ RECOVERY_WINDOW_SECONDS: '86401' })[0]!, /^RECOVERY_WINDOW_SECONDS: 86401 is outside/);
    assert.match(problems({ REDIS_STREAM_MAXLEN: '99' })[0]!, /^REDIS_STREAM_MAXLEN: 99 is outside/);
  });
});
