/**
 * An unisolated SandboxProvider over host temp directories, for fast HTTP and loop tests. It maps
 * `/workspace/...` to the session's workspace directory and runs commands with plain `bash -c` there.
 * Never use it where isolation is under test.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import {
  type CreateSandboxOptions,
  type DirEntry,
  type ExecRequest,
  type ExecResult,
  FileError,
  type FileStat,
  fileErrorCodeOf,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
  type SandboxProvider,
} from "@outrig/core";

export class FakeSandboxProvider implements SandboxProvider {
  readonly id = "fake";
  readonly created: string[] = [];
  readonly #handles = new Set<SandboxHandle>();

  async create(options: CreateSandboxOptions): Promise<SandboxHandle> {
    await fs.mkdir(options.workspaceDir, { recursive: true });
    const id = `fake_${this.created.length + 1}`;
    this.created.push(options.sessionId);
    let isAlive = true;
    const root = options.workspaceDir;
    const map = (filePath: string): string => {
      if (filePath === "/workspace" || filePath.startsWith("/workspace/")) {
        return path.join(root, filePath.slice("/workspace".length));
      }
      throw new FileError(
        "permission_denied",
        filePath,
        `${filePath}: only /workspace exists in the fake sandbox`,
      );
    };
    const guard = () => {
      if (!isAlive) throw new SandboxError("sandbox_unavailable", "sandbox destroyed");
    };
    const sandbox: Sandbox = {
      exec: async (request, signal) => {
        guard();
        return runLocal(request, root, signal);
      },
      readFile: async (filePath) => {
        guard();
        return wrapErrors(filePath, () => fs.readFile(map(filePath)));
      },
      writeFile: async (filePath, data) => {
        guard();
        const target = map(filePath);
        await fs.mkdir(path.dirname(target), { recursive: true });
        await wrapErrors(filePath, () => fs.writeFile(target, data));
      },
      stat: async (filePath): Promise<FileStat | null> => {
        guard();
        try {
          const stats = await fs.lstat(map(filePath));
          return {
            kind: stats.isDirectory() ? "directory" : "file",
            size: stats.size,
            mtimeMs: stats.mtimeMs,
          };
        } catch {
          return null;
        }
      },
      list: async (filePath, listOptions) => {
        guard();
        const base = map(filePath);
        const entries: DirEntry[] = [];
        const walk = async (dir: string): Promise<void> => {
          for (const entry of await wrapErrors(filePath, () => fs.readdir(dir, { withFileTypes: true }))) {
            const full = path.join(dir, entry.name);
            const stats = await fs.lstat(full);
            entries.push({
              path: path.relative(base, full),
              kind: entry.isDirectory() ? "directory" : "file",
              size: stats.size,
              mtimeMs: stats.mtimeMs,
            });
            if (entry.isDirectory() && listOptions?.recursive) await walk(full);
          }
        };
        await walk(base);
        return listOptions?.limit ? entries.slice(0, listOptions.limit) : entries;
      },
      remove: async (filePath) => {
        guard();
        await wrapErrors(filePath, () => fs.rm(map(filePath), { recursive: true }));
      },
    };
    const handle: SandboxHandle = {
      id,
      sandbox,
      isAlive: () => isAlive,
      destroy: async () => {
        isAlive = false;
        this.#handles.delete(handle);
      },
    };
    this.#handles.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#handles].map((handle) => handle.destroy()));
  }
}

async function wrapErrors<T>(filePath: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FileError) throw error;
    throw new FileError(
      fileErrorCodeOf((error as NodeJS.ErrnoException).code),
      filePath,
      `${filePath}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function runLocal(request: ExecRequest, cwd: string, signal: AbortSignal): Promise<ExecResult> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", request.command], {
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    let stdout = "";
    let stderr = "";
    let isTimedOut = false;
    const timer = setTimeout(() => {
      isTimedOut = true;
      child.kill("SIGKILL");
    }, request.timeoutMs);
    const onAbort = () => child.kill("SIGKILL");
    signal.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (exitCode, signalName) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve({
        exitCode,
        signal: signalName,
        stdout,
        stderr,
        isTimedOut,
        isTruncated: false,
        durationMs: performance.now() - startedAt,
      });
    });
  });
}
