import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../../../gateway/src/config.ts';

const env = (extra: Record<string, string> = {}) => ({ JWT_SECRET_KEY: 'a-test-secret-of-at-least-32-characters', ...extra });

function problemsOf(environment: Record<string, string>): readonly string[] {
  try {
    parseConfig(environment);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(environment)} to be refused`);
}

describe('config: the NATS bridge', () => {
  it('defaults to core NATS with the rtgw-bridge queue group', () => {
    const config = parseConfig(env({ NATS_URL: 'nats://nats:4222' }));
    assert.equal(config.nats.queueGroup, 'rtgw-bridge');
    assert.equal(config.nats.jetstream, undefined);
  });

  it('reads NATS_QUEUE_GROUP, NATS_JETSTREAM_STREAM and NATS_JETSTREAM_DURABLE', () => {
    const config = parseConfig(env({ NATS_URL: 'nats://nats:4222', NATS_QUEUE_GROUP: 'gw_1', NATS_JETSTREAM_STREAM: 'SAHOOL', NATS_JETSTREAM_DURABLE: 'rtgw-bridge' }));
    assert.equal(config.nats.queueGroup, 'gw_1');
    assert.deepEqual(config.nats.jetstream, { stream: 'SAHOOL', durable: 'rtgw-bridge' });
  });

  it('reads NATS_CREDS_FILE (the path the operator mounts a .creds Secret at), and wants NATS_URL with it', () => {
    assert.equal(parseConfig(env({ NATS_URL: 'nats://nats:4222', NATS_CREDS_FILE: '/var/run/nats/nats.creds' })).nats.credsFile, '/var/run/nats/nats.creds');
    assert.equal(parseConfig(env({ NATS_URL: 'nats://nats:4222' })).nats.credsFile, undefined);
    assert.deepEqual(problemsOf(env({ NATS_CREDS_FILE: '/x.creds' })), ['NATS_CREDS_FILE: needs NATS_URL']);
  });

  it('wants both JetStream names or neither', () => {
    for (const half of [{ NATS_JETSTREAM_STREAM: 'S' }, { NATS_JETSTREAM_DURABLE: 'd' }] as Record<string, string>[]) {
      const problems = problemsOf(env({ NATS_URL: 'nats://nats:4222', ...half }));
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /NATS_JETSTREAM_STREAM, NATS_JETSTREAM_DURABLE: set both/);
    }
  });

  it('wants NATS_URL for JetStream', () => {
    assert.deepEqual(problemsOf(env({ NATS_JETSTREAM_STREAM: 'S', NATS_JETSTREAM_DURABLE: 'd' })), ['NATS_JETSTREAM_STREAM: needs NATS_URL']);
  });

  for (const [variable, value] of [
    ['NATS_JETSTREAM_STREAM', 'a.b'],
    ['NATS_JETSTREAM_DURABLE', 'a*'],
    ['NATS_JETSTREAM_DURABLE', 'x>'],
    ['NATS_QUEUE_GROUP', 'a b'],
    ['NATS_JETSTREAM_STREAM', 'x'.repeat(129)],
  ] as const) {
    it(`refuses ${variable}=${value.slice(0, 20)}`, () => {
      const both = { NATS_JETSTREAM_STREAM: 'S', NATS_JETSTREAM_DURABLE: 'd' };
      const problems = problemsOf(env({ NATS_URL: 'nats://nats:4222', ...(variable === 'NATS_QUEUE_GROUP' ? {} : both), [variable]: value }));
      assert.equal(problems.length, 1, problems.join('; '));
      assert.ok(problems[0]!.startsWith(`${variable}:`), problems[0]);
    });
  }

  it('accepts subjects with wildcards and refuses malformed ones', () => {
    assert.deepEqual(parseConfig(env({ NATS_SUBJECTS: 'sahool.>,a.*.b,x' })).nats.subjects, ['sahool.>', 'a.*.b', 'x']);
    for (const subject of ['a..b', 'a.>.b', 'a.b>', 'a.*x', '.a', 'a.']) {
      const problems = problemsOf(env({ NATS_SUBJECTS: subject }));
      assert.deepEqual(problems, [`NATS_SUBJECTS: "${subject}" is not a valid subject`]);
    }
  });

  it('refuses a subject list with no subject', () => {
    assert.deepEqual(problemsOf(env({ NATS_SUBJECTS: ' , ' })), ['NATS_SUBJECTS: lists no subject']);
  });
});
