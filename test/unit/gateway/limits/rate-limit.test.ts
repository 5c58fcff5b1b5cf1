import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageRateLimiter, TokenBucket } from '../../../../gateway/src/limits/rate-limit.ts';

/** Takes `count` tokens at `at`; returns how many were granted. */
function drain(bucket: TokenBucket, at: number, count: number): number {
  let granted = 0;
  for (let i = 0; i < count; i += 1) if (bucket.take(at)) granted += 1;
  return granted;
}

describe('TokenBucket', () => {
  it('starts full: a burst of `burst` messages at once, then nothing', () => {
    const bucket = new TokenBucket(10, 5, 1_000);
    assert.equal(drain(bucket, 1_000, 5), 5);
    assert.equal(bucket.take(1_000), false);
  });

  it('refills at `rate` tokens a second', () => {
    const bucket = new TokenBucket(10, 5, 0);
    drain(bucket, 0, 5);
    assert.equal(bucket.take(99), false, 'one token takes 100 ms at 10/s');
    assert.equal(bucket.take(100), true);
    assert.equal(bucket.take(100), false);
    assert.equal(drain(bucket, 400, 10), 3, '300 ms more gives three tokens');
  });

  it('accumulates fractions of a token across calls', () => {
    const bucket = new TokenBucket(4, 1, 0);
    assert.equal(bucket.take(0), true);
    // 250 ms a token: 100 + 100 ms is not enough, the next 50 ms is.
    assert.equal(bucket.take(100), false);
    assert.equal(bucket.take(200), false);
    assert.equal(bucket.take(250), true);
  });

  it('never holds more than `burst`, however long it was idle', () => {
    const bucket = new TokenBucket(10, 3, 0);
    assert.equal(drain(bucket, 3_600_000, 10), 3);
  });

  it('sustains exactly `rate` messages a second over time', () => {
    const bucket = new TokenBucket(20, 40, 0);
    drain(bucket, 0, 40);
    let granted = 0;
    for (let t = 1; t <= 10_000; t += 1) if (bucket.take(t)) granted += 1;
    assert.equal(granted, 200);
  });

  it('gives no tokens for a clock that goes backwards', () => {
    const bucket = new TokenBucket(10, 2, 10_000);
    drain(bucket, 10_000, 2);
    assert.equal(bucket.take(5_000), false);
    assert.equal(bucket.take(10_000), false, 'time already accounted for must not refill twice');
    assert.equal(bucket.take(10_100), true);
  });
});

describe('MessageRateLimiter', () => {
  it('allows the burst and refuses the next without closing', () => {
    const limiter = new MessageRateLimiter(10, 3, 0);
    for (let i = 0; i < 3; i += 1) assert.deepEqual(limiter.check(0), { allowed: true, close: false });
    assert.deepEqual(limiter.check(0), { allowed: false, close: false });
  });

  it('closes on the refusal after `maxRefusals` refusals in a row', () => {
    const limiter = new MessageRateLimiter(10, 2, 0, 3);
    limiter.check(0);
    limiter.check(0);
    const verdicts = [1, 2, 3, 4, 5].map(() => limiter.check(0));
    assert.deepEqual(verdicts, [
      { allowed: false, close: false },
      { allowed: false, close: false },
      { allowed: false, close: false },
      { allowed: false, close: true },
      { allowed: false, close: true },
    ]);
  });

  it('tolerates `burst` refusals in a row by default', () => {
    const limiter = new MessageRateLimiter(1, 4, 0);
    for (let i = 0; i < 4; i += 1) assert.equal(limiter.check(0).allowed, true);
    for (let i = 0; i < 4; i += 1) assert.deepEqual(limiter.check(0), { allowed: false, close: false });
    assert.deepEqual(limiter.check(0), { allowed: false, close: true });
  });

  it('forgives earlier refusals once a message is allowed again', () => {
    const limiter = new MessageRateLimiter(10, 1, 0, 2);
    assert.equal(limiter.check(0).allowed, true);
    assert.deepEqual(limiter.check(0), { allowed: false, close: false });
    assert.deepEqual(limiter.check(0), { allowed: false, close: false });
    // A client that backs off gets a token and a clean slate.
    assert.deepEqual(limiter.check(100), { allowed: true, close: false });
    assert.deepEqual(limiter.check(100), { allowed: false, close: false });
    assert.deepEqual(limiter.check(100), { allowed: false, close: false });
    assert.deepEqual(limiter.check(100), { allowed: false, close: true });
  });

  it('with maxRefusals 0 closes on the first refusal', () => {
    const limiter = new MessageRateLimiter(10, 1, 0, 0);
    assert.equal(limiter.check(0).allowed, true);
    assert.deepEqual(limiter.check(0), { allowed: false, close: true });
  });
});
