/**
 * The audit log end to end: a real `outrig serve` process (on the test run's Postgres, so the test can
 * act as a superuser), the fake LLM over HTTP and bubblewrap sandboxes. A session runs tool calls, a
 * memory write and an approved call; `outrig audit ls` shows them, `outrig audit verify` passes, and
 * after a superuser rewrites an entry behind the append-only trigger, verify exits 1 naming it.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  type SessionEvent,
  stopReason,
  TOOLS,
  waitForEvent,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

interface ListedEntry {
  seq: number;
  kind: string;
  sessionId: string | null;
  userId: string | null;
  data: Record<string, unknown>;
}

const script = {
  turns: [
    { toolCalls: [{ name: TOOLS.bash, input: { command: "echo hello > /workspace/hello.txt" } }] },
    {
      toolCalls: [
        { name: TOOLS.write, input: { file_path: "/memories/me/notes.md", content: "likes tea\n" } },
      ],
    },
    { toolCalls: [{ name: TOOLS.bash, input: { command: "echo push >> /workspace/pushes.log" } }] },
    { text: "done" },
  ],
};

let fakeLlm: FakeLlmServer;
let database: TestDatabase;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script });
  database = await createTestDatabase();
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      DATABASE_URL: database.url,
      ANTHROPIC_API_KEY: "audit-e2e",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    },
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

const cliEnv = () => ({ OUTRIG_HOME: home, OUTRIG_SERVER: server.url });

async function putPolicy(body: unknown): Promise<number> {
  const response = await fetch(`${server.url}/v1/policy`, {
    method: "PUT",
    headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.status;
}

describe("outrig audit", () => {
  it("lists a session's tool calls and approval, verifies the chain, and names an entry altered behind the trigger", async () => {
    expect(
      await putPolicy({
        rules: [{ tool: TOOLS.bash, match: "*push*", action: "ask" }],
        approvalTimeoutMs: 120_000,
      }),
    ).toBe(200);
    const client = apiClient(server);
    const { session } = await createAgentSession(client, {
      model: "anthropic:claude-sonnet-4-5",
      prompt: "say hello, remember my taste, then push",
    });
    const sessionId = session.id;
    const asked = await waitForEvent(
      client,
      sessionId,
      (event) => event.type === "session.status_idle" && event.stop_reason.type === "requires_action",
      90_000,
    );
    const request = asked.find(
      (event): event is Extract<SessionEvent, { type: "agent.tool_use" }> =>
        event.type === "agent.tool_use" && event.evaluated_permission === "ask",
    );
    expect(request).toMatchObject({
      name: TOOLS.bash,
      input: { command: "echo push >> /workspace/pushes.log" },
    });
    await client.beta.sessions.events.send(sessionId, {
      events: [{ type: "user.tool_confirmation", tool_use_id: request?.id ?? "", result: "allow" }],
    });
    const events = await waitForIdle(client, sessionId, 90_000);
    expect(stopReason(events)).toBe("end_turn");

    const listed = await runCli(["audit", "ls", "--json"], cliEnv());
    expect(listed.code, listed.stderr).toBe(0);
    const entries = listed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as ListedEntry);
    expect(entries.map((entry) => entry.seq)).toEqual(entries.map((_, index) => index + 1));
    expect(
      entries.map(
        (entry) => `${entry.kind}:${String(entry.data.name ?? entry.data.path ?? entry.data.policy)}`,
      ),
    ).toEqual([
      "policy_change:tool",
      // The prompt, audited as the person who posted it (no name, path or policy field).
      "session_message:undefined",
      `tool_call:${TOOLS.bash}`,
      `tool_call:${TOOLS.write}`,
      "memory_write:/notes.md",
      `approval:${TOOLS.bash}`,
      `tool_call:${TOOLS.bash}`,
    ]);
    const approval = entries[5];
    expect(approval).toMatchObject({
      kind: "approval",
      sessionId,
      data: { toolCallId: expect.any(String), decision: "allow", reason: "user" },
    });
    expect(approval?.userId).toMatch(/^usr_/);
    expect(entries[6]).toMatchObject({
      sessionId,
      // The approval and the call it allowed name the same call.
      data: {
        toolCallId: approval?.data.toolCallId,
        input: { command: "echo push >> /workspace/pushes.log" },
      },
    });
    expect(entries[4]?.data).not.toHaveProperty("content");
    // The memory entry records path, version and size, not the content (the Write call's input has it).
    expect(JSON.stringify(entries[4])).not.toContain("likes tea");
    expect(entries[4]?.data).toMatchObject({ action: "write", version: 1, size: 10 });

    const approvals = await runCli(["audit", "ls", "--kind", "approval"], cliEnv());
    expect(approvals.code, approvals.stderr).toBe(0);
    expect(approvals.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(/^6\t\S+\tapproval\tsesn_\S+ usr_\S+\t\{.*"decision":"allow"/),
    ]);

    const page = await runCli(["audit", "ls", "--limit", "2", "--after", "1", "--json"], cliEnv());
    expect(page.code, page.stderr).toBe(0);
    expect(
      page.stdout
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as ListedEntry).seq),
    ).toEqual([2, 3]);
    const badLimit = await runCli(["audit", "ls", "--limit", "0"], cliEnv());
    expect(badLimit.code).toBe(1);
    expect(badLimit.stderr).toContain("invalid_request");

    const valid = await runCli(["audit", "verify"], cliEnv());
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(
      /^OK: 7 entries, the chain is intact; head [0-9a-f]{64}\nanchored: checkpoint of entry 7 at \S+, kept outside the database\n$/,
    );

    // A superuser turns the append-only trigger off for one statement and flips the decision.
    const superuser = new pg.Client({ connectionString: database.url });
    await superuser.connect();
    try {
      await superuser.query("BEGIN");
      await superuser.query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only");
      const updated = await superuser.query(
        `UPDATE audit_entries SET data = jsonb_set(data, '{decision}', '"deny"')
         WHERE seq = 6 AND kind = 'approval' AND org_id = (SELECT id FROM orgs WHERE name = 'default')`,
      );
      expect(updated.rowCount).toBe(1);
      await superuser.query("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only");
      await superuser.query("COMMIT");
    } finally {
      await superuser.end();
    }

    const tampered = await runCli(["audit", "verify"], cliEnv());
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(
      /^TAMPERED at seq 6 \(altered\): entry 6 was altered after it was written\nanchored: checkpoint of entry 7 at \S+, kept outside the database\n$/,
    );

    // A member's key may not read the audit log.
    const member = await runCli(["keys", "create", "--org", "default", "--user", "audit-member"], {
      ...cliEnv(),
      DATABASE_URL: database.url,
    });
    expect(member.code, member.stderr).toBe(0);
    const pool = new pg.Client({ connectionString: database.url });
    await pool.connect();
    try {
      await pool.query("UPDATE users SET role = 'member' WHERE name = 'audit-member'");
    } finally {
      await pool.end();
    }
    const refused = await runCli(["audit", "verify"], { ...cliEnv(), OUTRIG_API_KEY: member.stdout.trim() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("forbidden");
  }, 240_000);
});
