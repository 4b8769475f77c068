/**
 * The vault as the egress proxy reads it, cached per org and user for a second: a proxied request
 * needs every secret the session can see (to scan for them) and often one to inject, and reading
 * and decrypting them from Postgres per request was most of the proxy's cost. A secret changed on
 * this worker applies at once (`invalidate`); one changed on another worker within the TTL, as the
 * egress policy does.
 */
import type { EgressContext, EgressSecrets } from "@outrig/egress";

export const SECRET_CACHE_MS = 1000;

export class CachedEgressSecrets implements EgressSecrets {
  readonly #source: EgressSecrets;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<
    string,
    { orgId: string; secrets: Promise<ReadonlyMap<string, string>>; expiresAt: number }
  >();

  constructor(source: EgressSecrets, options: { ttlMs?: number; now?: () => number } = {}) {
    this.#source = source;
    this.#ttlMs = options.ttlMs ?? SECRET_CACHE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The owner's own secret of that name, else the org's (the same shadowing as the vault). */
  async resolveSecret(context: EgressContext, name: string): Promise<string | null> {
    return (await this.resolveAllSecrets(context)).get(name) ?? null;
  }

  resolveAllSecrets(context: EgressContext): Promise<ReadonlyMap<string, string>> {
    const key = `${context.orgId}\u0000${context.userId ?? ""}`;
    const now = this.#now();
    const cached = this.#entries.get(key);
    if (cached && cached.expiresAt > now) return cached.secrets;
    const secrets = this.#source.resolveAllSecrets({
      orgId: context.orgId,
      ...(context.userId === undefined ? {} : { userId: context.userId }),
    });
    const entry = { orgId: context.orgId, secrets, expiresAt: now + this.#ttlMs };
    this.#entries.set(key, entry);
    // A failed read (an undecryptable row fails closed) is not cached.
    secrets.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
    // Expired entries of owners that stopped sending requests.
    if (this.#entries.size > 1000)
      for (const [other, value] of this.#entries) if (value.expiresAt <= now) this.#entries.delete(other);
    return secrets;
  }

  /** Forgets every cached secret of the org (this worker just changed one). */
  invalidate(orgId: string): void {
    for (const [key, value] of this.#entries) if (value.orgId === orgId) this.#entries.delete(key);
  }
}
