/**
 * An environment's `packages` on a real server (startServer on Postgres, the fake LLM, bubblewrap)
 * with the pinned SDK as the client, installed from a tiny npm registry this test serves on a local
 * port (pinned with OUTRIG_EGRESS_HOSTS, so the build's only way out is the egress proxy): the
 * package is present in a session of that environment, a second session starts from the cached layer
 * (no second download), two concurrent first sessions of a new package set build once, and a broken
 * spec ends the turn with a clear `session.error` naming npm's complaint, and updating the packages
 * builds a new layer whose install scripts reach no host but the registry (not even one the org
 * allows). The environment object's `package_layer` follows each build.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

const REGISTRY_HOST = "registry.npm.test";
const COMMAND = "hello-outrig && node -e 'console.log(require(\"hello-outrig\").greeting)'";
const SECOND_COMMAND = "second-outrig";
const LEAK_HOST = "other.npm.test";
const UPDATE_COMMAND =
  "cat /opt/outrig/packages/lib/node_modules/sneaky-outrig/probe.txt; echo; hello-outrig; " +
  "touch /opt/outrig/packages/written 2>/dev/null || echo layer-is-read-only";

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let registry: http.Server;
/** A host the org's egress policy allows, which a build must still not reach. */
let leak: http.Server;
const leakRequests: string[] = [];
let home: string;
let client: Anthropic;
/** Tarball downloads by package name: one per build that installed it. */
const downloads = new Map<string, number>();
const tarballs = new Map<string, Buffer>();
/** Tarball requests of `slow-outrig` wait for this to be called (a registry that hangs). */
let releaseSlow: () => void = () => undefined;
const slowReleased = new Promise<void>((resolve) => {
  releaseSlow = resolve;
});
/** Packages with a postinstall script. */
const scripts = new Set<string>();

/** An npm package tarball (`package/…`) with a bin that prints `output` and a module exporting `greeting`. */
async function packTarball(name: string, output: string, postinstall?: string): Promise<Buffer> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-npm-package-"));
  const root = path.join(directory, "package");
  await fs.mkdir(path.join(root, "bin"), { recursive: true });
  await fs.writeFile(
    path.join(root, "package.json"),
    JSON.stringify({
      name,
      version: "1.0.0",
      main: "index.js",
      bin: { [name]: "bin/cli.js" },
      ...(postinstall ? { scripts: { postinstall: "node postinstall.js" } } : {}),
    }),
  );
  if (postinstall) await fs.writeFile(path.join(root, "postinstall.js"), postinstall);
  await fs.writeFile(
    path.join(root, "index.js"),
    `exports.greeting = ${JSON.stringify(`${output} via require`)};\n`,
  );
  await fs.writeFile(
    path.join(root, "bin", "cli.js"),
    `#!/usr/bin/env node\nconsole.log(${JSON.stringify(output)});\n`,
    {
      mode: 0o755,
    },
  );
  execFileSync("tar", ["-czf", path.join(directory, "package.tgz"), "-C", directory, "package"]);
  const tarball = await fs.readFile(path.join(directory, "package.tgz"));
  await fs.rm(directory, { recursive: true, force: true });
  return tarball;
}

function packument(name: string, port: number) {
  const tarball = tarballs.get(name) ?? Buffer.alloc(0);
  return {
    name,
    "dist-tags": { latest: "1.0.0" },
    versions: {
      "1.0.0": {
        name,
        version: "1.0.0",
        main: "index.js",
        bin: { [name]: "bin/cli.js" },
        // npm runs install scripts of registry packages that say they have one, as the registry does.
        ...(scripts.has(name)
          ? { scripts: { postinstall: "node postinstall.js" }, hasInstallScript: true }
          : {}),
        dist: {
          tarball: `http://${REGISTRY_HOST}:${port}/${name}/-/${name}-1.0.0.tgz`,
          shasum: createHash("sha1").update(tarball).digest("hex"),
          integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
        },
      },
    },
  };
}

