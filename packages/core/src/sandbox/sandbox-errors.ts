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
