/**
 * Failed-login throttling for the token service: at most `limit` failures per key (a user name at a
 * client address, a client address) within a sliding window. Past the limit the key is refused — before any password
 * is checked — until its oldest failure leaves the window.
 */
export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();

  constructor(
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  #recent(key: string, now: number): number[] {
    const times = this.#failures.get(key);
    if (!times) return [];
    const recent = times.filter((t) => t > now - this.windowMs);
    if (recent.length === 0) this.#failures.delete(key);
    else if (recent.length !== times.length) this.#failures.set(key, recent);
    return recent;
  }

  /** Seconds until `key` may try again, or 0 when it has failed fewer than `limit` times. */
  retryAfter(key: string, limit: number): number {
    const now = this.now();
    const recent = this.#recent(key, now);
    if (recent.length < limit) return 0;
    const oldestThatCounts = recent[recent.length - limit] as number;
    return Math.max(1, Math.ceil((oldestThatCounts + this.windowMs - now) / 1000));
  }

  fail(key: string): void {
    const now = this.now();
    const recent = this.#recent(key, now);
    recent.push(now);
    // Bounded memory: a long list per key is pointless past any sensible limit.
    this.#failures.set(key, recent.slice(-1000));
    if (this.#failures.size > 100_000) this.#prune(now);
  }

  /** A successful login clears a user's failures from that address (never the address's: one good account must not reset it). */
  clear(key: string): void {
    this.#failures.delete(key);
  }

  #prune(now: number): void {
    for (const key of [...this.#failures.keys()]) this.#recent(key, now);
    // Still too many live keys (a spray of distinct names): forget the oldest half.
    if (this.#failures.size > 100_000) {
      const keys = [...this.#failures.keys()];
      for (const key of keys.slice(0, keys.length / 2)) this.#failures.delete(key);
    }
  }
}