beforeAll(async () => {
  leak = http.createServer((request, response) => {
    leakRequests.push(request.url ?? "");
    response.end("leaked");
  });
  await new Promise<void>((resolve) => leak.listen(0, "127.0.0.1", resolve));
  const leakPort = (leak.address() as AddressInfo).port;
  // An install script that asks the sandbox's proxy for another host and records the answer in the layer.
  const probe = `
const fs = require("node:fs");
const request = require("node:http").get(
  { host: "127.0.0.1", port: 3128, path: "http://${LEAK_HOST}:${leakPort}/leak", headers: { host: "${LEAK_HOST}:${leakPort}" } },
  (response) => { fs.writeFileSync(__dirname + "/probe.txt", "probe status " + response.statusCode); response.resume(); },
);
request.on("error", (error) => fs.writeFileSync(__dirname + "/probe.txt", "probe error " + error.message));
`;
  tarballs.set("sneaky-outrig", await packTarball("sneaky-outrig", "sneaky", probe));
  scripts.add("sneaky-outrig");
  tarballs.set("hello-outrig", await packTarball("hello-outrig", "hello from the layer"));
  tarballs.set("slow-outrig", await packTarball("slow-outrig", "slow"));
  tarballs.set("second-outrig", await packTarball("second-outrig", "second package here"));
  registry = http.createServer((request, response) => {
    const port = (registry.address() as AddressInfo).port;
    const url = new URL(request.url ?? "/", `http://${REGISTRY_HOST}`);
    const [name, dash, file] = url.pathname.slice(1).split("/");
    if (name && tarballs.has(name) && dash === "-" && file === `${name}-1.0.0.tgz`) {
      downloads.set(name, (downloads.get(name) ?? 0) + 1);
      const send = () => {
        response.writeHead(200, { "content-type": "application/octet-stream" });
        response.end(tarballs.get(name));
      };
      if (name === "slow-outrig") return void slowReleased.then(send);
      return send();
    }
    if (name && tarballs.has(name) && dash === undefined) {
      response.writeHead(200, { "content-type": "application/json" });
      return response.end(JSON.stringify(packument(name, port)));
    }
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ error: "Not found" }));
  });
  await new Promise<void>((resolve) => registry.listen(0, "127.0.0.1", resolve));
  const registryPort = (registry.address() as AddressInfo).port;

  testDatabase = await createTestDatabase();
  const bash = (command: string) => ({ toolCalls: [{ name: "bash", input: { command } }] });
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        // The first session, then the second (the layer is cached).
        bash(COMMAND),
        { text: "done" },
        bash(COMMAND),
        { text: "done" },
        // Two concurrent sessions of a new package set: each makes one call, then ends.
        bash(SECOND_COMMAND),
        bash(SECOND_COMMAND),
        { text: "done" },
        { text: "done" },
        // After the update: the new layer.
        bash(UPDATE_COMMAND),
        { text: "done" },
      ],
    },
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-environment-packages-"));
  // On the debootstrap image when there is one (no node or npm in its /usr), as production runs.
  const imageDir = process.env.OUTRIG_TEST_IMAGE_DIR?.trim();
  if (imageDir) {
    await fs.mkdir(path.join(home, "images"), { recursive: true });
    await fs.symlink(path.resolve(imageDir), path.join(home, "images", "default"));
  }
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-environment-packages",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `environment-packages-${process.pid}`,
    OUTRIG_EGRESS_HOSTS: `${REGISTRY_HOST}=127.0.0.1,${LEAK_HOST}=127.0.0.1`,
    OUTRIG_NPM_REGISTRY: `http://${REGISTRY_HOST}:${registryPort}/`,
    OUTRIG_PACKAGE_BUILD_TIMEOUT_MS: "120000",
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
  // The org allows the other host (and not the registry): a build's allowlist is the registry alone.
  const policy = await fetch(`${server.url}/v1/egress-policy`, {
    method: "PUT",
    headers: { "x-api-key": server.bootstrapKey ?? "", "content-type": "application/json" },
    body: JSON.stringify({ allowedHosts: [`${LEAK_HOST}:${leakPort}`], credentials: [] }),
  });
  expect(policy.status).toBe(200);
}, 180_000);

