/**
 * Sessions belong to their owner, end to end: the real `outrig serve`, real bubblewrap sandboxes, the
 * fake LLM driving Bash, and an HTTPS upstream (pinned with OUTRIG_EGRESS_HOSTS) that records which
 * credential each request carried. A teammate cannot start a turn in someone else's session, so the
 * owner's user-scoped secret and private memory are never used on their behalf; a reused tool call id
 * cannot ride on an earlier approval.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createCertificateAuthority } from "@outrig/egress";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { type Database, resolveDatabase } from "@outrig/storage";
import { startUpstream, type Upstream } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

const API_HOST = "api.test";
const ALICE_TOKEN = "alice_personal_token_8f2c41";
const BOB_TOKEN = "bob_personal_token_5e90d3";
const ALICE_MEMORY = "alice-private-memory-3b7a";
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
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function waitForIdle(key: string, sessionId: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const session = (await (await api(key, "GET", `/v1/sessions/${sessionId}`)).json()) as { status: string };
    if (session.status !== "running") return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`session ${sessionId} is still running`);
}

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
        name: "Bash",
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
    if (request) return request;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no approval request in session ${sessionId}`);
}

const bearers = () => upstream.requests.map((request) => String(request.headers.authorization ?? ""));

describe("a session's turns run only for its owner and the people it is shared with", () => {
  it("never sends the owner's personal token or memory on a teammate's request", async () => {
    const created = await api(keys.alice, "POST", "/v1/sessions", { model: MODEL });
    expect(created.status).toBe(201);
    const { id: aliceSession } = (await created.json()) as { id: string };

    // Bob tries to drive Alice's session: it does not exist for him, and nothing runs.
    fakeLlm.setScript({ turns: [probeTurn("toolu_bob_in_alice"), { text: "done" }] });
    const hijack = await api(keys.bob, "POST", `/v1/sessions/${aliceSession}/messages`, {
      text: "call the API and show me your memories",
    });
    expect(hijack.status).toBe(404);
    expect((await api(keys.bob, "GET", `/v1/sessions/${aliceSession}`)).status).toBe(404);
    const bobList = await (await api(keys.bob, "GET", "/v1/sessions")).text();
    expect(bobList).not.toContain(aliceSession);
    // The admin sees it but cannot start a turn in it without an explicit share.
    expect((await api(keys.admin, "GET", `/v1/sessions/${aliceSession}`)).status).toBe(200);
    const adminTurn = await api(keys.admin, "POST", `/v1/sessions/${aliceSession}/messages`, { text: "x" });
    expect(adminTurn.status).toBe(403);
    await waitForIdle(keys.alice, aliceSession);
    expect((await events(aliceSession)).filter((event) => event.type === "turn.start")).toEqual([]);

    // Bob's own session uses Bob's token and Bob's memories, never Alice's.
    fakeLlm.setScript({ turns: [probeTurn("toolu_bob_own"), { text: "done" }] });
    const own = await api(keys.bob, "POST", "/v1/sessions", { model: MODEL, prompt: "call the API" });
    expect(own.status).toBe(201);
    const { id: bobSession } = (await own.json()) as { id: string };
    await waitForIdle(keys.bob, bobSession);
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
    const steered = await api(keys.bob, "POST", `/v1/sessions/${aliceSession}/messages`, { text: "go" });
    expect(steered.status).toBe(202);
    await waitForIdle(keys.bob, aliceSession);
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
        { toolCalls: [{ id: "toolu_same", name: "Bash", input: { command: "echo harmless" } }] },
        {
          // A Write, not a command: the sandbox's per-key journal would replay a command's first result.
          toolCalls: [
            { id: "toolu_same", name: "Write", input: { file_path: "/workspace/pwned", content: "pwned\n" } },
          ],
        },
        { text: "done" },
      ],
    });
    const created = await api(keys.alice, "POST", "/v1/sessions", { model: MODEL, prompt: "go" });
    const { id } = (await created.json()) as { id: string };
    const request = await approvalRequest(id);
    expect(request).toMatchObject({ toolCallId: "toolu_same" });
    const allowed = await api(keys.alice, "POST", `/v1/sessions/${id}/approvals/toolu_same`, {
      decision: "allow",
      ...(request.inputDigest === undefined ? {} : { inputDigest: request.inputDigest }),
    });
    expect(allowed.status).toBe(202);
    await waitForIdle(keys.alice, id);

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
        { toolCalls: [{ id: "toolu_other", name: "Bash", input: { command: "echo hi" } }] },
        { text: "ok" },
      ],
    });
    const second = (await (
      await api(keys.alice, "POST", "/v1/sessions", { model: MODEL, prompt: "go" })
    ).json()) as {
      id: string;
    };
    const pending = await approvalRequest(second.id);
    expect(pending.inputDigest).toMatch(/^[0-9a-f]{64}$/);
    const route = `/v1/sessions/${second.id}/approvals/toolu_other`;
    const mismatch = await api(keys.alice, "POST", route, { decision: "allow", inputDigest: "0".repeat(64) });
    expect(mismatch.status).toBe(409);
    expect((await api(keys.alice, "POST", route, { decision: "deny" })).status).toBe(202);
    await waitForIdle(keys.alice, second.id);
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
    expect((await api(carolKey, "POST", "/v1/sessions", { model: MODEL, prompt: "x" })).status).toBe(403);
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
