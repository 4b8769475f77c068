/**
 * `github_repository` session resources on a real server (startServer on Postgres, the fake LLM,
 * bubblewrap) with the pinned SDK as the client, against a real git smart-HTTP server standing in for
 * github.com (fixtures/git-http-server.ts: pinned with OUTRIG_EGRESS_HOSTS, its CA trusted by egress
 * through the test-only `egressUpstreamCa`). Proves: a clone at a branch and at a commit through the
 * session's egress; the token in no sandbox file, variable, event or log line (and sealed in the
 * database); a push from the agent's bash through the same injection; a wrong token, a missing
 * repository or an unknown branch as the API's repository errors while the session goes on; a rotated
 * token cloning at the next turn; another org seeing none of it and its sessions never getting the token;
 * an environment without github.com getting a clone error (a repository never widens the allowlist).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createDatabase } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";
import {
  bareRepositoryPath,
  type GitHttpServer,
  git,
  startGitHttpServer,
} from "./fixtures/git-http-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

const isRoot = process.getuid?.() === 0;
const TOKEN = `ghp_test${"Z9".repeat(18)}`;
const REPOSITORY = "https://github.com/acme/widgets";
/** A second repository of the same server, for the wrong token (one token per repository and session). */
const GADGETS = "https://github.com/acme/gadgets";

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let gitServer: GitHttpServer;
let server: RunningServer;
let home: string;
let projectRoot: string;
let client: Anthropic;
let otherClient: Anthropic;
const keys = { admin: "", other: "" };
const logLines: string[] = [];
const commits = { first: "", feature: "" };

