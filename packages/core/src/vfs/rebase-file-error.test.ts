import { describe, expect, it } from "vitest";
import { FileError } from "../sandbox/sandbox-errors.js";
import { createMountTable } from "./create-mount-table.js";
import { rebaseFileError, rebasePath } from "./rebase-file-error.js";

describe("rebasePath", () => {
  it.each([
    ["/a.md", "/", "/memories/org", "/memories/org/a.md"],
    ["/", "/", "/memories/org", "/memories/org"],
    ["/workspace/a", "/workspace", "/", "/a"],
    ["/workspace", "/workspace", "/", "/"],
    ["/workspaces/a", "/workspace", "/", undefined],
    ["/a", "/b", "/c", undefined],
  ])("moves %s from %s to %s", (path, from, to, expected) => {
    expect(rebasePath(path, from, to)).toBe(expected);
  });
});

describe("rebaseFileError", () => {
  it("moves the path and the message's mention of it, not other paths that share its start", () => {
    const error = new FileError("not_found", "/a", "No such file: /a (near /a/b and /ab).");
    const moved = rebaseFileError(error, "/", "/memories/org");
    expect(moved).toMatchObject({
      code: "not_found",
      path: "/memories/org/a",
      message: "No such file: /memories/org/a (near /a/b and /ab).",
    });
    expect((moved as FileError).cause).toBe(error);
  });

  it("moves the root of a mount", () => {
    const moved = rebaseFileError(new FileError("not_found", "/", "No such directory: /"), "/", "/skills");
    expect(moved).toMatchObject({ path: "/skills", message: "No such directory: /skills" });
  });

  it("leaves other errors alone", () => {
    const plain = new Error("boom /a");
    expect(rebaseFileError(plain, "/", "/x")).toBe(plain);
  });
});

describe("MountTable errors", () => {
  it("name the path the caller used, through the file system a mount holds", async () => {
    const table = createMountTable([
      {
        prefix: "/memories/org",
        fileSystem: {
          read: async (path) => {
            throw new FileError("not_found", path, `No such file: ${path}`);
          },
          write: async () => undefined,
          stat: async () => null,
          list: async () => [],
          remove: async () => undefined,
        },
      },
    ]);
    await expect(table.read("/memories/org/conventions.md")).rejects.toMatchObject({
      path: "/memories/org/conventions.md",
      message: "No such file: /memories/org/conventions.md",
    });
  });
});
