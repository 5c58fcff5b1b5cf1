/**
 * Token expiry for every connection, on one timer. Two timers per connection (warning, expiry) cost memory at
 * scale; a once-a-second sweep costs a few microseconds per thousand connections and is precise enough for
 * tokens that live minutes.
 *
 * Each key's state is one small integer in one Map: its expiry in whole seconds from the first expiry watched,
 * times two, plus one once warned. The sweep then reads only the Map's own table (a small integer is stored in
 * it, not beside it), where an object per key (and a heap number for a time in milliseconds) cost two or three
 * more cache lines a key, every second, for every connection.
 */
export interface ExpiryDue<K> {
  readonly warn: K[];
  readonly expire: K[];
}

export class ExpiryWatch<K> {
  /** key -> (expiry seconds - #baseSeconds) * 2 + (1 when warned). */
  private readonly entries = new Map<K, number>();
  private readonly warningSeconds: number;
  /** The first expiry watched: later ones are stored relative to it, so they stay small integers. */
  private baseSeconds: number | undefined;

  constructor(warningSeconds: number) {
    this.warningSeconds = warningSeconds;
  }

  /** Watches `key` until `expiresAtSeconds` (epoch seconds, a fraction rounded up); undefined stops watching it. */
  set(key: K, expiresAtSeconds: number | undefined): void {
    if (expiresAtSeconds === undefined) return void this.entries.delete(key);
    const seconds = Math.ceil(expiresAtSeconds);
    this.baseSeconds ??= seconds;
    this.entries.set(key, (seconds - this.baseSeconds) * 2);
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
    if (this.baseSeconds === undefined) return { warn, expire };
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
