/**
 * The system prompt tells the model what the sandbox can reach: the org's allowed hosts, that the
 * proxy adds credentials (so it must not ask for tokens) and that everything else is refused; with
 * no policy, that there is no network. The SessionManager runs with the server's SessionEgress.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createDefaultTools } from "@outrig/core";
import type { EgressPolicyBody } from "@outrig/protocol";
import { FakeSandboxProvider, MemorySessionStore, ScriptedModel } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InProcessTurnScheduler } from "../src/durable/in-process-turn-scheduler.js";
import { SessionEgress } from "../src/egress/session-egress.js";
import { EventBus } from "../src/event-bus.js";
import { SessionManager } from "../src/session-manager.js";

const POLICIES: Record<string, EgressPolicyBody> = {
  org_open: {
    allowedHosts: ["github.com", "*.npmjs.org", "git.corp.example"],
    credentials: [{ host: "git.corp.example", secretName: "GIT_TOKEN", scheme: "basic" }],
  },
  org_empty: { allowedHosts: [], credentials: [] },
};

describe("the system prompt's network section", () => {
  let home: string;
  let egress: SessionEgress;
  let sessions: SessionManager;
  let scheduler: InProcessTurnScheduler;
  const models: ScriptedModel[] = [];

  beforeAll(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-network-prompt-"));
    egress = await SessionEgress.create({
      home,
      masterKey: randomBytes(32),
      policies: { get: async (orgId) => POLICIES[orgId] ?? null },
      secrets: { resolveSecret: async () => null, resolveAllSecrets: async () => new Map() },
      audit: { append: async () => undefined },
      log: () => undefined,
    });
    scheduler = new InProcessTurnScheduler();
    sessions = new SessionManager({
      scheduler,
      store: new MemorySessionStore(),
      bus: new EventBus(),
      modelFactory: () => {
        const model = new ScriptedModel([{ text: "done" }]);
        models.push(model);
        return model;
      },
      sandboxProvider: new FakeSandboxProvider(),
      tools: createDefaultTools(),
      home,
      limits: { maxSteps: 5, maxModelAttempts: 1 },
      sandboxIdleMs: 60_000,
      log: () => undefined,
      egress,
    });
    await sessions.start();
  });
  afterAll(async () => {
    await sessions?.close();
    await egress?.close();
    if (home) await fs.rm(home, { recursive: true, force: true });
  });

  async function systemPromptFor(orgId: string): Promise<string> {
    const before = models.length;
    const session = await sessions.create(
      { orgId, userId: "usr_1" },
      // A model id per session: the manager keeps one model instance per spec.
      { model: `anthropic:test-${orgId}`, prompt: "hi" },
    );
    await scheduler.idle(session.id);
    const model = models[before];
    expect(model?.requests).toHaveLength(1);
    return model?.requests[0]?.system ?? "";
  }

  it("lists the allowed hosts and the hosts that get credentials, and says the rest is refused", async () => {
    const system = await systemPromptFor("org_open");
    expect(system).not.toContain("no network access");
    expect(system).toContain("Allowed hosts: github.com, *.npmjs.org, git.corp.example");
    expect(system).toContain("Every other host is refused");
    expect(system).toContain("adds the team's credentials to HTTPS requests to git.corp.example");
    expect(system).toContain("Never ask for a token");
  });

  it("says there is no network when the org has no egress policy or an empty one", async () => {
    for (const orgId of ["org_none", "org_empty"]) {
      const system = await systemPromptFor(orgId);
      expect(system).toContain("The sandbox has no network access");
      expect(system).not.toContain("Allowed hosts");
      expect(system).not.toContain("github.com");
    }
  });
});
