/**
 * File access for the host (often root) in places a sandbox can reach: its workspace, its journal
 * directory, and state directories an older version bound into it. Nothing here follows a symlink
 * planted by the sandbox, blocks on a FIFO, or reads more than the caller's byte bound; a file that
 * is not what it should be is an error, never something to act through.
 */
import { randomUUID } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { type FileHandle, lstat, mkdir, open, readlink, realpath, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SandboxError } from "@outrig/core";

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/** A file the host refused to use: a symlink, a FIFO or device, or larger than allowed. */
export class UntrustedFileError extends SandboxError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("sandbox_untrusted_file", message, options);
  }
}

/**
 * Opens `path` for reading without following a symlink in its last component and checks it is a
 * regular file. Undefined when it does not exist; rejects with UntrustedFileError for anything else.
 */
async function openRegularFile(path: string): Promise<{ handle: FileHandle; stats: Stats } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new UntrustedFileError(`${path} is a symbolic link`, { cause: error });
    throw error;
  }
  const stats = await handle.stat();
  if (!stats.isFile()) {
    await handle.close();
    throw new UntrustedFileError(`${path} is not a regular file`);
  }
  return { handle, stats };
}

/**
 * Reads at most `maxBytes` of a regular file that a sandbox may have written, never following a
 * symlink in the last component (the caller owns the directories above it). Undefined when the file
 * does not exist; rejects with UntrustedFileError when it is a link, not a regular file, or longer
 * than `maxBytes` (the size is not trusted: at most `maxBytes + 1` bytes are ever read).
 */
export async function readUntrustedFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const opened = await openRegularFile(path);
  if (!opened) return undefined;
  try {
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await opened.handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw new UntrustedFileError(`${path} is larger than ${maxBytes} bytes`);
    return buffer.subarray(0, length);
  } finally {
    await opened.handle.close();
  }
}

/**
 * The first `maxBytes` of a file such as /proc/<pid>/cmdline (whose size is not known up front), never
 * through a symlink; undefined when it is missing or not a regular file.
 */
export async function readFileHead(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const opened = await openRegularFile(path).catch(() => undefined);
  if (!opened) return undefined;
  try {
    const buffer = Buffer.alloc(maxBytes);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await opened.handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } catch {
    return undefined;
  } finally {
    await opened.handle.close();
  }
}

/**
 * Replaces `path` with `data` without writing through whatever is there: a new file is created next
 * to it (exclusively, so never through a link) and renamed over it, which replaces a symlink itself.
 * The directory holding `path` must be one the sandbox cannot replace.
 */
export async function replaceUntrustedFile(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  const handle = await open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(data);
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Appends `data` to a regular file a sandbox can write, creating it when missing; never through a
 * symlink, and never blocking on a FIFO put in its place.
 */
export async function appendUntrustedFile(path: string, data: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENXIO")
      throw new UntrustedFileError(`${path} is not a regular file`, { cause: error });
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) throw new UntrustedFileError(`${path} is not a regular file`);
    await handle.appendFile(data);
  } finally {
    await handle.close();
  }
}

/**
 * Makes `path` a real directory (mode 0700) when it is missing, or a symlink or other file left where
 * it should be (removed first: a link itself, never what it points to). Its parent must be the host's.
 */
export async function ensureHostDirectory(path: string): Promise<void> {
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (stats?.isDirectory()) return;
  if (stats) await rm(path, { force: true });
  await mkdir(path, { mode: 0o700 });
}

/**
 * Opens `relative` (a path inside `root`) for reading only when every component of it is what it
 * claims: no symlink anywhere below `root` is followed, which /proc/self/fd confirms after the open
 * (a directory swapped for a link meanwhile makes the resolved path differ). Undefined when it is
 * missing, not a regular file, or reached through a link. `root` must be a real path.
 */
export async function openFileBeneath(
  root: string,
  relative: string,
): Promise<{ handle: FileHandle; stats: Stats } | undefined> {
  const expected = join(root, relative);
  const opened = await openRegularFile(expected).catch(() => undefined);
  if (!opened) return undefined;
  const resolved = await readlink(`/proc/self/fd/${opened.handle.fd}`).catch(() => undefined);
  if (resolved !== expected) {
    await opened.handle.close();
    return undefined;
  }
  return opened;
}

/** The real path of `directory` (its own symlinks resolved once, by the host, before any use). */
export function realDirectory(directory: string): Promise<string> {
  return realpath(directory);
}
