/**
 * Token expiry for every connection, on one timer. Two timers per connection (warning, expiry) cost memory at
 * scale; a once-a-second sweep costs a few microseconds per thousand connections and is precise enough for
 * tokens that live minutes.
 *
 * Each key's state is one small integer in one Map: its expiry in whole seconds from when the watch started,
 * times two, plus one once warned (clamped to ±2^28 s, about eight years, so that every entry stays a small
 * integer). The sweep then reads only the Map's own table (a small integer is stored in it, not beside it), where
 * an object per key (and a heap number for a time in milliseconds) cost two or three more cache lines a key, every
 * second, for every connection.
 */
export interface ExpiryDue<K> {
  readonly warn: K[];
  readonly expire: K[];
}

/** How far from the base an expiry is kept: 2^28 s, about eight years, so that twice it is still a small integer. */
const LIMIT_SECONDS = 2 ** 28;

export class ExpiryWatch<K> {
  /** key -> (expiry seconds - baseSeconds) * 2 + (1 when warned). */
  private readonly entries = new Map<K, number>();
  private readonly warningSeconds: number;
  /** When the watch started (epoch seconds): expiries are stored relative to it. */
  private readonly baseSeconds: number;

  constructor(warningSeconds: number, nowMs: number) {
    this.warningSeconds = warningSeconds;
    this.baseSeconds = Math.floor(nowMs / 1000);
  }

  /**
   * Watches `key` until `expiresAtSeconds` (epoch seconds, a fraction rounded up; NaN expires at the next
   * sweep); undefined stops watching it.
   */
  set(key: K, expiresAtSeconds: number | undefined): void {
    if (expiresAtSeconds === undefined) return void this.entries.delete(key);
    const offset = Number.isNaN(expiresAtSeconds) ? -LIMIT_SECONDS : Math.ceil(expiresAtSeconds) - this.baseSeconds;
    this.entries.set(key, Math.min(LIMIT_SECONDS, Math.max(-LIMIT_SECONDS, offset)) * 2);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** `to` takes `from`'s place, warning state included (a connection moved to another transport). */
  move(from: K, to: K): void {
    const entry = this.entries.get(from);
    if (entry === undefined) return;
    this.entries.delete(from);
    this.entries.set(to, entry);
  }

  get size(): number {
    return this.entries.size;
  }

  /** What is due at `nowMs`: keys to warn (once each) and keys expired (no longer watched). */
  due(nowMs: number): ExpiryDue<K> {
    const warn: K[] = [];
    const expire: K[] = [];
    // Compared in the entries' units: whole seconds from the base, times two (the warned bit below them).
    const now = (nowMs / 1000 - this.baseSeconds) * 2;
    const warnFrom = now + this.warningSeconds * 2;
    for (const [key, entry] of this.entries) {
      const expiry = entry - (entry & 1);
      if (now >= expiry) {
        expire.push(key);
        this.entries.delete(key);
      } else if ((entry & 1) === 0 && warnFrom >= expiry) {
        this.entries.set(key, entry + 1);
        warn.push(key);
      }
    }
    return { warn, expire };
  }
}
