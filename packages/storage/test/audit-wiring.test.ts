/**
 * The audit log wired into the stores: tool calls and approvals with their session events, file
 * versions, secret writes and policy changes, each in the same transaction as the write it records.
 */
import { randomBytes } from "node:crypto";
import type { NewSessionEvent } from "@outrig/protocol";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuditEntry,
  createDatabase,
  createSecretKeyring,
  type Database,
  MAX_AUDITED_INPUT_BYTES,
  masterKeyFromBase64,
  PostgresAuditLog,
  PostgresFileStore,
  PostgresSecretStore,
  PostgresSessionStore,
} from "../src/index.js";

const SECRET_VALUE = "ghp_audit_wiring_secret_value_never_logged_0042";

describe("audit log wiring", () => {
  let testDatabase: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    // Fault injection for the atomicity tests: an audit insert that fails for one tool name, and an
    // event insert that fails at COMMIT (deferred), i.e. after the audit entry was already inserted.
    await database.pool.query(`
      CREATE FUNCTION test_fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure on %', TG_TABLE_NAME; END; $$;
      CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_entries FOR EACH ROW
        WHEN (NEW.data->>'name' = 'ExplodingAudit' OR NEW.data->>'path' = '/exploding-audit.md')
        EXECUTE FUNCTION test_fail_insert();
      CREATE CONSTRAINT TRIGGER test_fail_event AFTER INSERT ON session_events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (NEW.payload->>'name' = 'ExplodingEvent') EXECUTE FUNCTION test_fail_insert();
    `);
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  async function orgAndUser(name: string): Promise<{ orgId: string; userId: string }> {
    const org = await database.auth.createOrg(`${name}-${randomBytes(4).toString("hex")}`);
    const user = await database.auth.createUser(org.id, { name: "ada", role: "admin" });
    return { orgId: org.id, userId: user.id };
  }

  /** A session with a running turn, started without auditing it (these tests count tool entries). */
  async function runningSession(orgId: string, userId: string): Promise<string> {
    const session = await database.sessions.createSession({ orgId, userId, model: "fake:x", system: null });
    await new PostgresSessionStore(database.pool).startTurn(orgId, session.id, "go");
    return session.id;
  }

  const toolStart = (toolCallId: string, name: string, input: unknown): NewSessionEvent => ({
    type: "tool.start",
    turn: 1,
    toolCallId,
    name,
    input,
  });

  async function entries(orgId: string): Promise<AuditEntry[]> {
    return database.audit.list(orgId, { limit: 1000 });
  }

  it("records a tool call at tool.start with name, id, input, session and user", async () => {
    const { orgId, userId } = await orgAndUser("tool-call");
    const sessionId = await runningSession(orgId, userId);
    await database.sessions.appendEvents(sessionId, [toolStart("call_1", "Bash", { command: "ls -la" })], {
      turn: 1,
    });
    // Only tool.start is audited for a tool call, not its result.
    await database.sessions.appendEvents(sessionId, [
      {
        type: "tool.end",
        turn: 1,
        toolCallId: "call_1",
        name: "Bash",
        isError: false,
        output: "ok",
        durationMs: 1,
      },
    ]);
    const [entry] = await entries(orgId);
    expect(entry).toMatchObject({
      seq: 1,
      kind: "tool_call",
      sessionId,
      userId,
      data: { name: "Bash", toolCallId: "call_1", turn: 1, input: { command: "ls -la" }, inputBytes: 20 },
    });
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 1 });
  });

  it("records a call the tool policy denied (it never started) with its input and the rule", async () => {
    const { orgId, userId } = await orgAndUser("denied-call");
    const sessionId = await runningSession(orgId, userId);
    const deniedEnd = (toolCallId: string, by: "policy" | "person"): NewSessionEvent => ({
      type: "tool.end",
      turn: 1,
      toolCallId,
      name: "Bash",
      isError: true,
      output: "denied",
      durationMs: 0,
      denied: by === "policy" ? { by, rule: "Bash: deny", input: { command: "rm -rf /" } } : { by },
    });
    await database.sessions.appendEvents(sessionId, [deniedEnd("call_denied", "policy")], { turn: 1 });
    // A person's denial is audited by its approval.response, not again by the tool.end.
    await database.sessions.appendEvents(sessionId, [deniedEnd("call_refused", "person")], { turn: 1 });
    const list = await entries(orgId);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      kind: "tool_call",
      sessionId,
      userId,
      data: {
        name: "Bash",
        toolCallId: "call_denied",
        turn: 1,
        input: { command: "rm -rf /" },
        denied: { by: "policy", rule: "Bash: deny" },
      },
    });
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 1 });
  });

  it("cuts a tool input longer than 4 KiB on a character boundary and flags it", async () => {
    const { orgId, userId } = await orgAndUser("long-input");
    const sessionId = await runningSession(orgId, userId);
    const content = "é".repeat(5000);
    await database.sessions.appendEvents(sessionId, [
      toolStart("call_long", "Write", { file_path: "/workspace/a", content }),
    ]);
    const [entry] = await entries(orgId);
    const data = entry?.data as { input: string; inputBytes: number; isInputTruncated: boolean };
    expect(data.isInputTruncated).toBe(true);
    expect(typeof data.input).toBe("string");
    expect(Buffer.byteLength(data.input, "utf8")).toBeLessThanOrEqual(MAX_AUDITED_INPUT_BYTES);
    expect(Buffer.byteLength(data.input, "utf8")).toBeGreaterThan(MAX_AUDITED_INPUT_BYTES - 2);
    expect(data.input).not.toContain("\uFFFD");
    expect(data.input.startsWith('{"file_path":"/workspace/a","content":"éé')).toBe(true);
    expect(data.inputBytes).toBe(Buffer.byteLength(JSON.stringify({ file_path: "/workspace/a", content })));
  });

  it("records an approval decision with the tool's name and who decided", async () => {
    const { orgId, userId } = await orgAndUser("approval");
    const approver = (await database.auth.createUser(orgId, { name: "boss", role: "admin" })).id;
    const sessionId = await runningSession(orgId, userId);
    await database.sessions.appendEvents(sessionId, [
      {
        type: "approval.request",
        turn: 1,
        toolCallId: "call_push",
        name: "Bash",
        input: { command: "git push" },
        rule: "Bash(*push*): ask",
        timeoutMs: 60_000,
      },
    ]);
    await database.sessions.appendEvents(sessionId, [
      {
        type: "approval.response",
        turn: 1,
        toolCallId: "call_push",
        decision: "allow",
        reason: "user",
        userId: approver,
      },
      toolStart("call_push", "Bash", { command: "git push" }),
    ]);
    await database.sessions.appendEvents(sessionId, [
      { type: "approval.response", turn: 1, toolCallId: "call_unknown", decision: "deny", reason: "timeout" },
    ]);
    const [approval, toolCall, timeout] = await entries(orgId);
    expect(approval).toMatchObject({
      seq: 1,
      kind: "approval",
      sessionId,
      userId: approver,
      data: { toolCallId: "call_push", name: "Bash", decision: "allow", reason: "user", turn: 1 },
    });
    expect(toolCall).toMatchObject({ seq: 2, kind: "tool_call", userId, data: { name: "Bash" } });
    expect(timeout).toMatchObject({
      seq: 3,
      kind: "approval",
      userId: null,
      data: { toolCallId: "call_unknown", decision: "deny", reason: "timeout" },
    });
    expect(timeout?.data).not.toHaveProperty("name");
  });

  it("audits a message as the person who posted it, and that turn's tool calls as that person too", async () => {
    const { orgId, userId: ownerId } = await orgAndUser("message-actor");
    const helper = await database.auth.createUser(orgId, { name: "grace", role: "member" });
    const session = await database.sessions.createSession({
      orgId,
      userId: ownerId,
      model: "fake:x",
      system: null,
    });
    const { event } = await database.sessions.startTurn(orgId, session.id, "héllo", { userId: helper.id });
    expect(event).toMatchObject({ type: "turn.start", userId: helper.id });
    await database.sessions.appendEvents(session.id, [toolStart("call_h", "Bash", { command: "id" })], {
      turn: 1,
    });
    await database.sessions.appendEvents(session.id, [
      { type: "turn.end", turn: 1, reason: "end_turn", usage: { inputTokens: 0, outputTokens: 0 } },
    ]);
    await database.sessions.startTurn(orgId, session.id, "mine", { userId: ownerId });
    await database.sessions.appendEvents(session.id, [toolStart("call_o", "Bash", { command: "id" })], {
      turn: 2,
    });
    const recorded = await entries(orgId);
    expect(recorded.map((entry) => [entry.kind, entry.userId, entry.data])).toEqual([
      ["session_message", helper.id, { turn: 1, textBytes: 6, sessionOwnerId: ownerId }],
      ["tool_call", helper.id, expect.objectContaining({ toolCallId: "call_h", sessionOwnerId: ownerId })],
      ["session_message", ownerId, { turn: 2, textBytes: 4 }],
      ["tool_call", ownerId, expect.not.objectContaining({ sessionOwnerId: expect.anything() })],
    ]);
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 4 });
  });

  it("stores no event when its audit entry cannot be stored", async () => {
    const { orgId, userId } = await orgAndUser("audit-fails");
    const sessionId = await runningSession(orgId, userId);
    await database.sessions.appendEvents(sessionId, [toolStart("call_ok", "Read", { file_path: "/a" })]);
    const before = await database.sessions.getSession(orgId, sessionId);
    await expect(
      database.sessions.appendEvents(sessionId, [toolStart("call_boom", "ExplodingAudit", {})], { turn: 1 }),
    ).rejects.toThrow(/injected failure on audit_entries/);
    const after = await database.sessions.getSession(orgId, sessionId);
    expect(after?.lastSeq).toBe(before?.lastSeq);
    const events = await database.sessions.readEvents(sessionId, { afterSeq: 0, limit: 100 });
    expect(events.map((event) => event.type)).toEqual(["turn.start", "tool.start"]);
    expect((await entries(orgId)).map((entry) => entry.data)).toEqual([
      expect.objectContaining({ toolCallId: "call_ok" }),
    ]);
    // Nothing is left half-done: the next append continues both logs without a gap.
    const [next] = await database.sessions.appendEvents(sessionId, [toolStart("call_2", "Read", {})]);
    expect(next?.seq).toBe((before?.lastSeq ?? 0) + 1);
    expect((await entries(orgId)).map((entry) => entry.seq)).toEqual([1, 2]);
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 2 });
  });

  it("stores no audit entry when its event fails after the entry was written", async () => {
    const { orgId, userId } = await orgAndUser("event-fails");
    const sessionId = await runningSession(orgId, userId);
    await database.sessions.appendEvents(sessionId, [toolStart("call_ok", "Read", {})]);
    const head = await auditHead(orgId);
    // The deferred trigger fires at COMMIT, after appendIn inserted the entry and moved the head.
    await expect(
      database.sessions.appendEvents(sessionId, [toolStart("call_boom", "ExplodingEvent", {})]),
    ).rejects.toThrow(/injected failure on session_events/);
    expect(await auditHead(orgId)).toEqual(head);
    expect((await entries(orgId)).map((entry) => (entry.data as { toolCallId: string }).toolCallId)).toEqual([
      "call_ok",
    ]);
    const events = await database.sessions.readEvents(sessionId, { afterSeq: 0, limit: 100 });
    expect(events.filter((event) => event.type === "tool.start")).toHaveLength(1);
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 1 });
  });

  it("writes no audit entry for an append refused because the turn was closed", async () => {
    const { orgId, userId } = await orgAndUser("turn-closed");
    const sessionId = await runningSession(orgId, userId);
    await expect(
      database.sessions.appendEvents(sessionId, [toolStart("call_late", "Bash", {})], { turn: 7 }),
    ).rejects.toMatchObject({ code: "turn_closed" });
    await expect(
      database.sessions.appendEvents("ses_missing", [toolStart("call_x", "Bash", {})]),
    ).rejects.toMatchObject({ code: "session_not_found" });
    expect(await entries(orgId)).toEqual([]);
  });

  it("appendIn uses two round trips and rolls back with the caller's transaction", async () => {
    const { orgId } = await orgAndUser("append-in");
    await database.audit.append(orgId, { kind: "egress", data: { host: "example.com" } });
    const client = await database.pool.connect();
    try {
      const counted = countQueries(client);
      await client.query("BEGIN");
      counted.reset();
      const appended = await database.audit.appendIn(client, orgId, [
        { kind: "secret_use", data: { name: "A" } },
        { kind: "secret_use", data: { name: "B" } },
        { kind: "egress", data: { host: "x.test" } },
      ]);
      expect(counted.count()).toBe(2);
      expect(appended.map((entry) => entry.seq)).toEqual([2, 3, 4]);
      await client.query("ROLLBACK");
      await client.query("BEGIN");
      await database.audit.appendIn(client, orgId, [{ kind: "approval", data: { decision: "allow" } }]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect((await entries(orgId)).map((entry) => [entry.seq, entry.kind])).toEqual([
      [1, "egress"],
      [2, "approval"],
    ]);
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 2 });
  });

  it("appends an audited tool.start in 4 round trips and an unaudited event in 1", async () => {
    const { orgId, userId } = await orgAndUser("round-trips");
    const sessionId = await runningSession(orgId, userId);
    const pool = new pg.Pool({ connectionString: testDatabase.url, max: 1 });
    let count = 0;
    pool.on("connect", (client) => {
      const query = client.query.bind(client);
      (client as { query: unknown }).query = (...args: unknown[]) => {
        count += 1;
        return (query as (...values: unknown[]) => unknown)(...args);
      };
    });
    try {
      const store = new PostgresSessionStore(pool, { audit: new PostgresAuditLog(pool) });
      await store.appendEvents(sessionId, [toolStart("call_warm", "Read", {})]);
      count = 0;
      await store.appendEvents(sessionId, [
        {
          type: "tool.end",
          turn: 1,
          toolCallId: "call_warm",
          name: "Read",
          isError: false,
          output: "",
          durationMs: 1,
        },
      ]);
      expect(count).toBe(1);
      count = 0;
      await store.appendEvents(sessionId, [toolStart("call_counted", "Bash", { command: "true" })], {
        turn: 1,
      });
      expect(count).toBe(4); // BEGIN, events + audit head lock, entries + head move, COMMIT
    } finally {
      await pool.end();
    }
    expect((await entries(orgId)).map((entry) => (entry.data as { toolCallId: string }).toolCallId)).toEqual([
      "call_warm",
      "call_counted",
    ]);
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 2 });
  });

  it("records memory and skill writes and deletes with path, version and size but no content", async () => {
    const { orgId, userId } = await orgAndUser("files");
    const files = new PostgresFileStore(database.pool, { audit: database.audit });
    const memory = { orgId, namespace: "memories/org" };
    await files.write(memory, "/notes.md", new TextEncoder().encode("remember the milk"), {
      author: { userId, sessionId: "ses_files", turn: 2 },
    });
    await files.write(
      { orgId, namespace: "skills" },
      "/deploy/SKILL.md",
      new TextEncoder().encode("# deploy"),
    );
    await files.remove(memory, "/notes.md", { author: { userId } });
    const recorded = await entries(orgId);
    expect(recorded.map((entry) => [entry.kind, entry.sessionId, entry.userId, entry.data])).toEqual([
      [
        "memory_write",
        "ses_files",
        userId,
        {
          action: "write",
          namespace: "memories/org",
          path: "/notes.md",
          version: 1,
          size: 17,
          sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
          turn: 2,
        },
      ],
      [
        "memory_write",
        null,
        null,
        expect.objectContaining({
          action: "write",
          namespace: "skills",
          path: "/deploy/SKILL.md",
          version: 1,
        }),
      ],
      [
        "memory_write",
        null,
        userId,
        { action: "delete", namespace: "memories/org", path: "/notes.md", version: 2, size: 0 },
      ],
    ]);
    expect(JSON.stringify(recorded)).not.toContain("milk");

    // A write whose audit entry fails leaves no version behind.
    await expect(files.write(memory, "/exploding-audit.md", new TextEncoder().encode("x"))).rejects.toThrow(
      /injected failure/,
    );
    await expect(files.lookup(memory, "/exploding-audit.md")).resolves.toEqual({
      kind: "absent",
      version: 0,
    });
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 3 });
  });

  it("records secret sets and deletes by name and scope, never the value", async () => {
    const { orgId, userId } = await orgAndUser("secrets");
    const key = masterKeyFromBase64(randomBytes(32).toString("base64"), "test");
    const secrets = new PostgresSecretStore(database.pool, createSecretKeyring(key), {
      audit: database.audit,
    });
    await secrets.setSecret({ kind: "org", orgId }, "GITHUB_TOKEN", SECRET_VALUE, { userId });
    await secrets.setSecret({ kind: "org", orgId }, "GITHUB_TOKEN", `${SECRET_VALUE}-2`, { userId });
    await secrets.setSecret({ kind: "user", orgId, userId }, "NPM_TOKEN", SECRET_VALUE);
    await expect(secrets.deleteSecret({ kind: "org", orgId }, "NOPE", { userId })).resolves.toBe(false);
    await expect(secrets.deleteSecret({ kind: "org", orgId }, "GITHUB_TOKEN", { userId })).resolves.toBe(
      true,
    );
    const recorded = await entries(orgId);
    expect(recorded.map((entry) => [entry.kind, entry.userId, entry.data])).toEqual([
      ["secret_write", userId, { name: "GITHUB_TOKEN", scope: "org", action: "set", version: 1 }],
      ["secret_write", userId, { name: "GITHUB_TOKEN", scope: "org", action: "set", version: 2 }],
      [
        "secret_write",
        null,
        { name: "NPM_TOKEN", scope: "user", ownerUserId: userId, action: "set", version: 1 },
      ],
      ["secret_write", userId, { name: "GITHUB_TOKEN", scope: "org", action: "delete" }],
    ]);
    const { rows } = await database.pool.query("SELECT data::text FROM audit_entries WHERE org_id = $1", [
      orgId,
    ]);
    expect(JSON.stringify(rows)).not.toContain(SECRET_VALUE);
  });

  it("records a tool policy change with who made it", async () => {
    const { orgId, userId } = await orgAndUser("policy");
    const policy = {
      rules: [{ tool: "Bash", match: "*push*", action: "ask" as const }],
      approvalTimeoutMs: 60_000,
    };
    await database.policies.put(orgId, policy, { userId });
    const [entry] = await entries(orgId);
    expect(entry).toMatchObject({ kind: "policy_change", userId, data: { policy: "tool", value: policy } });
    await expect(database.policies.get(orgId)).resolves.toEqual(policy);
  });

  it("keeps one gap-free chain per org while sessions, files and secrets append concurrently", async () => {
    const { orgId, userId } = await orgAndUser("concurrent");
    const files = new PostgresFileStore(database.pool, { audit: database.audit });
    const sessionIds = await Promise.all(Array.from({ length: 4 }, () => runningSession(orgId, userId)));
    await Promise.all([
      ...sessionIds.flatMap((sessionId) =>
        Array.from({ length: 5 }, (_, index) =>
          database.sessions.appendEvents(sessionId, [toolStart(`call_${index}`, "Bash", { index })]),
        ),
      ),
      ...Array.from({ length: 5 }, (_, index) =>
        files.write({ orgId, namespace: "memories/org" }, `/m${index}.md`, new TextEncoder().encode("x")),
      ),
    ]);
    const recorded = await entries(orgId);
    expect(recorded.map((entry) => entry.seq)).toEqual(Array.from({ length: 25 }, (_, index) => index + 1));
    await expect(database.audit.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 25 });
  });

  async function auditHead(orgId: string): Promise<unknown> {
    const { rows } = await database.pool.query(
      "SELECT last_seq, last_hash FROM audit_heads WHERE org_id = $1",
      [orgId],
    );
    return rows[0];
  }
});

/** Counts the queries a pooled client sends (each is one round trip). */
function countQueries(client: pg.PoolClient): { count(): number; reset(): void } {
  let count = 0;
  const original = client.query.bind(client);
  (client as { query: unknown }).query = (...args: unknown[]) => {
    count += 1;
    return (original as (...values: unknown[]) => unknown)(...args);
  };
  return {
    count: () => count,
    reset: () => {
      count = 0;
    },
  };
}
