import { describe, expect, it } from "vitest";
import { isFileError } from "../sandbox/sandbox-errors.js";
import { ReadOnlyFileTree } from "./read-only-file-tree.js";

const text = (value: string) => new TextEncoder().encode(value);

describe("ReadOnlyFileTree", () => {
  const tree = new ReadOnlyFileTree(
    [
      { path: "demo/SKILL.md", content: text("skill") },
      { path: "demo/scripts/run.sh", content: text("#!/bin/sh\n") },
      { path: "other/SKILL.md", content: text("other") },
    ],
    "read-only here",
  );

  it("reads files, stats files and the directories their paths imply", async () => {
    expect(new TextDecoder().decode(await tree.read("/demo/SKILL.md"))).toBe("skill");
    expect(await tree.stat("/demo/scripts/run.sh")).toMatchObject({ kind: "file", size: 10 });
    expect(await tree.stat("/demo/scripts")).toMatchObject({ kind: "directory" });
    expect(await tree.stat("/")).toMatchObject({ kind: "directory" });
    expect(await tree.stat("/missing")).toBeNull();
    await expect(tree.read("/demo")).rejects.toSatisfy((error) => isFileError(error, "is_directory"));
    await expect(tree.read("/demo/none.md")).rejects.toSatisfy((error) => isFileError(error, "not_found"));
  });

  it("lists one level or recursively, in path order, and honours a limit", async () => {
    expect((await tree.list("/")).map((entry) => `${entry.kind}:${entry.path}`)).toEqual([
      "directory:demo",
      "directory:other",
    ]);
    expect((await tree.list("/demo", { recursive: true })).map((entry) => entry.path)).toEqual([
      "SKILL.md",
      "scripts",
      "scripts/run.sh",
    ]);
    expect(await tree.list("/", { recursive: true, limit: 2 })).toHaveLength(2);
    await expect(tree.list("/demo/SKILL.md")).rejects.toSatisfy((error) =>
      isFileError(error, "not_directory"),
    );
    await expect(tree.list("/nowhere")).rejects.toSatisfy((error) => isFileError(error, "not_found"));
  });

  it("refuses every write and remove with the hint, and refuses paths that climb out", async () => {
    await expect(tree.write("/demo/SKILL.md", text("x"))).rejects.toThrow("read-only here");
    await expect(tree.write("/new.md", text("x"))).rejects.toSatisfy((error) =>
      isFileError(error, "read_only"),
    );
    await expect(tree.remove("/demo")).rejects.toSatisfy((error) => isFileError(error, "read_only"));
    expect(() => new ReadOnlyFileTree([{ path: "../escape", content: text("") }], "x")).toThrow(/Bad path/);
  });
});
