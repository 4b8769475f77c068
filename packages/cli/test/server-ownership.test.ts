/**
 * One server per OUTRIG_HOME, and health that tells the truth, on real server processes (embedded
 * Postgres, bubblewrap): a second `outrig serve` on a home in use exits at once naming the holder and
 * leaves the first one working; `/readyz` fails while the embedded Postgres is gone, and the server
 * then exits non-zero so a supervisor restarts it (which brings the database back).
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, stopReason, waitForIdle } from "./api-session.js";
import { createOutrigHome, OUTRIG_BIN, type ServerProcess, startServerProcess } from "./server-process.js";

let fakeLlm: FakeLlmServer;
let env: Record<string, string>;
const homes: string[] = [];
const children: ChildProcess[] = [];
const servers: ServerProcess[] = [];

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [{ text: "hello" }] }, turnSelection: "history" });
  env = { ANTHROPIC_API_KEY: "ownership", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` };
});

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all(servers.map((server) => server.stop()));
  await fakeLlm?.close();
  await Promise.all(homes.map((home) => fs.rm(home, { recursive: true, force: true })));
});

async function newHome(): Promise<string> {
  const home = await createOutrigHome();
  homes.push(home);
  return home;
}

/** Runs `outrig serve` until it exits or `limitMs` passes (then it is killed and `code` is "running"). */
async function serveUntilExit(
  home: string,
  port: string,
  limitMs: number,
): Promise<{ code: number | null | "running"; output: string; elapsedMs: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [OUTRIG_BIN, "serve"], {
    env: { ...process.env, ...env, OUTRIG_HOME: home, OUTRIG_PORT: port },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null | "running">((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("running");
    }, limitMs);
    child.once("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, output, elapsedMs: Date.now() - started };
}

/** A session with one model turn goes from created to idle: the database and the workflows work. */
async function expectWorking(server: ServerProcess): Promise<void> {
  const client = apiClient(server);
  const { session } = await createAgentSession(client, { model: "anthropic:x", prompt: "hi" });
  expect(session.type).toBe("session");
  const events = await waitForIdle(client, session.id);
  expect(stopReason(events)).toBe("end_turn");
}

describe("one server per OUTRIG_HOME", () => {
  it("refuses a second server on the same home, on another port or the same one, and the first keeps working", async () => {
    const home = await newHome();
    const first = await startServerProcess({ home, env });
    servers.push(first);
    const firstPort = new URL(first.url).port;

    for (const port of ["0", firstPort]) {
      const second = await serveUntilExit(home, port, 30_000);
      expect(second.code, second.output).toBe(1);
      expect(second.elapsedMs).toBeLessThan(15_000);
      expect(second.output).toContain(`is in use by another outrig server (pid ${first.child.pid}`);
      expect(second.output).toContain(first.url);
      // One clear line, before touching the first server's Postgres or port.
      expect(second.output.trim().split("\n")).toHaveLength(1);
    }

    const ready = await fetch(`${first.url}/readyz`);
    expect(ready.status).toBe(200);
    await expectWorking(first);
  }, 180_000);

  it("exits promptly with one message when its port is taken, leaving the server on that port alone", async () => {
    const first = await startServerProcess({ home: await newHome(), env });
    servers.push(first);
    const port = new URL(first.url).port;
    const second = await serveUntilExit(await newHome(), port, 60_000);
    expect(second.code, second.output).toBe(1);
    expect(second.output).toContain(`port ${port} is already in use`);
    expect(second.elapsedMs).toBeLessThan(45_000);
    await expectWorking(first);
  }, 180_000);

  it("takes over the home of a server that was SIGKILLed", async () => {
    const home = await newHome();
    const crashed = await startServerProcess({ home, env });
    await crashed.stop("SIGKILL");
    const next = await startServerProcess({ home, env });
    servers.push(next);
    await expectWorking(next);
  }, 120_000);
});

describe("readiness", () => {
  it("reports 503 naming the database once the embedded Postgres is killed, then exits non-zero; a restart recovers", async () => {
    const home = await newHome();
    const server = await startServerProcess({ home, env });
    servers.push(server);
    const healthy = await fetch(`${server.url}/readyz`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toEqual({
      ready: true,
      checks: { database: "ok", sandbox: "ok", egress: "ok" },
    });

    const { clusterDir } = JSON.parse(await fs.readFile(path.join(home, "postgres.json"), "utf8")) as {
      clusterDir: string;
    };
    const postmasterPid = Number(
      (await fs.readFile(path.join(clusterDir, "postmaster.pid"), "utf8")).split("\n")[0],
    );
    expect(postmasterPid).toBeGreaterThan(0);
    const exited = new Promise<number | null>((resolve) =>
      server.child.once("exit", (code) => resolve(code)),
    );
    const killedAt = Date.now();
    process.kill(postmasterPid, "SIGKILL");

    let unready: { status: number; body: unknown } | undefined;
    const statuses: number[] = [];
    while (!unready) {
      const response = await fetch(`${server.url}/readyz`);
      statuses.push(response.status);
      if (response.status === 503) unready = { status: 503, body: await response.json() };
      else await new Promise((resolve) => setTimeout(resolve, 50));
      expect(Date.now() - killedAt, `readiness answers: ${statuses.join(" ")}`).toBeLessThan(20_000);
    }
    expect(unready.body).toMatchObject({
      ready: false,
      checks: { database: expect.not.stringMatching(/^ok$/) },
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    expect(await exited).toBe(1);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(server.output()).toContain("the embedded Postgres");

    const restarted = await startServerProcess({ home, env });
    servers.push(restarted);
    expect((await fetch(`${restarted.url}/readyz`)).status).toBe(200);
    await expectWorking(restarted);
  }, 180_000);
});
