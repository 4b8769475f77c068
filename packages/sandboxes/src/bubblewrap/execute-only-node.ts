/**
 * An execute-only copy of the node binary for the in-sandbox agent. A process that execs a file it
 * cannot read is made non-dumpable by the kernel, and a non-dumpable process cannot be reached by
 * ptrace-class access from processes without CAP_SYS_PTRACE: no /proc/<pid>/fd, /proc/<pid>/mem,
 * pidfd_getfd, ptrace or process_vm_* on it. The commands the agent runs are ordinary (dumpable)
 * processes of the same uid, so this is what keeps them away from the agent's channel to the host.
 * The copy is kept in a directory only this uid can enter and is reused by later servers.
 */
import { createHash, randomUUID } from "node:crypto";
import { chmod, copyFile, lstat, mkdir, readFile, realpath, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxError } from "@outrig/core";

/** Mode of the copy: executable by everyone, readable by no one without CAP_DAC_*. */
const EXECUTE_ONLY = 0o111;

/**
 * Path of an execute-only copy of `nodePath` (made on first use, checked on every call), inside
 * `directory` (default `<tmpdir>/outrig-agent-node-<uid>`, created 0700 and refused unless owned by
 * this uid).
 */
export async function executeOnlyNode(
  nodePath: string,
  options: { readonly directory?: string; readonly log?: (line: string) => void } = {},
): Promise<string> {
  await warnWhenDumpableIsForced(options.log ?? console.warn);
  let source: string;
  let sourceStats: Awaited<ReturnType<typeof stat>>;
  try {
    source = await realpath(nodePath);
    sourceStats = await stat(source);
  } catch (error) {
    throw new SandboxError(
      "sandbox_unavailable",
      `sandbox failed to start: the node binary ${nodePath} cannot be used: ${String(error)}`,
      { cause: error },
    );
  }
  const uid = process.getuid?.() ?? 0;
  const parent = options.directory ?? join(tmpdir(), `outrig-agent-node-${uid}`);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const parentStats = await lstat(parent);
  if (!parentStats.isDirectory() || parentStats.uid !== uid || (parentStats.mode & 0o022) !== 0)
    throw new SandboxError(
      "sandbox_unavailable",
      `${parent} must be a directory owned by uid ${uid} and writable only by it (it holds the agent's node binary)`,
    );
  const version = createHash("sha256")
    .update(`${source}\0${sourceStats.size}\0${sourceStats.mtimeMs}\0${sourceStats.ino}`)
    .digest("hex")
    .slice(0, 16);
  const target = join(parent, `node-${version}`);
  const existing = await lstat(target).catch(() => undefined);
  if (
    existing?.isFile() &&
    existing.uid === uid &&
    (existing.mode & 0o7777) === EXECUTE_ONLY &&
    existing.size === sourceStats.size
  )
    return target;
  const partial = `${target}.${randomUUID()}.partial`;
  try {
    await copyFile(source, partial);
    await chmod(partial, EXECUTE_ONLY);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true }).catch(() => undefined);
    throw new SandboxError(
      "sandbox_unavailable",
      `cannot prepare the agent's node binary: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  return target;
}

let hasCheckedDumpable = false;

/** With fs.suid_dumpable = 1 the kernel leaves the agent dumpable: say so once. */
async function warnWhenDumpableIsForced(log: (line: string) => void): Promise<void> {
  if (hasCheckedDumpable) return;
  hasCheckedDumpable = true;
  const value = await readFile("/proc/sys/fs/suid_dumpable", "utf8").catch(() => "");
  if (value.trim() === "1")
    log(
      "outrig sandboxes: fs.suid_dumpable is 1, so commands in a sandbox can reach its agent's descriptors; set it to 0 (sysctl -w fs.suid_dumpable=0)",
    );
}
