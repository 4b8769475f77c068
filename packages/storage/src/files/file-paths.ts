/** Path rules for database-backed files: absolute, `/`-separated, no `.`/`..`, no NUL or control characters. */
import { FileError } from "@outrig/core";

/** Longest stored path, in UTF-8 bytes. */
export const MAX_FILE_PATH_BYTES = 1024;
/** Longest single path segment, in UTF-8 bytes (as on most disks, so the host mirror can hold it). */
export const MAX_FILE_NAME_BYTES = 255;

function hasControlCharacter(path: string): boolean {
  for (let index = 0; index < path.length; index++) {
    const code = path.charCodeAt(index);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * Validates and normalizes a path inside one namespace: collapses repeated slashes and drops a trailing
 * slash, but never resolves `.` or `..` (they are refused, so a path can never climb out).
 * Throws FileError `invalid_path` with a message naming the rule broken.
 */
export function normalizeFilePath(path: string): string {
  if (typeof path !== "string" || path.length === 0) {
    throw new FileError("invalid_path", String(path), "Path is empty.");
  }
  const shown = path.slice(0, 200);
  if (path.includes("\0")) throw new FileError("invalid_path", shown, "Path contains a NUL byte.");
  if (hasControlCharacter(path)) {
    throw new FileError("invalid_path", shown, "Path contains a control character.");
  }
  if (!path.startsWith("/")) throw new FileError("invalid_path", shown, `Path must be absolute: ${shown}`);
  if (path.includes("\\")) throw new FileError("invalid_path", shown, "Path must not contain a backslash.");
  const parts = path.split("/").filter((part) => part !== "");
  for (const part of parts) {
    if (part === "." || part === "..") {
      throw new FileError("invalid_path", shown, `Path must not contain "${part}" segments: ${shown}`);
    }
    if (Buffer.byteLength(part) > MAX_FILE_NAME_BYTES) {
      throw new FileError(
        "invalid_path",
        shown,
        `A path segment is longer than ${MAX_FILE_NAME_BYTES} bytes: ${part.slice(0, 40)}…`,
      );
    }
  }
  const normalized = `/${parts.join("/")}`;
  if (Buffer.byteLength(normalized) > MAX_FILE_PATH_BYTES) {
    throw new FileError("invalid_path", shown, `Path is longer than ${MAX_FILE_PATH_BYTES} bytes.`);
  }
  return normalized;
}

/** The ancestors of a normalized path, nearest last, "/" excluded: `/a/b/c` → [`/a`, `/a/b`]. */
export function ancestorsOf(path: string): string[] {
  const parts = path.split("/").filter((part) => part !== "");
  const result: string[] = [];
  for (let index = 1; index < parts.length; index++) result.push(`/${parts.slice(0, index).join("/")}`);
  return result;
}

/** The prefix every path under `directory` starts with: "/" for the root, otherwise `directory + "/"`. */
export function directoryPrefix(directory: string): string {
  return directory === "/" ? "/" : `${directory}/`;
}
