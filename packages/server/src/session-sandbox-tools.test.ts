/**
 * Tool calls through a SessionSandbox on a real bubblewrap sandbox, driven by the real loop: what the
 * model is told when the org's command time limit stops a command, and which call a snapshot names.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createDefaultTools, createMountTable, runSession, SandboxFileSystem } from "@outrig/core";
import type { NewSessionEvent, SessionEvent } from "@outrig/protocol";
import { createBubblewrapSandboxProvider, createLocalDirectoryBlobStore } from "@outrig/sandboxes";
import { MemorySessionStore, ScriptedModel, type ScriptedStep } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EffectiveSandboxPolicy } from "./sandbox-policy.js";
import { SessionSandbox } from "./session-sandbox.js";
import { SessionSnapshots } from "./session-snapshots.js";

const provider = createBubblewrapSandboxProvider();
let root: string;
let count = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "outrig-session-sandbox-tools-"));
});
afterAll(async () => {
  await provider.close();
  await rm(root, { recursive: true, force: true });
});

/** Runs one turn of `steps` with the default tools on a fresh session sandbox; returns its events. */
async function runTurn(
  steps: ScriptedStep[],
  policy: Partial<EffectiveSandboxPolicy> = {},
): Promise<{ events: SessionEvent[]; emitted: NewSessionEvent[] }> {
  count += 1;
  const store = new MemorySessionStore();
  const session = await store.createSession({ orgId: "org_1", userId: "usr_1", model: "x", system: null });
  await store.startTurn("org_1", session.id, "go");
  const workspaceDir = path.join(root, `workspace-${count}`);
  const stateDir = path.join(root, `state-${count}`);
  const emitted: NewSessionEvent[] = [];
  const sandbox = new SessionSandbox({
    provider,
    sessionId: session.id,
    orgId: "org_1",
    workspaceDir,
    stateDir,
    policy: async () => ({ coldAfterMs: 600_000, destroyAfterMs: 600_000, ...policy }),
    snapshots: new SessionSnapshots({
      store: createLocalDirectoryBlobStore(path.join(root, `blobs-${count}`)),
      sessionId: session.id,
      workspaceDir,
      stateDir,
    }),
    emit: async (event) => {
      emitted.push(event);
    },
  });
  try {
    const getSandbox = async () => sandbox.proxy;
    await runSession(
      {
        store,
        tools: createDefaultTools(),
        limits: { maxSteps: 10, maxModelAttempts: 1 },
        sleep: async () => undefined,
        random: () => 0.5,
        publish: () => undefined,
      },
      {
        sessionId: session.id,
        model: new ScriptedModel([...steps, { text: "done" }]),
        fs: createMountTable([
          { prefix: "/", fileSystem: new SandboxFileSystem(getSandbox, "/") },
          { prefix: "/workspace", fileSystem: new SandboxFileSystem(getSandbox, "/workspace") },
        ]),
        exec: (request, signal) => sandbox.proxy.exec(request, signal),
        systemPrompt: "test",
        cwd: "/workspace",
      },
      new AbortController().signal,
    );
    await sandbox.use(async () => undefined); // waits for the snapshot of the last call
  } finally {
    await sandbox.destroy();
  }
  return { events: await store.readEvents(session.id, { afterSeq: 0, limit: 1000 }), emitted };
}

const toolOutput = (events: SessionEvent[], toolCallId: string): string => {
  const end = events.find((event) => event.type === "tool.end" && event.toolCallId === toolCallId);
  if (end?.type !== "tool.end") throw new Error(`no tool.end for ${toolCallId}`);
  return end.output;
};

describe("SessionSandbox tool calls", () => {
  it("names only the org's command time limit when it stopped a command", async () => {
    const { events } = await runTurn(
      [{ toolCalls: [{ name: "Bash", input: { command: "sleep 30" }, id: "call_sleep" }] }],
      { commandTimeoutMs: 1500 },
    );
    const output = toolOutput(events, "call_sleep");
    expect(output.match(/timed out|killed after/g)).toHaveLength(1);
    expect(output).toContain("Command timed out after 1500 ms");
    expect(output).toContain("command time limit");
    expect(output).not.toContain("120000 ms, ");
    expect(output).not.toMatch(/timed out after 120000/);
  }, 60_000);

  it("names the call's own limit when the org's is higher", async () => {
    const { events } = await runTurn(
      [{ toolCalls: [{ name: "Bash", input: { command: "sleep 30", timeout: 1000 }, id: "call_own" }] }],
      { commandTimeoutMs: 60_000 },
    );
    const output = toolOutput(events, "call_own");
    expect(output).toBe("Command timed out after 1000 ms");
  }, 60_000);

  it("names the Write or Edit call in the snapshot taken after it, as after a command", async () => {
    const { emitted } = await runTurn([
      { toolCalls: [{ name: "Bash", input: { command: "echo one > a.txt" }, id: "call_bash" }] },
      {
        toolCalls: [
          { name: "Write", input: { file_path: "/workspace/b.txt", content: "two\n" }, id: "call_write" },
        ],
      },
      { toolCalls: [{ name: "Read", input: { file_path: "/workspace/b.txt" }, id: "call_read" }] },
      {
        toolCalls: [
          {
            name: "Edit",
            input: { file_path: "/workspace/b.txt", old_string: "two", new_string: "three" },
            id: "call_edit",
          },
        ],
      },
    ]);
    const snapshots = emitted.filter((event) => event.type === "sandbox.snapshot");
    expect(snapshots.map((event) => (event.type === "sandbox.snapshot" ? event.toolCallId : null))).toEqual([
      "call_bash",
      "call_write",
      "call_edit",
    ]);
  }, 60_000);
});