async function call(method: string, route: string, key: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${route}`, {
    method,
    headers: { "x-api-key": key, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function readUntilIdle(stream: AsyncIterable<unknown>): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as ApiEvent;
    events.push(event);
    if (event.type === "session.status_idle") break;
  }
  return events;
}

/** Sends one message and reads the session's events until it is idle again. */
async function converse(sdk: Anthropic, sessionId: string, text: string): Promise<ApiEvent[]> {
  const stream = await sdk.beta.sessions.events.stream(sessionId);
  await sdk.beta.sessions.events.send(sessionId, {
    events: [{ type: "user.message", content: [{ type: "text", text }] }],
  });
  return readUntilIdle(stream);
}

/** An agent and an environment that may reach github.com, for the client's org. */
async function agentAndEnvironment(sdk: Anthropic, name: string) {
  const agent = await sdk.beta.agents.create({
    name,
    model: "claude-sonnet-4-5",
    tools: [{ type: "agent_toolset_20260401" }],
  });
  const environment = await sdk.beta.environments.create({
    name,
    config: { type: "cloud", networking: { type: "limited", allowed_hosts: ["github.com"] } },
  });
  return { agent, environment };
}

/** Every file under `directory` whose bytes contain `needle` (symlinks not followed). */
async function filesContaining(directory: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await fs.readdir(directory, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const bytes = await fs.readFile(file).catch(() => Buffer.alloc(0));
    if (bytes.includes(needle)) found.push(file);
  }
  return found;
}

beforeAll(async () => {
  if (!isRoot) return;
  testDatabase = await createTestDatabase();
  projectRoot = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-git-remote-"));
  // acme/widgets: main has two commits; `feature` branches off the first.
  const work = path.join(projectRoot, "work");
  await fs.mkdir(work);
  await git(work, "init", "-q", "-b", "main");
  await fs.writeFile(path.join(work, "README.md"), "v1\n");
  await git(work, "add", ".");
  await git(work, "commit", "-q", "-m", "first");
  commits.first = await git(work, "rev-parse", "HEAD");
  await git(work, "checkout", "-q", "-b", "feature");
  await fs.writeFile(path.join(work, "feature.txt"), "feature work\n");
  await git(work, "add", ".");
  await git(work, "commit", "-q", "-m", "feature");
  commits.feature = await git(work, "rev-parse", "HEAD");
  await git(work, "checkout", "-q", "main");
  await fs.writeFile(path.join(work, "README.md"), "v2\n");
  await git(work, "commit", "-q", "-am", "second");
  const bare = bareRepositoryPath(projectRoot, "acme", "widgets");
  await fs.mkdir(path.dirname(bare), { recursive: true });
  await git(projectRoot, "clone", "-q", "--bare", work, bare);
  await git(bare, "config", "http.receivepack", "true");
  const gadgets = bareRepositoryPath(projectRoot, "acme", "gadgets");
  await git(projectRoot, "clone", "-q", "--bare", work, gadgets);
  gitServer = await startGitHttpServer({ projectRoot, host: "github.com", token: TOKEN });

  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        // The first session: look around, then push.
        {
          toolCalls: [
            {
              name: "bash",
              input: {
                command:
                  "cd /workspace/widgets && git rev-parse --abbrev-ref HEAD && cat feature.txt && " +
                  "git -C /workspace/pinned rev-parse HEAD && cat /workspace/pinned/README.md && " +
                  "cat .git/config && env | sort && cat ~/.git-credentials ~/.gitconfig 2>&1; true",
              },
            },
          ],
        },
        {
          toolCalls: [
            {
              name: "bash",
              input: {
                command:
                  "cd /workspace/widgets && git -c user.name=agent -c user.email=agent@example.com " +
                  "commit -q --allow-empty -m 'from the agent' && git push -q origin HEAD:refs/heads/agent-push && echo pushed",
              },
            },
          ],
        },
        { text: "done" },
        // The second session: two turns, around a token rotation.
        { text: "carrying on without them" },
        { text: "now it is there" },
        // The other org's session.
        { text: "nothing here" },
        // A session whose environment does not allow github.com.
        { text: "blocked" },
      ],
    },
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-github-resources-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-github-resources",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `github-resources-${process.pid}`,
    OUTRIG_EGRESS_HOSTS: `github.com=${gitServer.address}`,
  });
  server = await startServer(config, {
    log: (line) => logLines.push(line),
    egressUpstreamCa: gitServer.caCertificatePem,
  });
  keys.admin = server.bootstrapKey ?? "";
  const database = await createDatabase({ url: testDatabase.url });
  try {
    const other = await database.auth.createOrg("github-other");
    const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
    keys.other = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
  } finally {
    await database.close();
  }
  for (const key of [keys.admin, keys.other]) {
    const put = await call("PUT", "/v1/egress-policy", key, { allowedHosts: ["github.com"] });
    expect(put.status).toBe(200);
  }
  client = new Anthropic({ apiKey: keys.admin, baseURL: server.url, maxRetries: 0 });
  otherClient = new Anthropic({ apiKey: keys.other, baseURL: server.url, maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await gitServer?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  for (const directory of [home, projectRoot])
    if (directory) await fs.rm(directory, { recursive: true, force: true });
});

describe.skipIf(!isRoot)(
  "github_repository resources (git server on :443 of a loopback address: root)",
  () => {
    let firstSessionId = "";
    let firstResourceId = "";

    it("clones at a branch and at a commit through egress, keeps the token out of the sandbox, and pushes", async () => {
      const { agent, environment } = await agentAndEnvironment(client, "repositories");
      const session = await client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [
          {
            type: "github_repository",
            url: REPOSITORY,
            authorization_token: TOKEN,
            checkout: { type: "branch", name: "feature" },
          },
          {
            type: "github_repository",
            url: `${REPOSITORY}.git`,
            authorization_token: TOKEN,
            checkout: { type: "commit", sha: commits.first },
            mount_path: "/workspace/pinned",
          },
        ],
      });
      firstSessionId = session.id;
      // The resource is the API's object: the default mount path, the checkout, no token.
      const repositories = session.resources.filter(
        (resource): resource is Anthropic.Beta.Sessions.BetaManagedAgentsGitHubRepositoryResource =>
          resource.type === "github_repository",
      );
      expect(repositories).toHaveLength(2);
      expect(repositories[0]).toMatchObject({
        url: REPOSITORY,
        mount_path: "/workspace/widgets",
        checkout: { type: "branch", name: "feature" },
      });
      expect(repositories[0]?.id).toMatch(/^sesrsc_/);
      expect(repositories[1]).toMatchObject({
        mount_path: "/workspace/pinned",
        checkout: { type: "commit" },
      });
      firstResourceId = repositories[0]?.id ?? "";
      expect(JSON.stringify(session)).not.toContain(TOKEN);

      const events = await converse(client, session.id, "look at the repositories, then push");
      const cloned = events.filter((event) => event.type === "session.repository_cloned");
      expect(cloned.map((event) => [event.mount_path, event.commit])).toEqual([
        ["/workspace/widgets", commits.feature],
        ["/workspace/pinned", commits.first],
      ]);
      // Both clones are in place before the model's first call uses them.
      expect(events.findIndex((event) => event.type === "session.repository_cloned")).toBeLessThan(
        events.findIndex((event) => event.type === "agent.tool_use"),
      );
      const results = events.filter((event) => event.type === "agent.tool_result");
      expect(results.map((event) => event.is_error)).toEqual([false, false]);
      const look = JSON.stringify(results[0]?.content);
      expect(look).toContain("feature\\n");
      expect(look).toContain("feature work");
      expect(look).toContain(commits.first);
      expect(look).toContain("v1");
      expect(look).toContain(`url = ${REPOSITORY}`);
      expect(look).toContain("HTTPS_PROXY=");
      expect(JSON.stringify(results[1]?.content)).toContain("pushed");
      expect(events.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });

      // The push landed, through egress, with the injected token.
      const bare = bareRepositoryPath(projectRoot, "acme", "widgets");
      expect(await git(bare, "log", "-1", "--format=%s", "agent-push")).toBe("from the agent");
      expect(gitServer.requests.some((request) => request.path.endsWith("/git-receive-pack"))).toBe(true);
      expect(gitServer.requests.every((request) => request.isAuthorized)).toBe(true);

      // The token is nowhere the sandbox, the client or the log can see.
      expect(look).not.toContain(TOKEN);
      const listed: unknown[] = [];
      for await (const event of client.beta.sessions.events.list(session.id)) listed.push(event);
      expect(JSON.stringify(listed)).not.toContain(TOKEN);
      expect(await filesContaining(home, TOKEN)).toEqual([]);
      expect(logLines.join("\n")).not.toContain(TOKEN);
      // The model is told where the clones are, and its context never holds the token.
      const modelRequests = JSON.stringify(fakeLlm.requests.map((request) => request.body));
      expect(modelRequests).toContain(
        "/workspace/widgets: a clone of https://github.com/acme/widgets (branch feature)",
      );
      expect(modelRequests).not.toContain(TOKEN);
      // Sealed at rest: the stored bytes do not hold it either.
      const pool = new pg.Pool({ connectionString: testDatabase.url, max: 1 });
      try {
        const { rows } = await pool.query<{ ciphertext: Buffer }>(
          "SELECT ciphertext FROM session_resource_tokens WHERE session_id = $1",
          [session.id],
        );
        expect(rows).toHaveLength(2);
        for (const row of rows) expect(row.ciphertext.includes(TOKEN)).toBe(false);
        // Every use is audited by a resource's secret name (of the two resources of this repository,
        // the one whose token was set last), never by its value.
        const audit = await pool.query<{ data: string }>(
          "SELECT data::text AS data FROM audit_entries WHERE session_id = $1 AND kind = 'egress'",
          [session.id],
        );
        expect(audit.rows.some((row) => row.data.includes(`session_resource:${repositories[1]?.id}`))).toBe(
          true,
        );
        expect(audit.rows.map((row) => row.data).join("\n")).not.toContain(TOKEN);
        const sessionRow = await pool.query<{ row: string }>(
          "SELECT row_to_json(s)::text AS row FROM sessions s WHERE id = $1",
          [session.id],
        );
        expect(sessionRow.rows[0]?.row).toContain("github_repository");
        expect(sessionRow.rows[0]?.row).not.toContain(TOKEN);
      } finally {
        await pool.end();
      }
    }, 240_000);

    it("reports a wrong token, a missing repository and an unknown branch, goes on, and clones after a rotation", async () => {
      const { agent, environment } = await agentAndEnvironment(client, "repository-errors");
      const session = await client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [
          { type: "github_repository", url: GADGETS, authorization_token: "ghp_wrong_token_1234567890" },
          {
            type: "github_repository",
            url: REPOSITORY,
            authorization_token: TOKEN,
            checkout: { type: "branch", name: "no-such-branch" },
            mount_path: "/workspace/branchless",
          },
          { type: "github_repository", url: "https://github.com/acme/missing", authorization_token: TOKEN },
        ],
      });
      const [wrong, branchless, missing] = session.resources;
      const events = await converse(client, session.id, "start");
      const errors = events.filter((event) => event.type === "session.error").map((event) => event.error);
      expect(errors).toEqual([
        expect.objectContaining({
          type: "repository_authentication_error",
          repository_url: GADGETS,
          retry_status: { type: "retrying" },
        }),
        expect.objectContaining({ type: "repository_checkout_error", repository_url: REPOSITORY }),
        expect.objectContaining({
          type: "repository_not_found_error",
          repository_url: "https://github.com/acme/missing",
        }),
      ]);
      expect(String((errors[1] as { message: string }).message)).toContain("no-such-branch");
      // The session went on without them.
      expect(events.find((event) => event.type === "agent.message")).toBeDefined();
      expect(events.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });

      // Every method of sessions.resources, through the SDK.
      const listed: Anthropic.Beta.Sessions.BetaManagedAgentsSessionResource[] = [];
      for await (const resource of client.beta.sessions.resources.list(session.id, { limit: 2 }))
        listed.push(resource);
      expect(listed.map((resource) => resource.type)).toEqual([
        "github_repository",
        "github_repository",
        "github_repository",
      ]);
      const retrieved = await client.beta.sessions.resources.retrieve(wrong?.id ?? "", {
        session_id: session.id,
      });
      expect(retrieved).toMatchObject({ id: wrong?.id, url: GADGETS, mount_path: "/workspace/gadgets" });
      // Rotating the token: the same resource, a new updated_at, no token in the answer.
      const rotated = await client.beta.sessions.resources.update(wrong?.id ?? "", {
        session_id: session.id,
        authorization_token: TOKEN,
      });
      expect(rotated).toMatchObject({ id: wrong?.id, type: "github_repository" });
      expect(JSON.stringify(rotated)).not.toContain(TOKEN);
      expect(
        (rotated as { updated_at: string }).updated_at >= (retrieved as { updated_at: string }).updated_at,
      ).toBe(true);
      const removed = await client.beta.sessions.resources.delete(missing?.id ?? "", {
        session_id: session.id,
      });
      expect(removed).toEqual({ id: missing?.id, type: "session_resource_deleted" });

      // The next turn clones the rotated one; the others are not tried again (nothing changed).
      const next = await converse(client, session.id, "again");
      expect(next.filter((event) => event.type === "session.error")).toEqual([]);
      expect(next.filter((event) => event.type === "session.repository_cloned")).toEqual([
        expect.objectContaining({ resource_id: wrong?.id, mount_path: "/workspace/gadgets" }),
      ]);
      expect(branchless?.id).toBeDefined();

      // A removed resource's token is gone with it.
      const pool = new pg.Pool({ connectionString: testDatabase.url, max: 1 });
      try {
        const { rows } = await pool.query<{ resource_id: string }>(
          "SELECT resource_id FROM session_resource_tokens WHERE session_id = $1 ORDER BY resource_id",
          [session.id],
        );
        expect(rows.map((row) => row.resource_id).sort()).toEqual([wrong?.id, branchless?.id].sort());
        // And every token goes with its session.
        await client.beta.sessions.delete(session.id);
        const after = await pool.query("SELECT 1 FROM session_resource_tokens WHERE session_id = $1", [
          session.id,
        ]);
        expect(after.rowCount).toBe(0);
      } finally {
        await pool.end();
      }
    }, 240_000);

    it("answers raw requests strictly and never echoes a token", async () => {
      const route = `/v1/sessions/${firstSessionId}/resources/${firstResourceId}`;
      const raw = await call("GET", route, keys.admin);
      expect(raw.status).toBe(200);
      const body = (await raw.json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(
        ["checkout", "created_at", "id", "mount_path", "type", "updated_at", "url"].sort(),
      );
      const unknown = await call("POST", route, keys.admin, { authorization_token: "x", scope: "all" });
      expect(unknown.status).toBe(400);
      const wrongType = await call("POST", route, keys.admin, { authorization_token: 42 });
      expect(wrongType.status).toBe(400);
      const badUrl = await call("POST", `/v1/sessions/${firstSessionId}/resources`, keys.admin, {
        type: "github_repository",
        url: "https://evil.example/acme/widgets",
      });
      expect(badUrl.status).toBe(400);
    });

    it("hides one org's repository resources from another, whose sessions never get the token", async () => {
      for (const [method, body] of [
        ["GET", undefined],
        ["POST", { authorization_token: "ghp_stolen" }],
        ["DELETE", undefined],
      ] as const) {
        const response = await call(
          method,
          `/v1/sessions/${firstSessionId}/resources/${firstResourceId}`,
          keys.other,
          body,
        );
        expect(response.status).toBe(404);
        expect(JSON.stringify(await response.json())).not.toContain("widgets");
      }
      await expect(
        otherClient.beta.sessions.resources.list(firstSessionId).then((page) => page.data),
      ).rejects.toBeInstanceOf(Anthropic.NotFoundError);

      // The same repository in the other org's session, without a token: the host sees none.
      const before = gitServer.requests.length;
      const { agent, environment } = await agentAndEnvironment(otherClient, "other-org");
      const session = await otherClient.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [{ type: "github_repository", url: REPOSITORY }],
      });
      const events = await converse(otherClient, session.id, "hello");
      expect(events.filter((event) => event.type === "session.error").map((event) => event.error)).toEqual([
        expect.objectContaining({ type: "repository_authentication_error" }),
      ]);
      const seen = gitServer.requests.slice(before);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((request) => !request.isAuthorized)).toBe(true);
    }, 240_000);

    it("never widens the allowlist: an environment without github.com gets a clone error naming egress's reason", async () => {
      const agent = await client.beta.agents.create({
        name: "walled",
        model: "claude-sonnet-4-5",
        tools: [{ type: "agent_toolset_20260401" }],
      });
      const environment = await client.beta.environments.create({
        name: "walled",
        config: { type: "cloud", networking: { type: "limited", allowed_hosts: ["pypi.org"] } },
      });
      const before = gitServer.requests.length;
      const session = await client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [{ type: "github_repository", url: REPOSITORY, authorization_token: TOKEN }],
      });
      const events = await converse(client, session.id, "try");
      const errors = events.filter((event) => event.type === "session.error").map((event) => event.error);
      expect(errors).toEqual([
        expect.objectContaining({ type: "repository_clone_error", repository_url: REPOSITORY }),
      ]);
      expect(String((errors[0] as { message: string }).message)).toContain("egress allowlist");
      expect(gitServer.requests.length).toBe(before);
      expect(events.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });
    }, 240_000);
  },
);
