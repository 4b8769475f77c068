/**
 * What a session's sandbox learns about the host from its mount table: on a real server, a command
 * reads /proc/self/mountinfo (which shows the host path of every bind mount) and finds neither its
 * org's id nor its user's, and of the session's state directory only the journal subdirectory is
 * mounted (the server's own files there stay out of reach).
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../src/sse-client.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

interface StoredEvent {
  seq: number;
  type: string;
  [key: string]: unknown;
}

let fakeLlm: FakeLlmServer;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        {
          toolCalls: [
            {
              name: "Bash",
              input: {
                command: "cat /proc/self/mountinfo; echo ---; cat /proc/1/mountinfo; ls -A /memories",
              },
            },
          ],
        },
        { text: "done" },
      ],
    },
  });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: { ANTHROPIC_API_KEY: "mountinfo", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

describe("the sandbox's mount table", () => {
  it("names no org or user id and mounts only the journal of the state directory", async () => {
    const key = server.apiKey;
    const response = await fetch(`${server.url}/v1/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "anthropic:mountinfo", prompt: "go" }),
    });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    const events = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      headers: { authorization: `Bearer ${key}` },
    });
    if (!events.body) throw new Error("no event stream");
    const stored: StoredEvent[] = [];
    for await (const message of parseSse(events.body)) {
      if (message.id === undefined) continue;
      const event = JSON.parse(message.data) as StoredEvent;
      stored.push(event);
      if (event.type === "turn.end" || event.type === "turn.error") break;
    }
    // The ids the host uses: the session's org, and the user its audit entries name.
    const session = (await (
      await fetch(`${server.url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { orgId: string };
    const audit = (await (
      await fetch(`${server.url}/v1/audit?sessionId=${id}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { entries: { userId: string | null }[] };
    const orgId = session.orgId;
    const userId = audit.entries.find((entry) => entry.userId)?.userId;
    expect(orgId).toMatch(/\w{6,}/);
    expect(userId).toMatch(/\w{6,}/);
    const result = stored.find((event) => event.type === "tool.end");
    expect(result).toMatchObject({ isError: false });
    const output = String(result?.output);
    // The mounts are there (the read worked) …
    expect(output).toContain(" /workspace ");
    expect(output).toContain(" /memories ");
    // … and none of them names the org or the user.
    expect(output).not.toContain(orgId);
    expect(output).not.toContain(userId as string);
    const stateMounts = output.split("\n").filter((line) => line.split(" ")[4] === "/run/outrig/state");
    expect(stateMounts.length).toBeGreaterThan(0);
    for (const line of stateMounts) expect(line.split(" ")[3]).toMatch(/\/journal$/);
  }, 120_000);
});
