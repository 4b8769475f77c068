import { chmod, lstat, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeOnlyNode } from "./execute-only-node.js";

describe("executeOnlyNode", () => {
  let root: string;
  let source: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-node-copy-"));
    source = join(root, "node");
    await writeFile(source, "#!fake node binary\n", { mode: 0o755 });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("makes an execute-only copy once and reuses it", async () => {
    const directory = join(root, "copies");
    const first = await executeOnlyNode(source, { directory });
    const stats = await lstat(first);
    expect(stats.mode & 0o7777).toBe(0o111);
    expect((await lstat(directory)).mode & 0o777).toBe(0o700);
    expect(await executeOnlyNode(source, { directory })).toBe(first);
    expect((await lstat(first)).ino).toBe(stats.ino);
  });

  it("replaces a copy whose mode was changed", async () => {
    const directory = join(root, "changed");
    const copy = await executeOnlyNode(source, { directory });
    await chmod(copy, 0o755);
    expect(await executeOnlyNode(source, { directory })).toBe(copy);
    expect((await lstat(copy)).mode & 0o7777).toBe(0o111);
  });

  it("refuses a directory others can write, and says when node is missing", async () => {
    const directory = join(root, "open");
    await executeOnlyNode(source, { directory });
    await chmod(directory, 0o777);
    await expect(executeOnlyNode(source, { directory })).rejects.toMatchObject({
      code: "sandbox_unavailable",
    });
    await expect(executeOnlyNode(join(root, "missing"), { directory: join(root, "x") })).rejects.toThrow(
      /node binary .*missing cannot be used/,
    );
  });
});
