/**
 * A token bucket per connection: `rate` messages a second on average, bursts up to `burst`.
 * Time is passed in, so the logic is pure and testable.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly ratePerMs: number;
  private readonly burst: number;

  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    this.ratePerMs = ratePerSecond / 1000;
    this.burst = burst;
    this.tokens = burst;
    this.updatedAt = nowMs;
  }

  /** Takes one token if there is one. */
  take(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.updatedAt);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerMs);
    // A wall clock can step back: keep the latest time seen, or the time up to it would be refilled twice.
    this.updatedAt = Math.max(this.updatedAt, nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Refusals tolerated before a connection counts as abusive: a client that keeps sending into an empty bucket
 * for this many messages is closed (4008), one that backs off after an error keeps its connection.
 */
export interface RateLimitVerdict {
  readonly allowed: boolean;
  readonly close: boolean;
}

export class MessageRateLimiter {
  private readonly bucket: TokenBucket;
  private refusedInARow = 0;
  private readonly maxRefusals: number;

  constructor(ratePerSecond: number, burst: number, nowMs: number, maxRefusals = burst) {
    this.bucket = new TokenBucket(ratePerSecond, burst, nowMs);
    this.maxRefusals = maxRefusals;
  }

  check(nowMs: number): RateLimitVerdict {
    if (this.bucket.take(nowMs)) {
      this.refusedInARow = 0;
      return { allowed: true, close: false };
    }
    this.refusedInARow += 1;
    return { allowed: false, close: this.refusedInARow > this.maxRefusals };
  }
}
