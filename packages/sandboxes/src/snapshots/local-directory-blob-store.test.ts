import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalDirectoryBlobStore } from "./local-directory-blob-store.js";

let root: string;
let store: LocalDirectoryBlobStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "outrig-blobs-"));
  store = new LocalDirectoryBlobStore(root);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function bytesOf(body: AsyncIterable<Uint8Array> | null): Promise<string> {
  if (!body) return "<missing>";
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

describe("LocalDirectoryBlobStore", () => {
  it("puts bytes and streams, gets, checks and deletes by key", async () => {
    await store.put("snapshots/org/session/a.bin", new TextEncoder().encode("bytes"));
    async function* stream() {
      yield new TextEncoder().encode("str");
      yield new TextEncoder().encode("eam");
    }
    await store.put("snapshots/org/session/b.bin", stream());
    expect(await bytesOf(await store.get("snapshots/org/session/a.bin"))).toBe("bytes");
    expect(await bytesOf(await store.get("snapshots/org/session/b.bin"))).toBe("stream");
    expect(await store.has("snapshots/org/session/a.bin")).toBe(true);
    expect(await store.get("snapshots/missing")).toBeNull();
    expect(await store.has("snapshots/missing")).toBe(false);
    await store.put("snapshots/org/session/a.bin", new TextEncoder().encode("replaced"));
    expect(await bytesOf(await store.get("snapshots/org/session/a.bin"))).toBe("replaced");
    await store.delete("snapshots/org/session/a.bin");
    await store.delete("snapshots/org/session/a.bin");
    expect(await store.has("snapshots/org/session/a.bin")).toBe(false);
    // No partial files are left behind.
    expect(await readdir(join(root, "snapshots/org/session"))).toEqual(["b.bin"]);
  });

  it("leaves no blob when the body stream fails", async () => {
    async function* failing() {
      yield new TextEncoder().encode("half");
      throw new Error("upload cut");
    }
    await expect(store.put("k/v", failing())).rejects.toThrow("upload cut");
    expect(await store.has("k/v")).toBe(false);
    expect(await readdir(join(root, "k"))).toEqual([]);
  });

  it("rejects keys that could escape the directory", async () => {
    for (const key of ["../x", "a/../../x", "/abs", "a//b", "a/./b", "sp ace", ""]) {
      await expect(store.put(key, new Uint8Array())).rejects.toMatchObject({ code: "invalid_blob_key" });
    }
  });

  it("lists and deletes every blob under a prefix, and nothing else", async () => {
    const bytes = new TextEncoder().encode("x");
    await store.put("snapshots/s1/a/layer.tar.zst", bytes);
    await store.put("snapshots/s1/a/manifest.json", bytes);
    await store.put("snapshots/s10/a/manifest.json", bytes);
    expect((await store.list("snapshots/s1")).sort()).toEqual([
      "snapshots/s1/a/layer.tar.zst",
      "snapshots/s1/a/manifest.json",
    ]);
    expect(await store.list("snapshots/none")).toEqual([]);
    await store.deletePrefix("snapshots/s1");
    expect(await store.list("snapshots/s1")).toEqual([]);
    expect(await store.has("snapshots/s10/a/manifest.json")).toBe(true);
    await expect(store.deletePrefix("../x")).rejects.toThrow(/invalid blob key/);
  });
});
