import type { NewSessionEvent, UserContentPart } from "@outrig/protocol";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database, PostgresSessionStore } from "../src/index.js";

const turnStart = (turn: number, text: string): NewSessionEvent => ({ type: "turn.start", turn, text });

describe("PostgresSessionStore", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let orgId: string;
  let userId: string;
  let otherOrgId: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    orgId = (await database.auth.createOrg("sessions-org")).id;
    userId = (await database.auth.createUser(orgId, { name: "ada", role: "member" })).id;
    otherOrgId = (await database.auth.createOrg("sessions-other")).id;
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("creates, reads and updates a session, scoped by org", async () => {
    const created = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: "be brief",
    });

    expect(created).toMatchObject({
      orgId,
      userId,
      model: "fake:echo",
      system: "be brief",
      status: "idle",
      turns: 0,
      lastSeq: 0,
    });
    expect(created.id).toMatch(/^sesn_[0-9A-Za-z]{20}$/);
    await expect(database.sessions.getSession(orgId, created.id)).resolves.toEqual(created);
    await expect(database.sessions.getSession(otherOrgId, created.id)).resolves.toBeNull();

    await database.sessions.updateSession(created.id, { status: "running", turns: 1 });
    const updated = await database.sessions.getSession(orgId, created.id);
    expect(updated).toMatchObject({ status: "running", turns: 1, system: "be brief" });
    await database.sessions.updateSession(created.id, { status: "idle" });
    await expect(database.sessions.getSession(orgId, created.id)).resolves.toMatchObject({
      status: "idle",
      turns: 1,
    });
  });

  it("lists an org's sessions newest first and running sessions of every org oldest first", async () => {
    let ticks = 0;
    const clock = () => {
      ticks += 1;
      return new Date(Date.parse("2030-01-01T00:00:00Z") + ticks * 1000);
    };
    const store = new PostgresSessionStore(database.pool, { clock });
    const listOrg = (await database.auth.createOrg("list-org")).id;
    const listUser = (await database.auth.createUser(listOrg, { name: "bo", role: "admin" })).id;
    const ids: string[] = [];
    for (const model of ["a", "b", "c"]) {
      ids.push((await store.createSession({ orgId: listOrg, userId: listUser, model, system: null })).id);
    }

    const listed = await store.listSessions(listOrg, { limit: 2 });
    expect(listed.map((session) => session.id)).toEqual([ids[2], ids[1]]);
    await expect(store.listSessions(otherOrgId, { limit: 10 })).resolves.toEqual([]);

    await store.updateSession(ids[2] ?? "", { status: "running" });
    await store.updateSession(ids[0] ?? "", { status: "running" });
    const running = (await store.listRunningSessions({ limit: 100 })).filter(
      (session) => session.orgId === listOrg,
    );
    expect(running.map((session) => session.id)).toEqual([ids[0], ids[2]]);
  });

  it("assigns seqs from 1, stores schemaVersion, and reads events back after a seq", async () => {
    const session = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: null,
    });

    const first = await database.sessions.appendEvents(session.id, [
      { type: "session.start", model: "fake:echo" },
      turnStart(1, "hello"),
    ]);
    const second = await database.sessions.appendEvents(session.id, [turnStart(2, "again")]);

    expect(first.map((event) => event.seq)).toEqual([1, 2]);
    expect(second).toEqual([{ type: "turn.start", turn: 2, text: "again", seq: 3, at: expect.any(String) }]);
    await expect(database.sessions.readEvents(session.id, { afterSeq: 0, limit: 100 })).resolves.toEqual([
      ...first,
      ...second,
    ]);
    await expect(database.sessions.readEvents(session.id, { afterSeq: 1, limit: 1 })).resolves.toEqual([
      first[1],
    ]);
    await expect(database.sessions.getSession(orgId, session.id)).resolves.toMatchObject({ lastSeq: 3 });
    const raw = await database.pool.query(
      "SELECT org_id, payload FROM session_events WHERE session_id = $1 AND seq = 3",
      [session.id],
    );
    expect(raw.rows[0]).toEqual({
      org_id: orgId,
      payload: { schemaVersion: 1, type: "turn.start", turn: 2, text: "again" },
    });
  });

  it("keeps seqs gap-free and batches contiguous under 20 concurrent appenders", async () => {
    const session = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: null,
    });
    // A second pool so that appenders really contend from separate connections and processes' worth of pools.
    const second = await createDatabase({ url: testDatabase.url, poolSize: 10 });
    try {
      const stores = [database.sessions, second.sessions];
      const batches = await Promise.all(
        Array.from({ length: 20 }, (_, appender) =>
          stores[appender % 2]?.appendEvents(session.id, [
            turnStart(appender, "a"),
            turnStart(appender, "b"),
            turnStart(appender, "c"),
          ]),
        ),
      );

      const events = await database.sessions.readEvents(session.id, { afterSeq: 0, limit: 1000 });
      expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 60 }, (_, index) => index + 1));
      for (const batch of batches) {
        const seqs = batch?.map((event) => event.seq) ?? [];
        expect(seqs).toHaveLength(3);
        expect(seqs[2]).toBe((seqs[0] ?? 0) + 2);
        const stored = events.slice((seqs[0] ?? 0) - 1, seqs[2]);
        expect(stored).toEqual(batch);
      }
      await expect(database.sessions.getSession(orgId, session.id)).resolves.toMatchObject({ lastSeq: 60 });
    } finally {
      await second.close();
    }
  });

  it("writes nothing for a batch that holds an invalid event", async () => {
    const session = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: null,
    });
    const invalid = { type: "turn.start", turn: "one", text: "x" } as unknown as NewSessionEvent;

    await expect(
      database.sessions.appendEvents(session.id, [turnStart(1, "ok"), invalid]),
    ).rejects.toMatchObject({
      code: "invariant_violated",
    });
    await expect(database.sessions.readEvents(session.id, { afterSeq: 0, limit: 10 })).resolves.toEqual([]);
    await expect(database.sessions.getSession(orgId, session.id)).resolves.toMatchObject({ lastSeq: 0 });
  });

  it("rejects a stored event with an unknown schemaVersion instead of returning it", async () => {
    const session = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: null,
    });
    await database.pool.query(
      `INSERT INTO session_events (org_id, session_id, seq, type, payload, at)
       VALUES ($1, $2, 1, 'turn.start', '{"schemaVersion": 99, "type": "turn.start", "turn": 1, "text": "x"}', now())`,
      [orgId, session.id],
    );
    await expect(database.sessions.readEvents(session.id, { afterSeq: 0, limit: 10 })).rejects.toMatchObject({
      code: "event_unreadable",
    });
  });

  it("stores NUL bytes, unpaired surrogates and the escape character and reads them back unchanged", async () => {
    const session = await database.sessions.createSession({
      orgId,
      userId,
      model: "fake:echo",
      system: null,
    });
    const awkward = "a\u0000b \uFDD0 \uFDD00000 \uD800 x\uDC00 \uD83D\uDE00 \\u0000 end\u0000";
    const events: NewSessionEvent[] = [
      { type: "turn.start", turn: 1, text: `user ${awkward}` },
      {
        type: "tool.start",
        turn: 1,
        toolCallId: "call_\u0000",
        name: "Bash",
        input: { [`k${awkward}`]: awkward },
      },
      {
        type: "tool.end",
        turn: 1,
        toolCallId: "call_\u0000",
        name: "Bash",
        isError: false,
        output: awkward,
        durationMs: 1,
      },
      { type: "turn.end", turn: 1, reason: "end_turn", usage: { inputTokens: 0, outputTokens: 0 } },
    ];
    const stored = await database.sessions.appendEvents(session.id, events);
    const read = await database.sessions.readEvents(session.id, { afterSeq: 0, limit: 10 });
    expect(read).toEqual(stored);
    expect(read.map(({ seq: _seq, at: _at, ...event }) => event)).toEqual(events);
    const { rows } = await database.pool.query<{ seq: string; version: number }>(
      "SELECT seq, (payload->>'schemaVersion')::int AS version FROM session_events WHERE session_id = $1 ORDER BY seq",
      [session.id],
    );
    // Only the payloads that needed escaping are written as version 2.
    expect(rows.map((row) => row.version)).toEqual([2, 2, 2, 1]);
    // The audit entry of the tool call records the input too.
    const audit = await database.pool.query<{ data: { isInputEscaped?: boolean } }>(
      "SELECT data FROM audit_entries WHERE session_id = $1 AND kind = 'tool_call'",
      [session.id],
    );
    expect(audit.rows[0]?.data.isInputEscaped).toBe(true);
  });

  it("queues messages sent during a turn in order and starts each as its own turn, never two at once", async () => {
    const store = database.sessions;
    const session = await store.createSession({ orgId, userId, model: "fake:echo", system: null });
    const first = await store.submitMessage(orgId, session.id, "first", { userId });
    expect(first).toMatchObject({ type: "started", turn: 1 });
    // Twenty senders at once while the turn runs: every message is queued, in the order of its seq.
    const texts = Array.from({ length: 20 }, (_, index) => `m${index}`);
    const queued = await Promise.all(texts.map((text) => store.submitMessage(orgId, session.id, text)));
    expect(queued.every((message) => message.type === "queued")).toBe(true);
    await expect(store.startQueuedTurn(session.id)).resolves.toBeNull(); // a turn still runs
    const bySeq = [...queued].sort((left, right) => left.event.seq - right.event.seq);
    const order = bySeq.map((message) => (message.event.type === "message.queue" ? message.event.text : ""));
    expect(order.sort()).toEqual([...texts].sort());

    const started: string[] = [];
    for (let turn = 1; turn <= 21; turn++) {
      await store.appendEvents(
        session.id,
        [{ type: "turn.end", turn, reason: "end_turn", usage: { inputTokens: 0, outputTokens: 0 } }],
        { turn },
      );
      // A message sent now, with the queue not empty, waits behind it rather than starting at once.
      if (turn === 1) {
        await expect(store.submitMessage(orgId, session.id, "late")).resolves.toMatchObject({
          type: "queued",
        });
      }
      const [next, again] = await Promise.all([
        store.startQueuedTurn(session.id),
        store.startQueuedTurn(session.id),
      ]);
      const winner = next ?? again;
      expect(next === null || again === null).toBe(true);
      if (winner?.event.type === "turn.start") {
        expect(winner.turn).toBe(turn + 1);
        started.push(winner.event.text);
      }
    }
    expect(started).toEqual([
      ...bySeq.map((message) => (message.event.type === "message.queue" ? message.event.text : "")),
      "late",
    ]);
    const starts = (await store.readEvents(session.id, { afterSeq: 0, limit: 1000 })).filter(
      (event) => event.type === "turn.start",
    );
    expect(starts.slice(1, 21).map((event) => event.type === "turn.start" && event.queuedSeq)).toEqual(
      bySeq.map((message) => message.event.seq),
    );
    await expect(store.startQueuedTurn(session.id)).resolves.toBeNull();
    await expect(store.submitMessage(otherOrgId, session.id, "x")).rejects.toMatchObject({ status: 404 });
  });

  it("keeps a message's image and document blocks on turn.start and through the queue", async () => {
    const store = database.sessions;
    const session = await store.createSession({ orgId, userId, model: "fake:echo", system: null });
    const content: UserContentPart[] = [
      { type: "text", text: "look" },
      { type: "image", mediaType: "image/png", source: { type: "base64", data: "iVBORw0KGgo=" } },
      { type: "document", mediaType: "text/plain", source: { type: "text", data: "notes" }, title: "n" },
    ];
    const first = await store.submitMessage(orgId, session.id, "look", { userId, content });
    expect(first.event).toMatchObject({ type: "turn.start", content });
    const queued = await store.submitMessage(orgId, session.id, "look", { content });
    expect(queued).toMatchObject({ type: "queued", event: { type: "message.queue", content } });
    await store.appendEvents(
      session.id,
      [{ type: "turn.end", turn: 1, reason: "end_turn", usage: { inputTokens: 0, outputTokens: 0 } }],
      { turn: 1 },
    );
    const started = await store.startQueuedTurn(session.id);
    expect(started?.event).toMatchObject({ type: "turn.start", content, queuedSeq: queued.event.seq });
    const stored = await store.readEvents(session.id, { afterSeq: 0, limit: 10 });
    expect(
      stored
        .filter((event) => event.type === "turn.start")
        .map((event) => "content" in event && event.content),
    ).toEqual([content, content]);
  });

  it("leaves a cancelled turn's session idle and a failed one's in error", async () => {
    const store = database.sessions;
    const session = await store.createSession({ orgId, userId, model: "fake:echo", system: null });
    const { turn } = await store.startTurn(orgId, session.id, "one");
    await store.appendEvents(
      session.id,
      [{ type: "turn.error", turn, code: "cancelled", message: "The turn was cancelled." }],
      { turn },
    );
    await expect(store.getSession(orgId, session.id)).resolves.toMatchObject({ status: "idle" });
    const second = await store.startTurn(orgId, session.id, "two");
    await store.appendEvents(
      session.id,
      [{ type: "turn.error", turn: second.turn, code: "model_server_error", message: "boom" }],
      { turn: second.turn },
    );
    await expect(store.getSession(orgId, session.id)).resolves.toMatchObject({ status: "error" });
  });

  it("never stamps an event earlier than the one before it, whatever the writer's clock says", async () => {
    // Two writers on one session: the second one's clock runs 5 s behind, and the first one's steps back.
    let now = Date.parse("2026-01-01T00:00:10.000Z");
    const ahead = new PostgresSessionStore(database.pool, { clock: () => new Date(now) });
    const behind = new PostgresSessionStore(database.pool, { clock: () => new Date(now - 5000) });
    const session = await ahead.createSession({ orgId, userId, model: "fake:echo", system: null });
    const { turn } = await ahead.startTurn(orgId, session.id, "go");
    const returned = [
      ...(await behind.appendEvents(session.id, [turnStart(turn + 10, "behind")])),
      ...(await ahead.appendEvents(session.id, [turnStart(turn + 11, "ahead")])),
    ];
    now -= 60_000; // the clock steps back a minute
    returned.push(...(await ahead.appendEvents(session.id, [turnStart(turn + 12, "stepped back")])));
    now += 120_000;
    returned.push(...(await behind.appendEvents(session.id, [turnStart(turn + 13, "later")])));
    now -= 120_000;
    await ahead.updateSession(session.id, { turns: turn });
    const stored = await ahead.readEvents(session.id, { afterSeq: 0, limit: 100 });
    expect(stored.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    const times = stored.map((event) => Date.parse(event.at));
    for (let index = 1; index < times.length; index++) {
      expect(times[index]).toBeGreaterThanOrEqual(times[index - 1] as number);
    }
    expect(stored.map((event) => event.at)).toEqual([
      "2026-01-01T00:00:10.000Z",
      "2026-01-01T00:00:10.000Z",
      "2026-01-01T00:00:10.000Z",
      "2026-01-01T00:00:10.000Z",
      "2026-01-01T00:01:05.000Z",
    ]);
    // What appendEvents returned (and the live stream published) agrees with what was stored.
    expect(returned.map((event) => event.at)).toEqual(stored.slice(1).map((event) => event.at));
    const record = await ahead.getSession(orgId, session.id);
    expect(record?.updatedAt.toISOString()).toBe("2026-01-01T00:01:05.000Z");
  });

  it("reports unknown sessions and a user from another org", async () => {
    await expect(database.sessions.appendEvents("ses_missing", [turnStart(1, "x")])).rejects.toMatchObject({
      code: "session_not_found",
    });
    await expect(database.sessions.updateSession("ses_missing", { turns: 1 })).rejects.toMatchObject({
      code: "session_not_found",
    });
    await expect(
      database.sessions.createSession({ orgId: otherOrgId, userId, model: "fake:echo", system: null }),
    ).rejects.toMatchObject({ code: "session_invalid_owner" });
  });
});
