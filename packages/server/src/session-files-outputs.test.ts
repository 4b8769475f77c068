/**
 * Collecting a session's outputs when /mnt/session/outputs is empty asks neither the sandbox nor the
 * database anything, so a step that wrote no output does not wait for the sandbox (or its snapshot).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Sandbox } from "@outrig/core";
import type { PostgresApiFileStore } from "@outrig/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionFiles } from "./session-files.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "outrig-session-outputs-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A sandbox and a file store that record being asked anything. */
function recorders() {
  const asked: string[] = [];
  const refuse = (what: string) => () => {
    asked.push(what);
    throw new Error(`${what} was called`);
  };
  const sandbox: Sandbox = {
    exec: refuse("exec"),
    readFile: refuse("readFile"),
    writeFile: refuse("writeFile"),
    stat: refuse("stat"),
    list: refuse("list"),
    remove: refuse("remove"),
  };
  const files = { latestByScopePath: refuse("latestByScopePath"), create: refuse("create") };
  return { asked, sandbox, files: files as unknown as PostgresApiFileStore };
}

describe("SessionFiles.collectOutputs on an empty outputs directory", () => {
  it("returns nothing without a sandbox call or a query, missing or empty, and asks once a file is there", async () => {
    const { asked, sandbox, files } = recorders();
    const directory = path.join(root, "session");
    const sessionFiles = new SessionFiles({ files, orgId: "org_1", sessionId: "sesn_1", directory });

    expect(await sessionFiles.collectOutputs(sandbox)).toEqual([]); // not created yet
    await sessionFiles.sandboxMounts();
    expect(await sessionFiles.collectOutputs(sandbox)).toEqual([]); // created, empty
    expect(asked).toEqual([]);

    await mkdir(path.join(directory, "outputs"), { recursive: true });
    await writeFile(path.join(directory, "outputs", "report.md"), "# Report\n");
    await expect(sessionFiles.collectOutputs(sandbox)).rejects.toThrow("list was called");
    expect(asked).toEqual(["list"]);
  });
});
