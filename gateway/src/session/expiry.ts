/**
 * Token expiry for every connection, on one timer. Two timers per connection (warning, expiry) cost memory at
 * scale; a once-a-second sweep costs a few microseconds per thousand connections and is precise enough for
 * tokens that live minutes.
 */
export interface ExpiryDue<K> {
  readonly warn: K[];
  readonly expire: K[];
}

export class ExpiryWatch<K> {
  private readonly entries = new Map<K, { expiresAtMs: number; warned: boolean }>();
  private readonly warningMs: number;

  constructor(warningSeconds: number) {
    this.warningMs = warningSeconds * 1000;
  }

  /** Watches `key` until `expiresAtSeconds` (epoch seconds); undefined stops watching it. */
  set(key: K, expiresAtSeconds: number | undefined): void {
    if (expiresAtSeconds === undefined) this.entries.delete(key);
    else this.entries.set(key, { expiresAtMs: expiresAtSeconds * 1000, warned: false });
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
    for (const [key, entry] of this.entries) {
      if (nowMs >= entry.expiresAtMs) {
        expire.push(key);
        this.entries.delete(key);
      } else if (!entry.warned && nowMs >= entry.expiresAtMs - this.warningMs) {
        entry.warned = true;
        warn.push(key);
      }
    }
    return { warn, expire };
  }
}
