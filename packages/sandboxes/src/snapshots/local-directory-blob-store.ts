/** A BlobStore on a local directory: one file per key, written to a temp file and renamed. */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobBody, type BlobStore, InputError, isValidBlobKey } from "@outrig/core";

export class LocalDirectoryBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  #pathOf(key: string): string {
    if (!isValidBlobKey(key)) throw new InputError("invalid_blob_key", `invalid blob key: ${key}`);
    return join(this.root, key);
  }

  async put(key: string, body: BlobBody): Promise<void> {
    const path = this.#pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomUUID()}.partial`;
    try {
      const source = body instanceof Uint8Array ? Readable.from([body]) : Readable.from(body);
      await pipeline(source, createWriteStream(temporary));
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async get(key: string): Promise<AsyncIterable<Uint8Array> | null> {
    const path = this.#pathOf(key);
    if (!(await this.has(key))) return null;
    return createReadStream(path);
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await stat(this.#pathOf(key))).isFile();
    } catch (error) {
      if (error instanceof InputError) throw error;
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#pathOf(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const directory = this.#pathOf(prefix);
    const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT" || error.code === "ENOTDIR") return [];
        throw error;
      },
    );
    return entries
      .filter((entry) => entry.isFile() && !entry.name.endsWith(".partial"))
      .map((entry) => relative(this.root, join(entry.parentPath, entry.name)).split(sep).join("/"));
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.#pathOf(prefix), { recursive: true, force: true });
  }
}

export function createLocalDirectoryBlobStore(root: string): LocalDirectoryBlobStore {
  return new LocalDirectoryBlobStore(root);
}
