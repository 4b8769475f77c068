/**
 * Hibernate end to end, on a real server process with runc sandboxes (OUTRIG_SANDBOX_PROVIDER=runc)
 * and the fake LLM: a background process started by Bash survives standby → hibernated (a CRIU
 * checkpoint on disk, the container gone) → resumed by the next turn's tool call. Skipped, with the
 * reason printed, where runc or a working CRIU >= 4 is missing (.ci/run builds CRIU).
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { checkRuncHibernate } from "@outrig/sandboxes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  resultText,
  sendMessage,
  stopReason,
  TOOLS,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

const support = await checkRuncHibernate();
if (!support.isSupported) console.log(`[hibernate e2e] skipped: ${support.reason}`);

const script = {
  turns: [
    {
      toolCalls: [
        {
          name: TOOLS.bash,
          // A background process, and a value that exists only in a running process's memory.
          input: {
            command:
              "sleep 1000 & echo $! > /workspace/sleeper.pid; " +
              "(token=$RANDOM$RANDOM; echo $token > /workspace/token; " +
              'while sleep 0.2; do echo "$token" > /workspace/token.live; done) & echo started; ' +
              "curl -s -o /dev/null -w 'proxy answered %{http_code}' http://not-allowed.example/",
          },
        },
      ],
    },
    { text: "parked" },
    {
      toolCalls: [
        {
          name: TOOLS.bash,
          input: {
            command:
              'kill -0 "$(cat /workspace/sleeper.pid)" && echo "sleeper alive $(cat /workspace/sleeper.pid)"; ' +
              "rm -f /workspace/token.live; sleep 1; " +
              'test "$(cat /workspace/token.live)" = "$(cat /workspace/token)" && echo "token kept $(cat /workspace/token)"; ' +
              // The egress bridge was closed for the checkpoint and must listen again after the restore.
              "curl -s -o /dev/null -w 'proxy answered %{http_code}' http://not-allowed.example/",
          },
        },
      ],
    },
    { text: "done" },
  ],
};

describe.skipIf(!support.isSupported)("hibernate through a real session (runc + CRIU)", () => {
  let llm: FakeLlmServer;
  let home: string;
  let server: ServerProcess;

  beforeAll(async () => {
    llm = await startFakeLlmServer({ script, turnSelection: "history" });
    home = await createOutrigHome();
    server = await startServerProcess({
      home,
      env: {
        ANTHROPIC_API_KEY: "hibernate",
        ANTHROPIC_BASE_URL: `${llm.url}/v1`,
        OUTRIG_SANDBOX_PROVIDER: "runc",
        OUTRIG_STANDBY_AFTER_MS: "100",
        OUTRIG_HIBERNATE_AFTER_MS: "1000",
        ...(support.isSupported ? { OUTRIG_CRIU: support.criuPath } : {}),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await llm?.close();
    if (home && !process.env.KEEP_HOME) await fs.rm(home, { recursive: true, force: true });
  }, 60_000);

  async function api(method: string, route: string, body?: unknown) {
    const response = await fetch(`${server.url}${route}`, {
      method,
      headers: {
        "x-api-key": server.apiKey,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  it("keeps a background process and in-memory state across hibernate → resume", async () => {
    const client = apiClient(server);
    const { session } = await createAgentSession(client, { model: "anthropic:hibernate", prompt: "start" });
    const sessionId = session.id;
    const first = await waitForIdle(client, sessionId, 120_000);
    expect(stopReason(first)).toBe("end_turn");
    expect(first.find((event) => event.type === "agent.tool_result")).toMatchObject({ is_error: false });

    // Idle while "waiting for the user": standby after 100 ms, hibernated after 1 s.
    const deadline = Date.now() + 90_000;
    let state: unknown;
    while (Date.now() < deadline) {
      state = (await api("GET", `/v1/sessions/${sessionId}/sandbox`)).json.state;
      if (state === "hibernated") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (state !== "hibernated") console.log(server.output());
    expect(state).toBe("hibernated");

    await sendMessage(client, sessionId, "check");
    const all = await waitForIdle(client, sessionId, 120_000);
    const types = all.map((event) => event.type as string);
    expect(types).toContain("session.sandbox_hibernated");
    const resumedAt = types.lastIndexOf("session.sandbox_resumed");
    expect(resumedAt).toBeGreaterThan(types.indexOf("session.sandbox_hibernated"));
    const text = resultText(all.filter((event) => event.type === "agent.tool_result").at(-1));
    expect(text).toMatch(/sleeper alive \d+/);
    expect(text).toMatch(/token kept \d+/);
    expect(text).toContain("proxy answered 403");
    expect(text).not.toMatch(/background process/i); // nothing reported lost
    expect(types).not.toContain("session.sandbox_replaced");
    expect(stopReason(all)).toBe("end_turn");
  }, 240_000);
});
