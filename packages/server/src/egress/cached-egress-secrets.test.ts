import type { EgressContext, EgressSecrets } from "@outrig/egress";
import { describe, expect, it } from "vitest";
import { CachedEgressSecrets } from "./cached-egress-secrets.js";

/** A vault with org and user secrets (user ones shadow the org's) that counts its reads. */
function fakeVault() {
  const org = new Map<string, Map<string, string>>([["org_1", new Map([["TOKEN", "org-token"]])]]);
  const user = new Map<string, Map<string, string>>([["usr_1", new Map([["TOKEN", "user-token"]])]]);
  let reads = 0;
  let failNext = false;
  const vault: EgressSecrets = {
    async resolveSecret(context: EgressContext, name: string) {
      return (await vault.resolveAllSecrets(context)).get(name) ?? null;
    },
    async resolveAllSecrets(context: EgressContext) {
      reads += 1;
      if (failNext) {
        failNext = false;
        throw new Error("secret_undecryptable");
      }
      return new Map([
        ...(org.get(context.orgId) ?? new Map()),
        ...((context.userId && user.get(context.userId)) || new Map()),
      ]);
    },
  };
  return {
    vault,
    org,
    reads: () => reads,
    failOnce: () => {
      failNext = true;
    },
  };
}

describe("CachedEgressSecrets", () => {
  it("reads the vault once per org and user within the TTL, with the vault's shadowing", async () => {
    const { vault, reads } = fakeVault();
    let now = 0;
    const cache = new CachedEgressSecrets(vault, { ttlMs: 1000, now: () => now });
    const session = { orgId: "org_1", userId: "usr_1", sessionId: "ses_1" };
    expect(await cache.resolveSecret(session, "TOKEN")).toBe("user-token");
    expect(await cache.resolveSecret({ orgId: "org_1", userId: "usr_2" }, "TOKEN")).toBe("org-token");
    expect(await cache.resolveSecret(session, "MISSING")).toBeNull();
    expect([...(await cache.resolveAllSecrets(session)).values()]).toEqual(["user-token"]);
    expect(reads()).toBe(2);
    now = 1000;
    await cache.resolveSecret(session, "TOKEN");
    expect(reads()).toBe(3);
  });

  it("sees a change at once after invalidate, and never caches a failed read", async () => {
    const { vault, org, reads, failOnce } = fakeVault();
    const cache = new CachedEgressSecrets(vault, { ttlMs: 60_000 });
    const context = { orgId: "org_1" };
    expect(await cache.resolveSecret(context, "TOKEN")).toBe("org-token");
    org.get("org_1")?.set("TOKEN", "rotated");
    expect(await cache.resolveSecret(context, "TOKEN")).toBe("org-token");
    cache.invalidate("org_2");
    expect(await cache.resolveSecret(context, "TOKEN")).toBe("org-token");
    cache.invalidate("org_1");
    expect(await cache.resolveSecret(context, "TOKEN")).toBe("rotated");

    cache.invalidate("org_1");
    failOnce();
    await expect(cache.resolveSecret(context, "TOKEN")).rejects.toThrow("secret_undecryptable");
    const before = reads();
    expect(await cache.resolveSecret(context, "TOKEN")).toBe("rotated");
    expect(reads()).toBe(before + 1);
  });
});
