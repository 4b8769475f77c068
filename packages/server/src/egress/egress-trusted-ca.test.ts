/**
 * OUTRIG_EGRESS_CA_FILE: a host whose certificate comes from a private CA (made here with openssl, not
 * with Outrig's own CA code) is reached through egress once that CA's file is configured, and refused
 * (certificate not trusted) without it; a bad file stops the start with a clear message.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createFileStateTracker, createMountTable, createToolsetTools, type ToolContext } from "@outrig/core";
import { MemoryFileSystem } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEgressTrustedCa } from "./egress-trusted-ca.js";
import { SessionEgress } from "./session-egress.js";

const run = promisify(execFile);
const session = { id: "ses_private_ca", orgId: "org_1", userId: "usr_1" };

describe("egress to a host with a private CA (OUTRIG_EGRESS_CA_FILE)", () => {
  let directory: string;
  let server: https.Server;
  let port: number;
  const egresses: SessionEgress[] = [];

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), "outrig-private-ca-"));
    const file = (name: string) => path.join(directory, name);
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=Outrig test private CA",
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.pem"),
    ]);
    await run("openssl", [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=private.test",
      "-keyout",
      file("host.key"),
      "-out",
      file("host.csr"),
    ]);
    await writeFile(file("host.ext"), "subjectAltName=DNS:private.test\n");
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      file("host.csr"),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      file("host.ext"),
      "-out",
      file("host.pem"),
    ]);
    server = https.createServer(
      { key: await readFile(file("host.key")), cert: await readFile(file("host.pem")) },
      (_request, response) => {
        response.writeHead(200, { "content-type": "text/plain" });
        response.end("inside the private network");
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const egress of egresses) await egress.close();
    await new Promise((resolve) => server?.close(resolve));
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  async function fetchThroughEgress(upstreamCa: readonly string[] | undefined) {
    const egress = await SessionEgress.create({
      home: directory,
      masterKey: randomBytes(32),
      policies: { get: async () => ({ allowedHosts: [`private.test:${port}`], credentials: [] }) },
      environmentOf: async () => null,
      secrets: { resolveSecret: async () => null, resolveAllSecrets: async () => new Map() },
      audit: { append: async () => undefined },
      pinnedHosts: new Map([["private.test", ["127.0.0.1"]]]),
      ...(upstreamCa ? { upstreamCa } : {}),
      log: () => undefined,
    });
    egresses.push(egress);
    const { tools } = createToolsetTools(
      { web_fetch: { enabled: true, permission: "always_allow" } },
      { webFetcher: egress.webFetcher(session) },
    );
    const tool = tools.find((candidate) => candidate.name === "web_fetch");
    if (!tool) throw new Error("web_fetch not offered");
    const context: ToolContext = {
      fs: createMountTable([{ prefix: "/workspace", fileSystem: new MemoryFileSystem({}) }]),
      exec: async () => {
        throw new Error("web_fetch must not run in the sandbox");
      },
      fileState: createFileStateTracker(),
      signal: new AbortController().signal,
      toolCallId: "call_private",
      cwd: "/workspace",
    };
    return tool.execute({ url: `https://private.test:${port}/` }, context);
  }

  it("reaches the host with the CA file, and not without it", async () => {
    const trusted = await loadEgressTrustedCa(path.join(directory, "ca.pem"));
    expect(trusted.length).toBeGreaterThan(1); // Node's roots stay trusted beside the private CA
    const reached = await fetchThroughEgress(trusted);
    expect(reached).toMatchObject({ isError: false });
    expect(reached.output).toContain("inside the private network");
    const refused = await fetchThroughEgress(undefined);
    expect(refused.isError).toBe(true);
    expect(refused.output).not.toContain("inside the private network");
  });

  it("stops the start with the file's name when it is missing or holds no certificate", async () => {
    await expect(loadEgressTrustedCa(path.join(directory, "missing.pem"))).rejects.toThrow(
      /OUTRIG_EGRESS_CA_FILE .*missing\.pem cannot be read/,
    );
    await expect(loadEgressTrustedCa(path.join(directory, "host.key"))).rejects.toThrow(
      /holds no PEM certificate/,
    );
    const broken = path.join(directory, "broken.pem");
    await writeFile(broken, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    await expect(loadEgressTrustedCa(broken)).rejects.toThrow(/certificate 1 is not valid/);
  });
});
