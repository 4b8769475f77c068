/**
 * An environment's `packages.apt` on a real server (startServer on Postgres, the fake LLM, bubblewrap
 * on the debootstrap image named by OUTRIG_TEST_IMAGE_DIR) with the pinned SDK as the client: the
 * build fetches `bc` (which the image lacks) from the image's Debian mirror through the egress proxy,
 * the binary runs in a session of that environment, a second session starts from the cached
 * layer, and a package the mirror lacks ends the turn with apt's complaint. Skipped without the image (apt needs it) or when the mirror is unreachable from here.
 */
import { lookup } from "node:dns/promises";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { readAptSources } from "../src/package-layers/apt-layer.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

const COMMAND = "command -v bc && echo '6*7' | bc";
const imageDir = process.env.OUTRIG_TEST_IMAGE_DIR?.trim();

/**
 * The mirror pinned to the address this machine resolves it to (egress refuses reserved ranges
 * unless the operator pins a host, and some CI resolvers answer with one), or why this file cannot run.
 */
async function mirrorPin(): Promise<{ pin?: string; skip?: string }> {
  if (!imageDir) return { skip: "no OUTRIG_TEST_IMAGE_DIR (apt packages need the debootstrap image)" };
  const sources = readAptSources(path.join(imageDir, "rootfs"));
  if (!sources) return { skip: `the image in ${imageDir} has no apt sources` };
  const host = sources.hosts[0] ?? "";
  try {
    const { address } = await lookup(host.replace(/:\d+$/, ""));
    await fetch(`http://${host}/`, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
    return { pin: `${host.replace(/:\d+$/, "")}=${address}` };
  } catch (error) {
    return {
      skip: `the image's Debian mirror ${host} is unreachable from this machine (${(error as Error).message})`,
    };
  }
}
const { pin, skip } = await mirrorPin();

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;

beforeAll(async () => {
  if (skip) return;
  testDatabase = await createTestDatabase();
  const bash = (command: string) => ({ toolCalls: [{ name: "bash", input: { command } }] });
  fakeLlm = await startFakeLlmServer({
    script: { turns: [bash(COMMAND), { text: "done" }, bash(COMMAND), { text: "done" }] },
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-environment-apt-"));
  await fs.mkdir(path.join(home, "images"), { recursive: true });
  await fs.symlink(path.resolve(imageDir ?? ""), path.join(home, "images", "default"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-environment-apt",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `environment-apt-${process.pid}`,
    OUTRIG_EGRESS_HOSTS: pin ?? "",
    OUTRIG_PACKAGE_BUILD_TIMEOUT_MS: "300000",
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** Starts a session of the environment, sends one message and reads its events until it is idle. */
async function runSession(agentId: string, environmentId: string): Promise<ApiEvent[]> {
  const session = await client.beta.sessions.create({ agent: agentId, environment_id: environmentId });
  const stream = await client.beta.sessions.events.stream(session.id);
  await client.beta.sessions.events.send(session.id, {
    events: [{ type: "user.message", content: [{ type: "text", text: "use bc" }] }],
  });
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as unknown as ApiEvent;
    events.push(event);
    if (event.type === "session.status_idle") break;
  }
  return events;
}

const ofType = (events: ApiEvent[], type: string) => events.filter((event) => event.type === type);

describe.skipIf(skip)(`an environment's apt packages${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("are fetched from the Debian mirror into a layer whose binary runs in sessions; the second session reuses it", async () => {
    const agent = await client.beta.agents.create({
      name: "apt",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await client.beta.environments.create({
      name: "with-bc",
      config: { type: "cloud", packages: { apt: ["bc"] } },
    });
    expect(environment.config).toMatchObject({ packages: { apt: ["bc"] } });

    const first = await runSession(agent.id, environment.id);
    const started = ofType(first, "session.environment_build_started");
    expect(started).toHaveLength(1);
    expect(ofType(first, "session.error")).toEqual([]);
    expect(ofType(first, "session.environment_build_completed")).toEqual([
      expect.objectContaining({ source: "built", layer_digest: started[0]?.layer_digest }),
    ]);
    const results = ofType(first, "agent.tool_result");
    expect(results.map((event) => event.is_error)).toEqual([false]);
    const output = JSON.stringify(results[0]?.content);
    expect(output).toContain("/opt/outrig/packages/apt/usr/bin/bc");
    expect(output).toContain("42");

    const second = await runSession(agent.id, environment.id);
    expect(ofType(second, "session.environment_build_started")).toHaveLength(0);
    expect(ofType(second, "session.environment_build_completed")).toEqual([
      expect.objectContaining({ source: "cached", layer_digest: started[0]?.layer_digest }),
    ]);
    const again = ofType(second, "agent.tool_result");
    expect(again.map((event) => event.is_error)).toEqual([false]);
    expect(JSON.stringify(again[0]?.content)).toContain("42");
  }, 360_000);

  it("end the turn with apt's own complaint when a package does not exist, and call no model", async () => {
    const agent = await client.beta.agents.create({
      name: "apt-missing",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await client.beta.environments.create({
      name: "with-missing",
      config: { type: "cloud", packages: { apt: ["outrig-no-such-package"] } },
    });
    const calls = fakeLlm.requests.length;
    const events = await runSession(agent.id, environment.id);
    const errors = ofType(events, "session.error");
    expect(errors).toHaveLength(1);
    expect(JSON.stringify(errors[0])).toContain("environment_build_failed");
    expect(JSON.stringify(errors[0])).toContain("Unable to locate package outrig-no-such-package");
    expect(fakeLlm.requests.length).toBe(calls);
  }, 360_000);
});
