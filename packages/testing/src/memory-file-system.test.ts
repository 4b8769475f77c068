/** The same behaviour checks for MemoryFileSystem and LocalDirectoryFileSystem, so the two stay interchangeable. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FileErrorCode, type FileSystem, isFileError } from "@outrig/core";
import { afterAll, describe, expect, it } from "vitest";
import { LocalDirectoryFileSystem } from "./local-directory-file-system.js";
import { MemoryFileSystem } from "./memory-file-system.js";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (data: Uint8Array) => new TextDecoder().decode(data);

async function errorCode(action: () => Promise<unknown>): Promise<FileErrorCode | "none"> {
  try {
    await action();
    return "none";
  } catch (error) {
    if (isFileError(error)) return error.code;
    throw error;
  }
}

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

const implementations: [string, () => FileSystem][] = [
  ["MemoryFileSystem", () => new MemoryFileSystem()],
  [
    "LocalDirectoryFileSystem",
    () => {
      const folder = mkdtempSync(join(tmpdir(), "outrig-fs-"));
      folders.push(folder);
      return new LocalDirectoryFileSystem(folder);
    },
  ],
];

describe.each(implementations)("%s", (_name, create) => {
  it("writes, reads and stats files, creating parent folders", async () => {
    const fs = create();
    await fs.write("/a/b/c.txt", encode("hello"));
    expect(decode(await fs.read("/a/b/c.txt"))).toBe("hello");
    expect(await fs.stat("/a/b/c.txt")).toMatchObject({ kind: "file", size: 5 });
    expect(await fs.stat("/a/b")).toMatchObject({ kind: "directory" });
    expect(await fs.stat("/missing")).toBeNull();
  });

  it("advances mtime on every write", async () => {
    const fs = create();
    await fs.write("/f", encode("1"));
    const first = (await fs.stat("/f"))?.mtimeMs ?? 0;
    await new Promise((resolve) => setImmediate(resolve));
    await fs.write("/f", encode("2"));
    expect((await fs.stat("/f"))?.mtimeMs).toBeGreaterThan(first);
  });

  it("lists one level or everything, with relative paths", async () => {
    const fs = create();
    await fs.write("/d/x.txt", encode("x"));
    await fs.write("/d/sub/y.txt", encode("yy"));
    expect((await fs.list("/d")).map((entry) => [entry.path, entry.kind])).toEqual([
      ["sub", "directory"],
      ["x.txt", "file"],
    ]);
    expect((await fs.list("/d", { recursive: true })).map((entry) => entry.path).sort()).toEqual([
      "sub",
      "sub/y.txt",
      "x.txt",
    ]);
    expect(await fs.list("/d", { recursive: true, limit: 1 })).toHaveLength(1);
  });

  it("removes files and whole folders", async () => {
    const fs = create();
    await fs.write("/d/x", encode(""));
    await fs.write("/d/e/y", encode(""));
    await fs.remove("/d/x");
    expect(await fs.stat("/d/x")).toBeNull();
    await fs.remove("/d");
    expect(await fs.stat("/d/e/y")).toBeNull();
    expect(await fs.stat("/d")).toBeNull();
  });

  it.each([
    ["reading a missing file", (fs: FileSystem) => fs.read("/nope"), "not_found"],
    ["reading a folder", (fs: FileSystem) => fs.read("/dir"), "is_directory"],
    ["writing over a folder", (fs: FileSystem) => fs.write("/dir", encode("")), "is_directory"],
    ["writing below a file", (fs: FileSystem) => fs.write("/file/x", encode("")), "not_directory"],
    ["listing a missing folder", (fs: FileSystem) => fs.list("/nope"), "not_found"],
    ["listing a file", (fs: FileSystem) => fs.list("/file"), "not_directory"],
    ["removing a missing path", (fs: FileSystem) => fs.remove("/nope"), "not_found"],
    ["a relative path", (fs: FileSystem) => fs.read("file"), "invalid_path"],
    ["a NUL byte", (fs: FileSystem) => fs.stat("/fi\0le"), "invalid_path"],
  ] as const)("fails %s with %s", async (_name, action, code) => {
    const fs = create();
    await fs.write("/dir/inner", encode(""));
    await fs.write("/file", encode(""));
    expect(await errorCode(() => action(fs))).toBe(code);
  });

  it("cannot climb above its root", async () => {
    const fs = create();
    await fs.write("/../../escape.txt", encode("inside"));
    expect(decode(await fs.read("/escape.txt"))).toBe("inside");
  });
});

describe("MemoryFileSystem extras", () => {
  it("takes initial files, keeps mtimes increasing under a frozen clock, and lets tests set them", async () => {
    const fs = new MemoryFileSystem({ "/a": "1", "/b": new Uint8Array([2]) }, { clock: () => 5 });
    const a = (await fs.stat("/a"))?.mtimeMs ?? 0;
    const b = (await fs.stat("/b"))?.mtimeMs ?? 0;
    expect(b).toBeGreaterThan(a);
    fs.touch("/a", 1);
    expect((await fs.stat("/a"))?.mtimeMs).toBe(1);
    fs.mkdir("/empty/dir");
    expect(await fs.list("/empty")).toEqual([{ path: "dir", kind: "directory", size: 0, mtimeMs: 0 }]);
  });

  it("returns copies, so callers cannot change stored bytes", async () => {
    const fs = new MemoryFileSystem({ "/a": "x" });
    const data = await fs.read("/a");
    data[0] = 0;
    expect(decode(await fs.read("/a"))).toBe("x");
  });
});
