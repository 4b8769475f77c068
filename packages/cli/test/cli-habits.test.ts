/**
 * The CLI's everyday commands against a real `outrig serve` (SDK-backed, fake LLM reached through an
 * ANTHROPIC_BASE_URL without `/v1`): `outrig run`'s environment follows the org's allowlist; a pending
 * confirmation is shown with the commands that answer it; approve, deny (the model gets the message),
 * cancel; `run --session` reattaches to a running turn; sessions ls|show|logs, whoami, wait.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import type Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, sendMessage, waitForEvent, waitForIdle } from "./api-session.js";
import {
  createOutrigHome,
  OUTRIG_BIN,
  runCli,
  type ServerProcess,
  startServerProcess,
} from "./server-process.js";

const MODEL = "anthropic:claude-sonnet-4-5";
const ASK_BASH = [
  {
    type: "agent_toolset_20260401" as const,
    configs: [{ name: "bash" as const, permission_policy: { type: "always_ask" as const } }],
  },
];

let fakeLlm: FakeLlmServer;
let server: ServerProcess;
let home: string;
let client: Anthropic;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  home = await createOutrigHome();
  // The base URL as Claude Code and the Anthropic SDK take it: the host, no /v1.
  server = await startServerProcess(
    {
      home,
      env: { ANTHROPIC_API_KEY: "sk-ant-habits", ANTHROPIC_BASE_URL: fakeLlm.url },
    },
    300_000,
  );
  client = apiClient(server);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

function cli(args: string[]) {
  return runCli(args, { OUTRIG_HOME: home, OUTRIG_SERVER: server.url });
}

async function setAllowlist(allowedHosts: string[]): Promise<void> {
  const response = await fetch(
    `${server.url}/v1/egress-policy`,
    {
      method: "PUT",
      headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
      body: JSON.stringify({ allowedHosts, credentials: [] }),
    },
    300_000,
  );
  expect(response.status, await response.clone().text()).toBe(200);
}

async function runEnvironment(): Promise<Anthropic.Beta.Environments.BetaEnvironment[]> {
  const found: Anthropic.Beta.Environments.BetaEnvironment[] = [];
  for await (const environment of client.beta.environments.list())
    if (environment.metadata.outrig_run === "default") found.push(environment);
  return found;
}

describe("outrig run on a fresh server", () => {
  it("uses an environment limited to the org's allowlist, brought up to date on each run", async () => {
    await setAllowlist(["example.test"]);
    fakeLlm.setScript({ turns: [{ text: "hello from the fake model" }] });
    const first = await cli(["run", "say hello"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("hello from the fake model");
    expect(first.stderr).not.toContain("reaches no host");
    const [environment, ...others] = await runEnvironment();
    expect(others).toHaveLength(0);
    expect(environment?.config).toMatchObject({
      type: "cloud",
      networking: { type: "limited", allowed_hosts: ["example.test"] },
    });

    await setAllowlist(["example.test", "docs.example.test"]);
    fakeLlm.setScript({ turns: [{ text: "again" }] });
    const second = await cli(["run", "say it again"]);
    expect(second.code, second.stderr).toBe(0);
    const [updated, ...more] = await runEnvironment();
    expect(more).toHaveLength(0);
    expect(updated?.id).toBe(environment?.id);
    expect(updated?.config).toMatchObject({
      networking: { type: "limited", allowed_hosts: ["docs.example.test", "example.test"] },
    });
  }, 300_000);
});

describe("answering a session from the CLI", () => {
  it("shows a pending confirmation with its commands; approve answers it; run --session follows to the end", async () => {
    const { session } = await createAgentSession(client, { model: MODEL, tools: ASK_BASH });
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: "bash", input: { command: "echo approved-run" } }] },
        { text: "all done" },
      ],
    });
    const waiting = await cli(["run", "--session", session.id, "go"]);
    expect(waiting.code, waiting.stderr).toBe(2);
    expect(waiting.stderr).toContain("waiting for your confirmation: bash(echo approved-run)");
    const approveLine = new RegExp(`outrig approve ${session.id} (sevt_\\S+)`);
    const toolUseId = approveLine.exec(waiting.stderr)?.[1];
    expect(toolUseId).toBeDefined();
    expect(waiting.stderr).toContain(`outrig deny ${session.id} ${toolUseId}`);

    const shown = await cli(["sessions", "show", session.id]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain("idle");
    expect(shown.stdout).toContain(`outrig approve ${session.id} ${toolUseId}`);

    const approved = await cli(["approve", session.id]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`allowed bash(echo approved-run) ${toolUseId}`);
    const again = await cli(["approve", session.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("nothing in");

    const followed = await cli(["run", "--session", session.id]);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toContain("✓ bash: approved-run");
    expect(followed.stdout).toContain("all done");

    const logs = await cli(["sessions", "logs", session.id]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("> go");
    expect(logs.stdout).toContain("(allowed bash)");
    expect(logs.stdout).toContain("all done");
    const listed = await cli(["sessions", "ls"]);
    expect(listed.stdout).toContain(session.id);
  }, 300_000);

  it("deny sends the message to the model, and runs nothing", async () => {
    const { session } = await createAgentSession(client, { model: MODEL, tools: ASK_BASH });
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: "bash", input: { command: "touch /workspace/denied" } }] },
        { text: "fine" },
      ],
    });
    expect((await cli(["run", "--session", session.id, "delete it"])).code).toBe(2);
    const before = fakeLlm.requests.length;
    const denied = await cli(["deny", session.id, "--message", "not on this machine"]);
    expect(denied.code, denied.stderr).toBe(0);
    expect(denied.stdout).toContain("denied bash(touch /workspace/denied)");
    await waitForIdle(client, session.id);
    const next = fakeLlm.requests.slice(before);
    expect(JSON.stringify(next.map((request) => request.body))).toContain("not on this machine");
    const files = await fetch(`${server.url}/v1/sessions/${session.id}/files?path=/workspace/denied`, {
      headers: { "x-api-key": server.apiKey },
    });
    expect(files.status).not.toBe(200);
  }, 300_000);

  it("run --session reattaches to a running turn, and cancel interrupts it", async () => {
    const { session } = await createAgentSession(client, { model: MODEL });
    fakeLlm.setScript({ turns: [{ text: "too slow to wait for", delayMs: 120_000 }] });
    await sendMessage(client, session.id, "take your time");
    await waitForEvent(client, session.id, (event) => event.type === "session.status_running");

    const child = spawn(process.execPath, [OUTRIG_BIN, "run", "--session", session.id], {
      env: { ...process.env, OUTRIG_HOME: home, OUTRIG_SERVER: server.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const attached = new Promise<void>((resolve) =>
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes("(reattached; running)")) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await Promise.race([attached, exited]);
    expect(stderr).toContain("(reattached; running)");

    const cancelled = await cli(["cancel", session.id]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain(`interrupted ${session.id}`);
    const code = await exited;
    expect(stdout).toContain("> take your time");
    expect(stdout).toContain("(interrupted)");
    expect(stdout).not.toContain("too slow to wait for");
    expect(code, stderr).not.toBe(1);
    expect((await client.beta.sessions.retrieve(session.id)).status).toBe("idle");
    const idle = await cli(["cancel", session.id]);
    expect(idle.stdout).toContain("was idle");
  }, 300_000);

  it("whoami and wait answer for the running server", async () => {
    const who = await cli(["whoami"]);
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toMatch(/^admin \(usr_\w+\), admin in org org_\w+/);
    const wait = await cli(["wait", "--timeout", "10"]);
    expect(wait.code, wait.stderr).toBe(0);
  }, 300_000);
});
