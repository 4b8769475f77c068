/**
 * Errors a Sandbox or FileSystem raises for a path. `code` is what tools map to model-facing text,
 * so every adapter must use these codes.
 */
import { AppError } from "../errors/app-error.js";

export type FileErrorCode =
  | "not_found"
  | "is_directory"
  | "not_directory"
  | "permission_denied"
  | "read_only"
  | "too_large"
  | "invalid_path"
  | "io_error"
  /** A compare-and-swap write lost: the file changed since this session last read it. */
  | "conflict";

export class FileError extends AppError {
  declare readonly code: FileErrorCode;
  readonly path: string;
  constructor(code: FileErrorCode, path: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.path = path;
  }
}

export function isFileError(value: unknown, code?: FileErrorCode): value is FileError {
  return value instanceof FileError && (code === undefined || value.code === code);
}

const ERRNO_CODES: Readonly<Record<string, FileErrorCode>> = {
  ENOENT: "not_found",
  EISDIR: "is_directory",
  ENOTDIR: "not_directory",
  EACCES: "permission_denied",
  EPERM: "permission_denied",
  EROFS: "read_only",
  EFBIG: "too_large",
  EINVAL: "invalid_path",
  ENAMETOOLONG: "invalid_path",
};

/** The FileError code for an errno name (`ENOENT` → `not_found`); unknown names are `io_error`. */
export function fileErrorCodeOf(errno: string | undefined): FileErrorCode {
  return (errno !== undefined && ERRNO_CODES[errno]) || "io_error";
}
