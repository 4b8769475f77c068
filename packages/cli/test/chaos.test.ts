/**
 * Crash-proof sessions: the real server is SIGKILLed at every step boundary of a 10-tool-call session
 * and at 20 random moments of another (mid-stream, mid-command), restarted each time. Each run must end
 * with the transcript and workspace of a run without faults, with every side effect exactly once, and a
 * client that reconnects with Last-Event-ID must see every event exactly once.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../src/sse-client.js";
import {
  createOutrigHome,
  type ServerProcess,
  spawnServerProcess,
  startServerProcess,
} from "./server-process.js";

const STEPS = 10;
const script = {
  turns: [
    ...Array.from({ length: STEPS }, (_, index) => ({
      delayMs: 20,
      text: `step ${index + 1}`,
      toolCalls: [
        { name: "Bash", input: { command: `echo step-${index + 1} >> /workspace/effects.log; sleep 0.05` } },
      ],
    })),
    { delayMs: 20, text: "done" },
  ],
};
const expectedEffects = Array.from({ length: STEPS }, (_, index) => `step-${index + 1}\n`).join("");

interface StoredEvent {
  seq: number;
  type: string;
  [key: string]: unknown;
}

let fakeLlm: FakeLlmServer;
let home: string;
let env: Record<string, string>;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  home = await createOutrigHome();
  env = { ANTHROPIC_API_KEY: "chaos", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` };
});

afterAll(async () => {
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** Follows a session's events across server restarts, reconnecting with Last-Event-ID. */
function follow(getServer: () => ServerProcess | undefined, sessionId: string) {
  const received: StoredEvent[] = [];
  let isDone = false;
  let stop = false;
  const done = (async () => {
    while (!stop && !isDone) {
      const server = getServer();
      if (!server) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      try {
        const lastId = received.at(-1)?.seq ?? 0;
        const response = await fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
          headers: { authorization: `Bearer ${server.apiKey}`, "last-event-id": String(lastId) },
        });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        for await (const message of parseSse(response.body)) {
          if (message.id === undefined) continue; // live-only text deltas
          const event = JSON.parse(message.data) as StoredEvent;
          received.push(event);
          if (event.type === "turn.end" || event.type === "turn.error") {
            isDone = true;
            break;
          }
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  })();
  return {
    received,
    done,
    cancel() {
      stop = true;
    },
  };
}

async function createSession(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.url}/v1/sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "anthropic:chaos", prompt: "append ten lines" }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function storedEvents(server: ServerProcess, sessionId: string): Promise<StoredEvent[]> {
  const response = await fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
    headers: { authorization: `Bearer ${server.apiKey}` },
  });
  const events: StoredEvent[] = [];
  if (!response.body) return events;
  for await (const message of parseSse(response.body)) {
    if (message.id === undefined) continue;
    const event = JSON.parse(message.data) as StoredEvent;
    events.push(event);
    if (event.type === "turn.end" || event.type === "turn.error") break;
  }
  return events;
}

/** The transcript without what legitimately differs between runs: times, sandbox lifecycle, vendor ids. */
function transcript(events: StoredEvent[]): unknown[] {
  const ids = new Map<string, string>();
  const id = (value: unknown) => {
    const key = String(value);
    if (!ids.has(key)) ids.set(key, `call_${ids.size + 1}`);
    return ids.get(key);
  };
  return (
    events
      // Sandbox lifecycle events and retries depend on timing (a restart starts a new sandbox, a
      // sandbox idle long enough is frozen), not on what the session did.
      .filter((event) => !event.type.startsWith("sandbox.") && event.type !== "model.retry")
      .map(({ seq: _seq, at: _at, durationMs: _duration, ...event }) => {
        const normalized: Record<string, unknown> = { ...event };
        if ("toolCallId" in normalized) normalized.toolCallId = id(normalized.toolCallId);
        if (event.type === "message.end") {
          const message = event.message as { content: { type: string; toolCallId?: string }[] };
          normalized.message = {
            ...message,
            content: message.content.map((part) =>
              part.toolCallId ? { ...part, toolCallId: id(part.toolCallId) } : part,
            ),
          };
        }
        return normalized;
      })
  );
}

async function effectsOf(sessionId: string): Promise<string> {
  return fs.readFile(path.join(home, "workspaces", sessionId, "effects.log"), "utf8");
}

describe("chaos: SIGKILL the server and restart it", () => {
  let baseline: StoredEvent[];

  it("runs the scripted session without faults (baseline)", async () => {
    const server = await startServerProcess({ home, env });
    try {
      const sessionId = await createSession(server);
      const follower = follow(() => server, sessionId);
      await follower.done;
      baseline = await storedEvents(server, sessionId);
      expect(baseline.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
      expect(baseline.filter((event) => event.type === "tool.end")).toHaveLength(STEPS);
      expect(await effectsOf(sessionId)).toBe(expectedEffects);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it("survives a SIGKILL at every step boundary", async () => {
    let current: ServerProcess | undefined = await startServerProcess({ home, env });
    const sessionId = await createSession(current);
    const follower = follow(() => current, sessionId);
    await current.stop("SIGKILL");
    current = undefined;
    let crashes = 1;
    let isDone = false;
    void follower.done.then(() => {
      isDone = true;
    });
    // Each start performs exactly one more append and dies (often before it even listens), so the
    // session crosses every step boundary by a crash.
    while (!isDone) {
      const { child, ready } = spawnServerProcess({
        home,
        env: { ...env, OUTRIG_FAULT_KILL_AFTER_APPEND: "1" },
      });
      void ready.then((server) => {
        if (server) current = server;
      });
      const exited = await Promise.race([
        new Promise<boolean>((resolve) => child.once("exit", () => resolve(true))),
        follower.done.then(() => false),
      ]);
      current = undefined;
      if (exited) crashes += 1;
      else child.kill("SIGKILL");
      await new Promise<void>((resolve) =>
        child.exitCode !== null || child.signalCode !== null
          ? resolve()
          : child.once("exit", () => resolve()),
      );
      expect(crashes).toBeLessThan(100);
    }
    const server = await startServerProcess({ home, env });
    try {
      const events = await storedEvents(server, sessionId);
      // One crash per persisted step after the turn started (message.end, tool.start, tool.end, turn.end).
      expect(crashes).toBeGreaterThanOrEqual(STEPS * 3);
      expect(transcript(events)).toEqual(transcript(baseline));
      expect(await effectsOf(sessionId)).toBe(expectedEffects);
      // What the reconnecting client saw: every stored event, once, in order.
      expect(follower.received.map((event) => event.seq)).toEqual(events.map((event) => event.seq));
      expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    } finally {
      follower.cancel();
      await server.stop();
    }
  }, 400_000);

  it("survives 20 SIGKILLs at random moments (mid-stream, mid-command)", async () => {
    let current: ServerProcess | undefined = await startServerProcess({ home, env });
    const sessionId = await createSession(current);
    const follower = follow(() => current, sessionId);
    for (let kill = 0; kill < 20; kill++) {
      await new Promise((resolve) => setTimeout(resolve, 30 + Math.random() * 400));
      await current?.stop("SIGKILL");
      current = await startServerProcess({ home, env });
    }
    await follower.done;
    const server = current;
    try {
      const events = await storedEvents(server, sessionId);
      expect(transcript(events)).toEqual(transcript(baseline));
      expect(await effectsOf(sessionId)).toBe(expectedEffects);
      expect(follower.received.map((event) => event.seq)).toEqual(events.map((event) => event.seq));
      expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    } finally {
      follower.cancel();
      await server.stop();
    }
  }, 300_000);
});
