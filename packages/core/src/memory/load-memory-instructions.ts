/** Reads the org's and the user's instruction files (AGENTS.md, else CLAUDE.md) for the start of a session. */
import { isFileError } from "../sandbox/sandbox-errors.js";
import type { FileSystem } from "../vfs/file-system.js";

export const INSTRUCTION_FILE_NAMES = ["AGENTS.md", "CLAUDE.md"] as const;
/** Instruction files above this size are cut, so a runaway memory cannot fill the context. */
export const MAX_INSTRUCTIONS_BYTES = 64 * 1024;

export interface InstructionSource {
  /** Absolute path the text came from. */
  readonly path: string;
  readonly text: string;
  readonly isTruncated: boolean;
}

export interface MemoryInstructions {
  readonly sources: InstructionSource[];
  /** A system-prompt section quoting each file under its path; "" when there are none. */
  readonly prompt: string;
}

async function readFirst(fs: FileSystem, directory: string): Promise<InstructionSource | undefined> {
  for (const name of INSTRUCTION_FILE_NAMES) {
    const path = `${directory}/${name}`;
    let data: Uint8Array;
    try {
      data = await fs.read(path);
    } catch (error) {
      if (isFileError(error, "not_found") || isFileError(error, "is_directory")) continue;
      throw error;
    }
    const isTruncated = data.length > MAX_INSTRUCTIONS_BYTES;
    const text = new TextDecoder().decode(isTruncated ? data.subarray(0, MAX_INSTRUCTIONS_BYTES) : data);
    return { path, text, isTruncated };
  }
  return undefined;
}

/**
 * Loads `<dir>/AGENTS.md` (or `<dir>/CLAUDE.md` when there is no AGENTS.md) for each directory, in order:
 * org first, then the user's own, so the more specific instructions come last. Missing files are skipped;
 * other file errors propagate.
 */
export async function loadMemoryInstructions(
  fs: FileSystem,
  directories: readonly string[] = ["/memories/org", "/memories/me"],
): Promise<MemoryInstructions> {
  const sources: InstructionSource[] = [];
  for (const directory of directories) {
    const source = await readFirst(fs, directory);
    if (source !== undefined && source.text.trim() !== "") sources.push(source);
  }
  if (sources.length === 0) return { sources, prompt: "" };
  const sections = sources.map(
    (source) =>
      `Contents of ${source.path}:\n\n${source.text.trimEnd()}${source.isTruncated ? "\n\n[truncated]" : ""}`,
  );
  return {
    sources,
    prompt: [
      "# Instructions from memory",
      "These instruction files are shared with you at session start. Follow them; the later ones are more specific and win on conflict. Keep them current with Edit when you learn something the team or the user should keep.",
      ...sections,
    ].join("\n\n"),
  };
}
