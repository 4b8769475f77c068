/**
 * Crash-proof sessions: the real server is SIGKILLed at every step boundary of a 10-tool-call session
 * and at 20 random moments of another (mid-stream, mid-command), restarted each time. Each run must end
 * with the transcript and workspace of a run without faults, with every side effect exactly once, and a
 * client streaming through the SDK that reconnects with Last-Event-ID must see every event exactly once.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, isSettled, listEvents, type SessionEvent, sendMessage, TOOLS } from "./api-session.js";
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
        {
          name: TOOLS.bash,
          input: { command: `echo step-${index + 1} >> /workspace/effects.log; sleep 0.05` },
        },
      ],
    })),
    { delayMs: 20, text: "done" },
  ],
};
const expectedEffects = Array.from({ length: STEPS }, (_, index) => `step-${index + 1}\n`).join("");

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

const isIdle = (event: SessionEvent) =>
  event.type === "session.status_idle" || event.type === "session.status_terminated";

/**
 * Follows a session's events across server restarts with the SDK's stream, reconnecting with
 * Last-Event-ID after the last event received (at first: the user.message that started the turn).
 */
function follow(getServer: () => ServerProcess | undefined, sessionId: string, afterId: string) {
  const received: SessionEvent[] = [];
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
        const lastId = received.at(-1)?.id ?? afterId;
        const stream = await apiClient(server).beta.sessions.events.stream(
          sessionId,
          {},
          { headers: { "last-event-id": lastId } },
        );
        for await (const event of stream) {
          if (event.type === "event_start" || event.type === "event_delta") continue;
          received.push(event);
          if (isIdle(event)) {
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

/** A session of the chaos agent, its first message sent; returns the session and that message's id. */
async function createSession(server: ServerProcess): Promise<{ sessionId: string; messageId: string }> {
  const client = apiClient(server);
  const agent = await client.beta.agents.create({
    name: "chaos",
    model: "anthropic:chaos",
    tools: [{ type: "agent_toolset_20260401" }],
  });
  const environment = await client.beta.environments.create({ name: "chaos", config: { type: "cloud" } });
  const session = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
  const messageId = await sendMessage(client, session.id, "append ten lines");
  expect(messageId).toMatch(/^sevt_/);
  return { sessionId: session.id, messageId };
}

/** The stored events from the user.message on, up to the idle that ends the turn. */
async function storedEvents(server: ServerProcess, sessionId: string): Promise<SessionEvent[]> {
  const events = await listEvents(apiClient(server), sessionId);
  expect(isSettled(events)).toBe(true);
  const first = events.findIndex((event) => event.type === "user.message");
  const last = events.findIndex(isIdle);
  return events.slice(first, last + 1);
}

/** The transcript without what legitimately differs between runs: ids, times, sandbox lifecycle, retries. */
function transcript(events: SessionEvent[]): unknown[] {
  const labels = new Map<string, string>();
  const label = (value: unknown) => {
    const key = String(value);
    if (!labels.has(key)) labels.set(key, `event_${labels.size + 1}`);
    return labels.get(key);
  };
  return (
    events
      // Sandbox lifecycle events and retries depend on timing (a restart starts a new sandbox, a
      // sandbox idle long enough is frozen), not on what the session did.
      .filter(
        (event) =>
          !event.type.startsWith("session.sandbox_") &&
          !(event.type === "session.error" && event.error.retry_status.type === "retrying"),
      )
      .map((event) => {
        const { id, processed_at: _at, ...fields } = event as SessionEvent & { processed_at?: string };
        const normalized: Record<string, unknown> = { ...fields, id: label(id) };
        for (const key of ["tool_use_id", "model_request_start_id"])
          if (key in normalized) normalized[key] = label(normalized[key]);
        return normalized;
      })
  );
}

async function effectsOf(sessionId: string): Promise<string> {
  return fs.readFile(path.join(home, "workspaces", sessionId, "effects.log"), "utf8");
}

describe("chaos: SIGKILL the server and restart it", () => {
  let baseline: SessionEvent[];

  it("runs the scripted session without faults (baseline)", async () => {
    const server = await startServerProcess({ home, env });
    try {
      const { sessionId, messageId } = await createSession(server);
      const follower = follow(() => server, sessionId, messageId);
      await follower.done;
      baseline = await storedEvents(server, sessionId);
      expect(baseline.at(-1)).toMatchObject({
        type: "session.status_idle",
        stop_reason: { type: "end_turn" },
      });
      expect(baseline.filter((event) => event.type === "agent.tool_result")).toHaveLength(STEPS);
      expect(await effectsOf(sessionId)).toBe(expectedEffects);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it("survives a SIGKILL at every step boundary", async () => {
    let current: ServerProcess | undefined = await startServerProcess({ home, env });
    const { sessionId, messageId } = await createSession(current);
    const follower = follow(() => current, sessionId, messageId);
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
      // One crash per persisted step after the turn started (a model response, a call's start and end, the turn's end).
      expect(crashes).toBeGreaterThanOrEqual(STEPS * 3);
      expect(transcript(events)).toEqual(transcript(baseline));
      expect(await effectsOf(sessionId)).toBe(expectedEffects);
      // What the reconnecting client saw: every stored event after the message, once, in order.
      expect(follower.received.map((event) => event.id)).toEqual(events.slice(1).map((event) => event.id));
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    } finally {
      follower.cancel();
      await server.stop();
    }
  }, 400_000);

  it("survives 20 SIGKILLs at random moments (mid-stream, mid-command)", async () => {
    let current: ServerProcess | undefined = await startServerProcess({ home, env });
    const { sessionId, messageId } = await createSession(current);
    const follower = follow(() => current, sessionId, messageId);
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
      expect(follower.received.map((event) => event.id)).toEqual(events.slice(1).map((event) => event.id));
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    } finally {
      follower.cancel();
      await server.stop();
    }
  }, 300_000);
});
