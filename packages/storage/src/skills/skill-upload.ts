/**
 * How the Skills API's upload maps onto a skill folder: every part's filename is a path inside one
 * top-level directory (`my-skill/SKILL.md`, `my-skill/scripts/run.sh`), with SKILL.md at its root. A
 * bare `SKILL.md` (no directory) is accepted too. Pure; no I/O.
 */
import { InputError, type SkillFile } from "@outrig/core";

/** The most files one upload may hold. */
export const MAX_SKILL_UPLOAD_FILES = 500;

export interface UploadedSkillFile {
  /** The part's filename as sent: a `/`-separated path. */
  readonly filename: string;
  readonly content: Uint8Array;
}

export interface SkillUpload {
  /** The shared top-level directory, when the files had one. */
  readonly directoryName?: string;
  /** Paths relative to that directory. */
  readonly files: SkillFile[];
}

/**
 * Strips the shared top-level directory. Throws InputError `skill_invalid` (400) for no files, too many,
 * a path that escapes (absolute, `..`, `.`, empty segments, backslashes, NUL), files in different
 * top-level directories, or the same path twice. Multipart carries no file modes: `executableFiles`
 * (Outrig's `executable_files[]` field, the uploaded names of the executable files) decides when
 * given; otherwise files under `scripts/` and files starting with `#!` are executable.
 */
export function toSkillUpload(
  uploaded: readonly UploadedSkillFile[],
  executableFiles?: ReadonlySet<string>,
): SkillUpload {
  if (uploaded.length === 0) throw invalid("no files were uploaded (send them as files[] parts)");
  if (uploaded.length > MAX_SKILL_UPLOAD_FILES) {
    throw invalid(`at most ${MAX_SKILL_UPLOAD_FILES} files may be uploaded (got ${uploaded.length})`);
  }
  const split = uploaded.map((file) => {
    const name = file.filename;
    if (
      name === "" ||
      name.startsWith("/") ||
      name.includes("\\") ||
      name.includes("\0") ||
      name.split("/").some((part) => part === "" || part === "." || part === "..")
    ) {
      throw invalid(
        `file name ${JSON.stringify(name.slice(0, 200))} must be a relative "/"-separated path without ".", ".." or empty segments`,
      );
    }
    return { name, segments: name.split("/"), content: file.content };
  });
  const hasDirectory = split.every((file) => file.segments.length > 1);
  const directories = new Set(split.map((file) => (file.segments.length > 1 ? file.segments[0] : "")));
  if (!hasDirectory && directories.size > 1) {
    throw invalid("all files must be in the same top-level directory, with SKILL.md at its root");
  }
  if (hasDirectory && directories.size > 1) {
    throw invalid(
      `all files must be in the same top-level directory (got ${[...directories].slice(0, 5).join(", ")})`,
    );
  }
  const files: SkillFile[] = [];
  const seen = new Set<string>();
  for (const file of split) {
    const path = (hasDirectory ? file.segments.slice(1) : file.segments).join("/");
    if (seen.has(path)) throw invalid(`the file ${JSON.stringify(path.slice(0, 200))} was uploaded twice`);
    seen.add(path);
    const isExecutable =
      executableFiles === undefined
        ? path.startsWith("scripts/") || startsWithShebang(file.content)
        : executableFiles.has(file.name);
    files.push({ path, content: file.content, ...(isExecutable ? { isExecutable: true } : {}) });
  }
  const directoryName = hasDirectory ? (split[0]?.segments[0] as string) : undefined;
  return { ...(directoryName === undefined ? {} : { directoryName }), files };
}

function startsWithShebang(content: Uint8Array): boolean {
  return content[0] === 0x23 && content[1] === 0x21;
}

function invalid(reason: string): InputError {
  return new InputError("skill_invalid", `Invalid skill: ${reason}`, 400);
}