afterAll(async () => {
  releaseSlow();
  await server?.close();
  await fakeLlm?.close();
  await new Promise((resolve) => registry?.close(resolve));
  await new Promise((resolve) => leak?.close(resolve));
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** Starts a session of the environment, sends one message and reads its events until it is idle. */
async function runSession(
  agentId: string,
  environmentId: string,
  onEvent?: (event: ApiEvent, sessionId: string) => Promise<void>,
): Promise<ApiEvent[]> {
  const session = await client.beta.sessions.create({ agent: agentId, environment_id: environmentId });
  const stream = await client.beta.sessions.events.stream(session.id);
  await client.beta.sessions.events.send(session.id, {
    events: [{ type: "user.message", content: [{ type: "text", text: "use the package" }] }],
  });
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as unknown as ApiEvent;
    events.push(event);
    await onEvent?.(event, session.id);
    if (event.type === "session.status_idle") break;
  }
  return events;
}

const ofType = (events: ApiEvent[], type: string) => events.filter((event) => event.type === type);

interface PackageLayerField {
  type: string;
  status: string;
  digest: string;
  built_at: string | null;
  error: { type: string; message: string } | null;
}

/** The environment's `package_layer` field (Outrig's; the SDK's type does not name it). */
async function packageLayerOf(environmentId: string): Promise<PackageLayerField | null> {
  const environment = (await client.beta.environments.retrieve(environmentId)) as unknown as {
    package_layer: PackageLayerField | null;
  };
  return environment.package_layer;
}

describe("an environment's packages", () => {
  let agentId = "";

  it("installs them once into a layer: the first session builds it, the second starts from it", async () => {
    const agent = await client.beta.agents.create({
      name: "packages",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    agentId = agent.id;
    const environment = await client.beta.environments.create({
      name: "with-hello",
      config: { type: "cloud", packages: { npm: ["hello-outrig@1.0.0"] } },
    });
    expect(environment.config).toMatchObject({ packages: { npm: ["hello-outrig@1.0.0"] } });
    expect(await packageLayerOf(environment.id)).toMatchObject({
      type: "package_layer",
      status: "pending",
      error: null,
    });

    const first = await runSession(agentId, environment.id);
    const started = ofType(first, "session.environment_build_started");
    const completed = ofType(first, "session.environment_build_completed");
    expect(started).toHaveLength(1);
    expect(completed).toEqual([
      expect.objectContaining({ source: "built", layer_digest: started[0]?.layer_digest }),
    ]);
    const results = ofType(first, "agent.tool_result");
    expect(results.map((event) => event.is_error)).toEqual([false]);
    const output = JSON.stringify(results[0]?.content);
    expect(output).toContain("hello from the layer");
    expect(output).toContain("hello from the layer via require");
    expect(first.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });
    expect(downloads.get("hello-outrig")).toBe(1);
    const layer = await packageLayerOf(environment.id);
    expect(layer).toMatchObject({ status: "ready", digest: started[0]?.layer_digest, error: null });
    expect(Date.parse(layer?.built_at ?? "")).not.toBeNaN();

    // The second session of the environment finds the layer: no build, no download.
    const second = await runSession(agentId, environment.id);
    expect(ofType(second, "session.environment_build_started")).toHaveLength(0);
    expect(ofType(second, "session.environment_build_completed")).toEqual([
      expect.objectContaining({ source: "cached", layer_digest: started[0]?.layer_digest }),
    ]);
    expect(JSON.stringify(ofType(second, "agent.tool_result")[0]?.content)).toContain("hello from the layer");
    expect(downloads.get("hello-outrig")).toBe(1);
  }, 240_000);

  it("builds a new package set once for two concurrent first sessions", async () => {
    const environment = await client.beta.environments.create({
      name: "with-second",
      config: { type: "cloud", packages: { npm: ["second-outrig"] } },
    });
    const [one, two] = await Promise.all([
      runSession(agentId, environment.id),
      runSession(agentId, environment.id),
    ]);
    expect(downloads.get("second-outrig")).toBe(1);
    const sources = [one, two]
      .flatMap((events) => ofType(events, "session.environment_build_completed"))
      .map((event) => event.source)
      .sort();
    expect(sources).toEqual(["built", "joined"]);
    for (const events of [one, two]) {
      expect(ofType(events, "session.environment_build_started")).toHaveLength(1);
      expect(JSON.stringify(ofType(events, "agent.tool_result")[0]?.content)).toContain(
        "second package here",
      );
    }
  }, 240_000);

  it("ends the turn with a clear error when a spec cannot be installed, and calls no model", async () => {
    const environment = await client.beta.environments.create({
      name: "broken",
      config: { type: "cloud", packages: { npm: ["no-such-outrig-package"] } },
    });
    const events = await runSession(agentId, environment.id);
    const failed = ofType(events, "session.environment_build_failed");
    expect(failed).toHaveLength(1);
    expect(String(failed[0]?.message)).toMatch(/^npm install exited with \d+:/);
    const errors = ofType(events, "session.error");
    expect(errors).toEqual([
      expect.objectContaining({
        error: expect.objectContaining({
          code: "environment_build_failed",
          retry_status: { type: "terminal" },
        }),
      }),
    ]);
    // npm's own complaint (the tail of its output) names the package and the registry's 404.
    const message = String((errors[0]?.error as { message?: string } | undefined)?.message);
    expect(message).toContain("no-such-outrig-package");
    expect(message).toMatch(/404/);
    expect(ofType(events, "agent.tool_use")).toHaveLength(0);
    expect(events.at(-1)).toMatchObject({ type: "session.status_idle" });
    const layer = await packageLayerOf(environment.id);
    expect(layer).toMatchObject({
      status: "failed",
      built_at: null,
      error: { type: "environment_build_failed" },
    });
    expect(layer?.error?.message).toContain("no-such-outrig-package");
  }, 240_000);

  it("builds a new layer when the packages change; install scripts reach only the registry; the layer is read-only", async () => {
    const environments: Anthropic.Beta.BetaEnvironment[] = [];
    for await (const environment of client.beta.environments.list()) environments.push(environment);
    const environment = environments.find((candidate) => candidate.name === "with-hello");
    // The list shows each environment's layer too.
    expect((environment as unknown as { package_layer: PackageLayerField }).package_layer).toMatchObject({
      status: "ready",
    });
    const before = await packageLayerOf(environment?.id ?? "");
    await client.beta.environments.update(environment?.id ?? "", {
      config: { type: "cloud", packages: { npm: ["sneaky-outrig", "hello-outrig@1.0.0"] } },
    });
    const pending = await packageLayerOf(environment?.id ?? "");
    expect(pending).toMatchObject({ status: "pending" });
    expect(pending?.digest).not.toBe(before?.digest);

    const events = await runSession(agentId, environment?.id ?? "");
    expect(ofType(events, "session.environment_build_completed")).toEqual([
      expect.objectContaining({ source: "built", layer_digest: pending?.digest }),
    ]);
    expect(downloads.get("hello-outrig")).toBe(2);
    const output = JSON.stringify(ofType(events, "agent.tool_result")[0]?.content);
    // The proxy answered the install script, and refused the host the org allows to sessions.
    expect(output).toContain("probe status 403");
    expect(leakRequests).toEqual([]);
    expect(output).toContain("hello from the layer");
    expect(output).toContain("layer-is-read-only");
  }, 240_000);

  it("lets an interrupt end a turn that waits for a build that hangs", async () => {
    const environment = await client.beta.environments.create({
      name: "slow",
      config: { type: "cloud", packages: { npm: ["slow-outrig"] } },
    });
    const events = await runSession(agentId, environment.id, async (event, sessionId) => {
      if (event.type === "session.environment_build_started")
        await client.beta.sessions.events.send(sessionId, { events: [{ type: "user.interrupt" }] });
    });
    expect(events.map((event) => event.type)).toContain("user.interrupt");
    expect(events.at(-1)).toMatchObject({ type: "session.status_idle" });
    expect(ofType(events, "agent.tool_use")).toHaveLength(0);
    // The build still waits for the registry: it was left to finish for the environment's next session.
    expect(await packageLayerOf(environment.id)).toMatchObject({ status: "building" });
    releaseSlow();
  }, 240_000);
});
