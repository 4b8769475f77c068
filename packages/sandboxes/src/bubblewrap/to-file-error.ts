/** Maps errno names reported by the agent to core `FileError` codes. */
import { FileError, type FileErrorCode, fileErrorCodeOf } from "@outrig/core";
import type { AgentRequestError } from "./agent-connection.js";

const DESCRIPTIONS: Readonly<Record<FileErrorCode, string>> = {
  not_found: "no such file or directory",
  is_directory: "is a directory",
  not_directory: "not a directory",
  permission_denied: "permission denied",
  read_only: "read-only file system",
  too_large: "file too large",
  invalid_path: "invalid path",
  io_error: "i/o error",
  conflict: "changed since it was read",
};

/** Builds a FileError whose message names the code and the path, e.g. "not found: /workspace/a". */
export function toFileError(error: AgentRequestError, fallbackPath: string): FileError {
  const code = fileErrorCodeOf(error.body.code);
  const path = error.body.path ?? fallbackPath;
  const detail = code === "io_error" || code === "too_large" ? ` (${error.body.message})` : "";
  return new FileError(code, path, `${DESCRIPTIONS[code]}: ${path}${detail}`, { cause: error });
}
