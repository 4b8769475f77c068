/** A FileSystem over a sandbox directory; the sandbox is acquired lazily, at the first call. */
import type { DirEntry, FileStat, ListOptions, Sandbox } from "../sandbox/sandbox.js";
import type { FileSystem } from "./file-system.js";

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
    return (await this.#getSandbox()).readFile(this.#full(path));
  }
  async write(path: string, data: Uint8Array): Promise<void> {
    return (await this.#getSandbox()).writeFile(this.#full(path), data);
  }
  async stat(path: string): Promise<FileStat | null> {
    return (await this.#getSandbox()).stat(this.#full(path));
  }
  async list(path: string, options?: ListOptions): Promise<DirEntry[]> {
    return (await this.#getSandbox()).list(this.#full(path), options);
  }
  async remove(path: string): Promise<void> {
    return (await this.#getSandbox()).remove(this.#full(path));
  }
}
