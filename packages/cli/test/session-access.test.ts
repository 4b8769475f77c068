/**
 * Sessions belong to their owner, end to end: the real `outrig serve`, real bubblewrap sandboxes, the
 * fake LLM driving Bash, and an HTTPS upstream (pinned with OUTRIG_EGRESS_HOSTS) that records which
 * credential each request carried. A teammate cannot start a turn in someone else's session, so the
 * owner's user-scoped secret and private memory are never used on their behalf; a reused tool call id
 * cannot ride on an earlier confirmation. Sessions and events go through the SDK (each user's own key).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { createCertificateAuthority } from "@outrig/egress";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { type Database, resolveDatabase } from "@outrig/storage";
import { startUpstream, type Upstream } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  type SessionEvent,
  sendMessage,
  TOOLS,
  waitForEvent,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

const API_HOST = "api.test";
const ALICE_TOKEN = "alice_personal_token_8f2c41";
const BOB_TOKEN = "bob_personal_token_5e90d3";
const ALICE_MEMORY = "alice-private-memory-3b7a";
/** The org's whole egress allowlist (the org allows unrestricted environments): the sessions call the API host. */
const ORG_ALLOWLIST = { config: { type: "cloud" as const, networking: { type: "unrestricted" as const } } };
const MODEL = "anthropic:claude-sonnet-4-5";

let directory: string;
let home: string;
let upstream: Upstream;
let fakeLlm: FakeLlmServer;
let server: ServerProcess;
let database: Database;
const keys = { admin: "", alice: "", bob: "" };
const users = { alice: "", bob: "" };

beforeAll(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-access-e2e-"));
  const ca = createCertificateAuthority(undefined, { commonName: "e2e api upstream CA" });
  const leaf = ca.issueLeaf(API_HOST);
  await fs.writeFile(path.join(directory, "upstream-ca.pem"), ca.certificatePem);
  upstream = await startUpstream({ tls: { key: leaf.keyPem, cert: leaf.certificatePem } });
  fakeLlm = await startFakeLlmServer({ script: { turns: [{ text: "ready" }] } });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      ANTHROPIC_API_KEY: "sk-ant-access-e2e",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
      OUTRIG_EGRESS_HOSTS: `${API_HOST}=127.0.0.1`,
      NODE_EXTRA_CA_CERTS: path.join(directory, "upstream-ca.pem"),
    },
  });
  keys.admin = server.apiKey;
  // Two teammates, made the way an operator would (straight in the database, as `outrig keys create`).
  database = await resolveDatabase({ outrigHome: home, keepAdoptedPostgres: true });
  const org = await database.auth.ensureOrg("default");
  for (const name of ["alice", "bob"] as const) {
    const user = await database.auth.createUser(org.id, { name, role: "member" });
    users[name] = user.id;
    keys[name] = (await database.auth.createApiKey(org.id, user.id, name)).key;
  }

  // Each teammate has a personal token, and the admin lets every session reach the API with the
  // caller's own (a credential rule may only name a secret that exists, and a host:port on the allowlist).
  for (const [key, value] of [
    [keys.alice, ALICE_TOKEN],
    [keys.bob, BOB_TOKEN],
  ] as const) {
    const vault = await api(key, "POST", "/v1/vaults", { display_name: "Personal" });
    expect(vault.status).toBe(200);
    const { id: vaultId } = (await vault.json()) as { id: string };
    const set = await api(key, "POST", `/v1/vaults/${vaultId}/credentials`, {
      auth: {
        type: "environment_variable",
        secret_name: "PERSONAL_TOKEN",
        secret_value: value,
        networking: { type: "limited", allowed_hosts: [API_HOST] },
      },
    });
    expect(set.status).toBe(200);
  }
  expect(
    (
      await api(keys.admin, "PUT", "/v1/egress-policy", {
        allowedHosts: [`${API_HOST}:${upstream.port}`],
        credentials: [
          { host: `${API_HOST}:${upstream.port}`, secretName: "PERSONAL_TOKEN", scheme: "bearer" },
        ],
        // The sessions' environment (outrig run's) asks for the org's whole allowlist.
        allowUnrestrictedEnvironments: true,
      })
    ).status,
  ).toBe(200);
  const memory = await api(keys.alice, "PUT", "/v1/file_store/content", {
    path: "/memories/me/private.md",
    content: `${ALICE_MEMORY}\n`,
  });
  expect(memory.status).toBe(200);
}, 180_000);

