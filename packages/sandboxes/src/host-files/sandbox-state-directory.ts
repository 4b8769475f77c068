/**
 * The layout of a session's sandbox state directory. The directory itself belongs to the host: the
 * pid file of the running sandbox and the server's own markers live there, out of the sandbox's
 * reach. Only its `journal/` subdirectory is bound (writable) into the sandbox, for the agent's
 * exactly-once journal; the host never follows a link or trusts a size in there.
 */
import { lstat, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { ensureHostDirectory, readUntrustedFile, replaceUntrustedFile } from "./untrusted-files.js";

/** The subdirectory of the state directory bound into the sandbox. */
export const SANDBOX_JOURNAL_DIRECTORY = "journal";
/** The agent's journal, inside that subdirectory. */
export const SANDBOX_JOURNAL_FILE = "journal.ndjson";
/** The pid of the outer process of the session's running sandbox (bubblewrap), in the state directory. */
export const SANDBOX_PID_FILE = "sandbox.pid";

/** The host directory bound into the sandbox for its journal. */
export function sandboxJournalDirectory(stateDir: string): string {
  return join(stateDir, SANDBOX_JOURNAL_DIRECTORY);
}

/** The host path of the agent's journal. */
export function sandboxJournalPath(stateDir: string): string {
  return join(stateDir, SANDBOX_JOURNAL_DIRECTORY, SANDBOX_JOURNAL_FILE);
}

/**
 * Creates the state directory and its journal subdirectory and returns the latter. A state
 * directory written by an older version (bound whole into its sandbox) is made safe: its journal is
 * moved into the subdirectory when it is a regular file, and anything the sandbox may have left
 * where host files go (a link as `journal`) is removed, never followed.
 */
export async function prepareSandboxStateDirectory(stateDir: string): Promise<string> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const journalDir = sandboxJournalDirectory(stateDir);
  await ensureHostDirectory(journalDir);
  const legacyJournal = join(stateDir, SANDBOX_JOURNAL_FILE);
  const legacy = await lstat(legacyJournal).catch(() => undefined);
  if (legacy) {
    const current = await lstat(sandboxJournalPath(stateDir)).catch(() => undefined);
    if (legacy.isFile() && !current) await rename(legacyJournal, sandboxJournalPath(stateDir));
    else await rm(legacyJournal, { force: true, recursive: legacy.isDirectory() });
  }
  return journalDir;
}

/** Records the pid of the session's sandbox, replacing (never writing through) what is there. */
export async function writeSandboxPidFile(stateDir: string, pid: number): Promise<void> {
  await replaceUntrustedFile(join(stateDir, SANDBOX_PID_FILE), `${pid}\n`);
}

/** The pid recorded in the state directory; undefined when none, or the file is not a small regular file. */
export async function readSandboxPidFile(stateDir: string): Promise<number | undefined> {
  const text = await readUntrustedFile(join(stateDir, SANDBOX_PID_FILE), 32).catch(() => undefined);
  if (text === undefined) return undefined;
  const pid = Number.parseInt(text.toString("utf8"), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
