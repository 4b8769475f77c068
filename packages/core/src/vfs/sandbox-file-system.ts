/** A FileSystem over a sandbox directory; the sandbox is acquired lazily, at the first call. */
import type { DirEntry, FileCallOptions, FileStat, ListOptions, Sandbox } from "../sandbox/sandbox.js";
import type { FileSystem } from "./file-system.js";
import { rebaseFileError } from "./rebase-file-error.js";

export class SandboxFileSystem implements FileSystem {
  readonly #getSandbox: () => Promise<Sandbox>;
  readonly #root: string;

  /** @param root absolute directory inside the sandbox that this file system's "/" maps to. */
  constructor(getSandbox: () => Promise<Sandbox>, root: string) {
    this.#getSandbox = getSandbox;
    this.#root = root === "/" ? "" : root;
  }

  #full(path: string): string {
    return path === "/" ? this.#root || "/" : `${this.#root}${path}`;
  }

  async read(path: string): Promise<Uint8Array> {
    return this.#call((sandbox) => sandbox.readFile(this.#full(path)));
  }
  async write(path: string, data: Uint8Array, options?: FileCallOptions): Promise<void> {
    return this.#call((sandbox) => sandbox.writeFile(this.#full(path), data, options));
  }
  async stat(path: string): Promise<FileStat | null> {
    return this.#call((sandbox) => sandbox.stat(this.#full(path)));
  }
  async list(path: string, options?: ListOptions): Promise<DirEntry[]> {
    return this.#call((sandbox) => sandbox.list(this.#full(path), options));
  }
  async remove(path: string, options?: FileCallOptions): Promise<void> {
    return this.#call((sandbox) => sandbox.remove(this.#full(path), options));
  }

  /** The sandbox names its own paths: its FileErrors are moved back under this file system's "/". */
  async #call<T>(work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    const sandbox = await this.#getSandbox();
    try {
      return await work(sandbox);
    } catch (error) {
      throw rebaseFileError(error, this.#root || "/", "/");
    }
  }
}
