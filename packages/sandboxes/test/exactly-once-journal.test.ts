import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createBubblewrapSandboxProvider } from "../src/index.js";

describe("exactly-once journal", () => {
  const provider = createBubblewrapSandboxProvider();
  const roots: string[] = [];
  afterAll(async () => {
    await provider.close();
    await Promise.all(roots.map((root) => fs.rm(root, { recursive: true, force: true })));
  });

  it("replays a completed call in a replacement sandbox instead of running it again", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-journal-"));
    roots.push(root);
    const options = {
      sessionId: "journal",
      orgId: "org",
      workspaceDir: path.join(root, "workspace"),
      stateDir: path.join(root, "state"),
    };
    const signal = new AbortController().signal;
    const request = { command: "echo appended >> /workspace/log; wc -l < /workspace/log", timeoutMs: 10_000 };

    const first = await provider.create(options);
    const original = await first.sandbox.exec({ ...request, idempotencyKey: "call-1" }, signal);
    expect(original).toMatchObject({ exitCode: 0, stdout: "1\n", isReplayed: false });
    await first.destroy();

    const second = await provider.create(options);
    const replayed = await second.sandbox.exec({ ...request, idempotencyKey: "call-1" }, signal);
    expect(replayed).toMatchObject({ exitCode: 0, stdout: "1\n", isReplayed: true });
    const fresh = await second.sandbox.exec({ ...request, idempotencyKey: "call-2" }, signal);
    expect(fresh).toMatchObject({ stdout: "2\n", isReplayed: false });
    await second.destroy();
    expect(await fs.readFile(path.join(root, "workspace", "log"), "utf8")).toBe("appended\nappended\n");
    // The journal is outside the workspace: the model's files never show it.
    expect(await fs.readdir(path.join(root, "workspace"))).toEqual(["log"]);
  });
});
