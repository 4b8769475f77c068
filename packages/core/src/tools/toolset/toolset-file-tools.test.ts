/**
 * Edges of the toolset's file tools over an in-memory file system (the happy paths run on a real
 * sandbox in packages/server/src/toolset-tools.test.ts): view_range's corners, the size limits worded
 * for view_range, binary files and folders, and glob's newest-first order past its limit.
 */
import { MemoryFileSystem } from "@outrig/testing";
import { describe, expect, it } from "vitest";
import { createMountTable } from "../../vfs/create-mount-table.js";
import { createFileStateTracker } from "../file-state-tracker.js";
import type { ToolContext } from "../tool.js";
import {
  createToolsetGlobTool,
  createToolsetReadTool,
  createToolsetWriteTool,
  TOOLSET_GLOB_MAX_RESULTS,
} from "./toolset-file-tools.js";

function contextWith(files: Record<string, string | Uint8Array>): ToolContext {
  const memory = new MemoryFileSystem(
    Object.fromEntries(Object.entries(files).map(([name, content]) => [`/${name}`, content])),
  );
  return {
    fs: createMountTable([{ prefix: "/workspace", fileSystem: memory }]),
    exec: async () => {
      throw new Error("no exec");
    },
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_1",
    cwd: "/workspace",
  };
}

const read = createToolsetReadTool();

describe("toolset read", () => {
  const lines = Array.from({ length: 5 }, (_, index) => `line ${index + 1}`).join("\n");

  it.each([
    [[2, 2], "line 2"],
    [[4, 0], "line 4\nline 5"],
    [[0, 1], "line 1"],
    [[5, 2], ""],
    [[], lines],
  ])("view_range %j", async (range, expected) => {
    const context = contextWith({ "f.txt": lines });
    expect(await read.execute({ file_path: "f.txt", view_range: range }, context)).toEqual({
      output: expected,
      isError: false,
    });
  });

  it("reads a file longer than Read's default 2000 lines whole", async () => {
    const long = Array.from({ length: 2500 }, (_, index) => `${index}`).join("\n");
    const result = await read.execute(
      { file_path: "/workspace/long.txt" },
      contextWith({ "long.txt": long }),
    );
    expect(result).toEqual({ output: long, isError: false });
  });

  it("words the size limit for view_range, and refuses binary files and folders", async () => {
    const big = "x".repeat(300 * 1024);
    expect(await read.execute({ file_path: "big.txt" }, contextWith({ "big.txt": big }))).toEqual({
      output:
        "read: File content (300.0KB) exceeds maximum allowed size (256KB). Use view_range to read specific line ranges, e.g. view_range: [1, 500], or search for specific content instead of reading the whole file.",
      isError: true,
    });
    const binary = await read.execute(
      { file_path: "blob.bin" },
      contextWith({ "blob.bin": new Uint8Array([1, 0, 2]) }),
    );
    expect(binary.isError).toBe(true);
    expect(binary.output).toMatch(/^read: This tool cannot read binary files/);
    expect(await read.execute({ file_path: "dir" }, contextWith({ "dir/a.txt": "a" }))).toEqual({
      output: "read: EISDIR: illegal operation on a directory, read",
      isError: true,
    });
  });

  it("creates a new file without a read, and counts bytes, not characters", async () => {
    const write = createToolsetWriteTool();
    expect(await write.execute({ file_path: "new/é.txt", content: "é✓" }, contextWith({}))).toEqual({
      output: "wrote 5 bytes to new/é.txt",
      isError: false,
    });
  });
});

describe("toolset glob", () => {
  it(`shows the newest ${TOOLSET_GLOB_MAX_RESULTS} first and says when it cut the list`, async () => {
    const files: Record<string, string> = {};
    for (let index = 0; index < TOOLSET_GLOB_MAX_RESULTS + 5; index++) files[`f${index}.txt`] = "x";
    const context = contextWith(files);
    // The in-memory file system stamps files in creation order; touch one to make it the newest.
    const write = createToolsetWriteTool();
    await read.execute({ file_path: "f3.txt" }, context);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await write.execute({ file_path: "f3.txt", content: "newer" }, context);
    const result = await createToolsetGlobTool().execute({ pattern: "*.txt" }, context);
    const shown = result.output.split("\n");
    expect(shown[0]).toBe("/workspace/f3.txt");
    expect(shown).toHaveLength(TOOLSET_GLOB_MAX_RESULTS + 1);
    expect(shown.at(-1)).toBe("(Results are truncated. Consider using a more specific path or pattern.)");
  });
});
