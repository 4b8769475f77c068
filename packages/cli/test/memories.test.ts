/**
 * Database-backed /memories through every tool, bash included: what one user's session writes under
 * /memories/org is read by another user's session with Read and with `cat`; /memories/me stays private;
 * another org sees nothing; bash cannot write there and is told to use Write or Edit.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../src/sse-client.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

interface StoredEvent {
  seq: number;
  type: string;
  [key: string]: unknown;
}

let fakeLlm: FakeLlmServer;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: { ANTHROPIC_API_KEY: "memories", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function keyFor(org: string, user: string): Promise<string> {
  const result = await runCli(["keys", "create", "--org", org, "--user", user], { OUTRIG_HOME: home });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** Runs one session with `key` through `turns` and returns its tool results by call order. */
async function runSession(key: string, turns: unknown[]): Promise<StoredEvent[]> {
  fakeLlm.setScript({ turns: turns as never });
  const response = await fetch(`${server.url}/v1/sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "anthropic:memories", prompt: "go" }),
  });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  const events = await fetch(`${server.url}/v1/sessions/${id}/events`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const stored: StoredEvent[] = [];
  if (!events.body) throw new Error("no event stream");
  for await (const message of parseSse(events.body)) {
    if (message.id === undefined) continue;
    const event = JSON.parse(message.data) as StoredEvent;
    stored.push(event);
    if (event.type === "turn.end" || event.type === "turn.error") break;
  }
  expect(stored.at(-1)).toMatchObject({ type: "turn.end" });
  return stored.filter((event) => event.type === "tool.end");
}

describe("memories shared through the database", () => {
  it("are shared with the org through Read and cat, private under /memories/me, invisible to other orgs", async () => {
    const alice = server.apiKey;
    const bob = await keyFor("default", "bob");
    const mallory = await keyFor("other-org", "mallory");

    const written = await runSession(alice, [
      {
        toolCalls: [
          {
            name: "Write",
            input: { file_path: "/memories/org/notes.md", content: "deploys need a ticket\n" },
          },
        ],
      },
      {
        toolCalls: [
          { name: "Write", input: { file_path: "/memories/me/private.md", content: "alice only\n" } },
        ],
      },
      { text: "noted" },
    ]);
    expect(written.map((event) => event.isError)).toEqual([false, false]);

    const read = await runSession(bob, [
      { toolCalls: [{ name: "Read", input: { file_path: "/memories/org/notes.md" } }] },
      { toolCalls: [{ name: "Bash", input: { command: "cat /memories/org/notes.md; ls -A /memories/me" } }] },
      { toolCalls: [{ name: "Read", input: { file_path: "/memories/me/private.md" } }] },
      { toolCalls: [{ name: "Bash", input: { command: "echo overwritten > /memories/org/notes.md" } }] },
      { text: "read" },
    ]);
    expect(read[0]).toMatchObject({
      isError: false,
      output: expect.stringContaining("deploys need a ticket"),
    });
    expect(read[1]?.output).toContain("deploys need a ticket");
    expect(read[1]?.output).not.toContain("private.md");
    expect(read[2]).toMatchObject({ isError: true });
    expect(read[3]).toMatchObject({
      isError: true,
      output: expect.stringContaining("use the Write or Edit tool"),
    });

    const foreign = await runSession(mallory, [
      { toolCalls: [{ name: "Read", input: { file_path: "/memories/org/notes.md" } }] },
      {
        toolCalls: [
          { name: "Bash", input: { command: "cat /memories/org/notes.md; find /memories /skills -type f" } },
        ],
      },
      { text: "nothing" },
    ]);
    expect(foreign[0]).toMatchObject({ isError: true });
    expect(foreign[1]?.output).not.toContain("deploys need a ticket");
    expect(foreign[1]?.output).not.toContain("notes.md\n");
  }, 120_000);
});
