import { describe, expect, it } from "vitest";
import { workspaceRelativePath } from "./session-sandbox.js";

describe("workspaceRelativePath (snapshot hints of file calls)", () => {
  it.each([
    ["/workspace/a.txt", "a.txt"],
    ["/workspace/src/deep/b.ts", "src/deep/b.ts"],
    ["/workspace/src/../c.ts", "c.ts"],
    ["/workspace//d//e/", "d/e"],
  ])("maps %s to %s", (sandboxPath, relative) => {
    expect(workspaceRelativePath(sandboxPath)).toBe(relative);
  });

  it.each([
    "/workspace",
    "/workspace/",
    "/workspace/../etc/passwd",
    "/workspaces/x",
    "/tmp/x",
    "/memories/notes.md",
    "relative/path",
  ])("gives no hint for %s (the snapshot scans)", (sandboxPath) => {
    expect(workspaceRelativePath(sandboxPath)).toBeUndefined();
  });
});