afterAll(async () => {
  await database?.close();
  await server?.stop();
  await fakeLlm?.close();
  await upstream?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
  if (directory) await fs.rm(directory, { recursive: true, force: true });
});

function api(key: string, method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${route}`, {
    method,
    headers: { "x-api-key": key, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** An SDK client with a user's own key. */
const as = (key: string) => apiClient({ url: server.url, apiKey: key });

async function events(sessionId: string): Promise<{ type: string; [key: string]: unknown }[]> {
  const { rows } = await database.pool.query<{ payload: { type: string; [key: string]: unknown } }>(
    "SELECT payload FROM session_events WHERE session_id = $1 ORDER BY seq",
    [sessionId],
  );
  return rows.map((row) => row.payload);
}

/** A Bash step that calls the API (the proxy adds the credential) and reads /memories/me. */
function probeTurn(id: string) {
  return {
    toolCalls: [
      {
        id,
        name: TOOLS.bash,
        input: {
          command: `curl -sS https://${API_HOST}:${upstream.port}/whoami; echo; cat /memories/me/private.md 2>&1 || true`,
        },
      },
    ],
  };
}

async function approvalRequest(sessionId: string): Promise<{ toolCallId?: unknown; inputDigest?: unknown }> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const request = (await events(sessionId)).find((event) => event.type === "approval.request");
    if (request) return request as { toolCallId?: unknown; inputDigest?: unknown };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no approval request in session ${sessionId}`);
}

/** The id of the agent.tool_use waiting for a confirmation, once the session asks. */
async function askedToolUse(client: Anthropic, sessionId: string): Promise<string> {
  const log = await waitForEvent(
    client,
    sessionId,
    (event: SessionEvent) => event.type === "agent.tool_use" && event.evaluated_permission === "ask",
    60_000,
  );
  return (
    log.find((event) => event.type === "agent.tool_use" && event.evaluated_permission === "ask")?.id ?? ""
  );
}

const bearers = () => upstream.requests.map((request) => String(request.headers.authorization ?? ""));

describe("a session's turns run only for its owner and the people it is shared with", () => {
  it("never sends the owner's personal token or memory on a teammate's request", async () => {
    const { session: created } = await createAgentSession(as(keys.alice), {
      model: MODEL,
      environment: ORG_ALLOWLIST,
    });
    const aliceSession = created.id;

    // Bob tries to drive Alice's session: it does not exist for him, and nothing runs.
    fakeLlm.setScript({ turns: [probeTurn("toolu_bob_in_alice"), { text: "done" }] });
    await expect(
      sendMessage(as(keys.bob), aliceSession, "call the API and show me your memories"),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(as(keys.bob).beta.sessions.retrieve(aliceSession)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    const bobList = await (await api(keys.bob, "GET", "/v1/sessions")).text();
    expect(bobList).not.toContain(aliceSession);
    // The admin sees it but cannot start a turn in it without an explicit share.
    expect((await as(keys.admin).beta.sessions.retrieve(aliceSession)).id).toBe(aliceSession);
    await expect(sendMessage(as(keys.admin), aliceSession, "x")).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await as(keys.alice).beta.sessions.retrieve(aliceSession)).status).toBe("idle");
    expect((await events(aliceSession)).filter((event) => event.type === "turn.start")).toEqual([]);

    // Bob's own session uses Bob's token and Bob's memories, never Alice's.
    fakeLlm.setScript({ turns: [probeTurn("toolu_bob_own"), { text: "done" }] });
    const { session: own } = await createAgentSession(as(keys.bob), {
      model: MODEL,
      prompt: "call the API",
      environment: ORG_ALLOWLIST,
    });
    const bobSession = own.id;
    await waitForIdle(as(keys.bob), bobSession, 120_000);
    const ownOutput = (await events(bobSession)).find((event) => event.type === "tool.end")?.output;
    expect(String(ownOutput)).not.toContain(ALICE_MEMORY);
    expect(bearers()).toEqual([`Bearer ${BOB_TOKEN}`]);

    // Shared with Bob as steerer by Alice: his turn runs as the session's owner, by her explicit
    // choice, and the audit log names Bob as the one who acted.
    const share = await api(keys.alice, "PUT", `/v1/sessions/${aliceSession}/shares/${users.bob}`, {
      role: "steerer",
    });
    expect(share.status).toBe(200);
    fakeLlm.setScript({ turns: [probeTurn("toolu_bob_shared"), { text: "done" }] });
    await sendMessage(as(keys.bob), aliceSession, "go");
    await waitForIdle(as(keys.bob), aliceSession, 120_000);
    expect(bearers()).toEqual([`Bearer ${BOB_TOKEN}`, `Bearer ${ALICE_TOKEN}`]);
    const { rows } = await database.pool.query<{
      kind: string;
      user_id: string;
      data: Record<string, unknown>;
    }>(
      "SELECT kind, user_id, data FROM audit_entries WHERE session_id = $1 AND kind IN ('session_message', 'tool_call') ORDER BY seq",
      [aliceSession],
    );
    expect(rows.map((row) => [row.kind, row.user_id, row.data.sessionOwnerId])).toEqual([
      ["session_message", users.bob, users.alice],
      ["tool_call", users.bob, users.alice],
    ]);
  }, 240_000);
});

describe("approvals end to end", () => {
  it("does not run a second call that reuses the approved call's id", async () => {
    const policy = await api(keys.admin, "PUT", "/v1/policy", {
      rules: [{ tool: "*", action: "ask" }],
      approvalTimeoutMs: 120_000,
    });
    expect(policy.status).toBe(200);
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ id: "toolu_same", name: TOOLS.bash, input: { command: "echo harmless" } }] },
        {
          // A Write, not a command: the sandbox's per-key journal would replay a command's first result.
          toolCalls: [
            {
              id: "toolu_same",
              name: TOOLS.write,
              input: { file_path: "/workspace/pwned", content: "pwned\n" },
            },
          ],
        },
        { text: "done" },
      ],
    });
    const alice = as(keys.alice);
    const { id } = (await createAgentSession(alice, { model: MODEL, prompt: "go" })).session;
    const request = await approvalRequest(id);
    expect(request).toMatchObject({ toolCallId: "toolu_same" });
    const asked = await askedToolUse(alice, id);
    await alice.beta.sessions.events.send(id, {
      events: [{ type: "user.tool_confirmation", tool_use_id: asked, result: "allow" }],
    });
    await waitForEvent(
      alice,
      id,
      (event) => event.type === "session.status_idle" && event.stop_reason.type === "end_turn",
      120_000,
    );

    // The reused id never ran: no file, no tool.start, and an error result the model can read.
    await expect(fs.stat(path.join(home, "workspaces", id, "pwned"))).rejects.toMatchObject({
      code: "ENOENT",
    });
    const log = await events(id);
    expect(log.filter((event) => event.type === "tool.start").map((event) => event.input)).toEqual([
      { command: "echo harmless" },
    ]);
    const ends = log.filter((event) => event.type === "tool.end");
    expect(ends.map((event) => event.isError)).toEqual([false, true]);
    expect(String(ends[1]?.output)).toContain('"toolu_same" was already used in this session');

    // A decision naming another input than the pending request's is refused.
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ id: "toolu_other", name: TOOLS.bash, input: { command: "echo hi" } }] },
        { text: "ok" },
      ],
    });
    const second = (await createAgentSession(alice, { model: MODEL, prompt: "go" })).session;
    const pending = await approvalRequest(second.id);
    // The pending call is bound to its input (the digest the confirmation allows).
    expect(pending.inputDigest).toMatch(/^[0-9a-f]{64}$/);
    const secondAsked = await askedToolUse(alice, second.id);
    // A confirmation naming a call that does not wait here (the first session's, already decided) is refused.
    await expect(
      alice.beta.sessions.events.send(second.id, {
        events: [{ type: "user.tool_confirmation", tool_use_id: asked, result: "allow" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.APIError);
    // Bob cannot answer Alice's pending call.
    await expect(
      as(keys.bob).beta.sessions.events.send(second.id, {
        events: [{ type: "user.tool_confirmation", tool_use_id: secondAsked, result: "allow" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await alice.beta.sessions.events.send(second.id, {
      events: [{ type: "user.tool_confirmation", tool_use_id: secondAsked, result: "deny" }],
    });
    const denied = await waitForIdle(alice, second.id, 120_000);
    expect(denied.filter((event) => event.type === "user.tool_confirmation")).toEqual([
      expect.objectContaining({ tool_use_id: secondAsked, result: "deny" }),
    ]);
  }, 240_000);
});

describe("roles and keys from the command line", () => {
  it("creates a viewer key, tells who it is, keeps it read-only and revokes it at once", async () => {
    const cli = (args: string[], key: string) =>
      runCli(args, { OUTRIG_HOME: home, OUTRIG_SERVER: server.url, OUTRIG_API_KEY: key });
    const created = await cli(["keys", "create", "--user", "carol", "--role", "viewer", "--name", "ci"], "");
    expect(created.code, created.stderr).toBe(0);
    const carolKey = created.stdout.trim();
    expect(carolKey).toMatch(/^outrig_/);
    const whoami = await cli(["whoami"], carolKey);
    expect(whoami.stdout).toMatch(/^carol \(usr_\w+\), viewer in org org_\w+, key key_\w+$/m);
    expect(
      (await api(carolKey, "POST", "/v1/sessions", { agent: "agent_x", environment_id: "env_x" })).status,
    ).toBe(403);
    expect((await api(carolKey, "GET", "/v1/sessions")).status).toBe(200);
    // A member cannot change the org's tool policy or see other users' keys.
    expect((await api(keys.bob, "PUT", "/v1/policy", { rules: [] })).status).toBe(403);
    const bobKeys = await cli(["keys", "ls"], keys.bob);
    expect(bobKeys.stdout).not.toContain("carol");
    // The admin lists every key, makes one for a new user, and revokes carol's: her next request fails.
    const listed = await cli(["keys", "ls"], keys.admin);
    const carolLine = listed.stdout.split("\n").find((line) => line.includes("\tcarol\t"));
    expect(carolLine).toMatch(/\tviewer\tci\t/);
    const made = await cli(["keys", "new", "--user", "dave", "--role", "member"], keys.admin);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/for dave \(member\)/);
    const revoked = await cli(["keys", "revoke", carolLine?.split("\t")[0] ?? ""], keys.admin);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await api(carolKey, "GET", "/v1/me")).status).toBe(401);
    // Bob cannot revoke the admin's key, only his own.
    const adminKeyId = (await (await api(keys.admin, "GET", "/v1/me")).json()) as { keyId: string };
    expect((await api(keys.bob, "DELETE", `/v1/keys/${adminKeyId.keyId}`)).status).toBe(404);
    expect((await api(keys.admin, "GET", "/v1/me")).status).toBe(200);
  }, 120_000);
});
