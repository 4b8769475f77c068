/**
 * Scale-out: two `outrig serve --worker-id` processes on one external Postgres share the sessions;
 * when one is SIGKILLed mid-turn, the other takes its turns over (heartbeat lost) and finishes them,
 * with every side effect exactly once. In CI the Postgres is Debian's server (see .ci/run).
 * A home belongs to one server, so each worker has its own; like two machines on a shared volume,
 * they share the workspaces, the sandbox journals, the snapshots and the master key.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, stopReason, TOOLS, waitForIdle } from "./api-session.js";
import {
  createOutrigHome,
  type ServerProcess,
  spawnServerProcess,
  startServerProcess,
} from "./server-process.js";

const SESSIONS = 6;
const STEPS = 3;
const script = {
  turns: [
    ...Array.from({ length: STEPS }, (_, index) => ({
      delayMs: 400,
      toolCalls: [
        { name: TOOLS.bash, input: { command: `echo step-${index + 1} >> /workspace/effects.log` } },
      ],
    })),
    { text: "done" },
  ],
};

let fakeLlm: FakeLlmServer;
let database: TestDatabase;
let home: string;
let secondHome: string;
const workers: ServerProcess[] = [];

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  database = await createTestDatabase();
  home = await createOutrigHome();
  secondHome = await createOutrigHome();
});

/** What two machines share on a volume: the second home's directories are the first one's. */
async function shareVolumes(): Promise<void> {
  for (const name of ["workspaces", "sandbox-state", "snapshots"]) {
    await fs.mkdir(path.join(home, name), { recursive: true, mode: 0o700 });
    await fs.symlink(path.join(home, name), path.join(secondHome, name));
  }
  for (const name of ["master.key", "credentials.json"]) {
    await fs.symlink(path.join(home, name), path.join(secondHome, name));
  }
}

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await fakeLlm?.close();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
  if (secondHome) await fs.rm(secondHome, { recursive: true, force: true });
});

function workerEnv(id: string): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    OUTRIG_WORKER_ID: id,
    OUTRIG_WORKER_DEAD_AFTER_MS: "3000",
    ANTHROPIC_API_KEY: "scale",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
  };
}

describe("two workers on one Postgres", () => {
  it("spread sessions, and the survivor finishes the sessions of a worker killed mid-turn", async () => {
    const first = await startServerProcess({ home, env: workerEnv("worker-a") });
    workers.push(first);
    // The second worker shares the volumes (and so the workspaces) but not the process or the home.
    await shareVolumes();
    const { ready } = spawnServerProcess({ home: secondHome, env: workerEnv("worker-b") });
    const second = await ready;
    if (!second) throw new Error("worker-b did not start");
    workers.push(second);
    const api = apiClient(first);
    const agent = await api.beta.agents.create({
      name: "scale",
      model: "anthropic:scale",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await api.beta.environments.create({ name: "scale", config: { type: "cloud" } });
    const ids: string[] = [];
    for (let index = 0; index < SESSIONS; index++) {
      const session = await api.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        initial_events: [{ type: "user.message", content: [{ type: "text", text: "append" }] }],
      });
      ids.push(session.id);
    }

    // Wait until both workers run turns, then kill worker-a in the middle of them.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      let executors: string[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const { rows } = await client.query<{ executor_id: string }>(
          "SELECT DISTINCT executor_id FROM dbos.workflow_status WHERE status = 'PENDING'",
        );
        executors = rows.map((row) => row.executor_id).sort();
        if (executors.length === 2) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(executors).toEqual(["worker-a", "worker-b"]);
      await first.stop("SIGKILL");

      // worker-b takes over within seconds and finishes everything.
      const survivor = apiClient(second);
      const takeoverDeadline = Date.now() + 60_000;
      for (const id of ids) {
        const events = await waitForIdle(survivor, id, Math.max(1, takeoverDeadline - Date.now()));
        expect(stopReason(events), id).toBe("end_turn");
      }
      const listed = await survivor.beta.sessions.list({ agent_id: agent.id, limit: SESSIONS });
      expect(listed.data.map((session) => session.status)).toEqual(Array(SESSIONS).fill("idle"));
      const { rows } = await client.query<{ executor_id: string; count: string }>(
        "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' GROUP BY executor_id",
      );
      expect(rows.map((row) => row.executor_id)).toContain("worker-b");
    } finally {
      await client.end();
    }
    for (const id of ids) {
      const effects = await fs.readFile(path.join(home, "workspaces", id, "effects.log"), "utf8");
      expect(effects, id).toBe("step-1\nstep-2\nstep-3\n");
    }
    expect(second.output()).toMatch(/took over \d+ turn\(s\) of dead worker worker-a/);
  }, 180_000);
});
