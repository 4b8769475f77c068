/** Error classes sorted by who must act. Model mistakes are never exceptions: they become tool results. */

export interface AppErrorOptions {
  readonly retryable?: boolean;
  readonly cause?: unknown;
}

export class AppError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** The operator must fix configuration. */
export class ConfigError extends AppError {}

/** The API client sent something invalid (maps to a 4xx). */
export class InputError extends AppError {
  readonly status: number;
  constructor(code: string, message: string, status = 400, options: AppErrorOptions = {}) {
    super(code, message, options);
    this.status = status;
  }
}

/** The upstream model API failed. Retryable is derived from the HTTP status. */
export class ProviderError extends AppError {
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    code: string,
    message: string,
    options: AppErrorOptions & { status?: number; requestId?: string; retryAfterMs?: number } = {},
  ) {
    super(code, message, {
      retryable: options.retryable ?? isRetryableStatus(options.status),
      cause: options.cause,
    });
    this.status = options.status;
    this.requestId = options.requestId;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export class SandboxError extends AppError {}
export class StorageError extends AppError {}
/** Our own bug. */
export class InvariantError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super("invariant_violated", message, options);
  }
}

export function isRetryableStatus(status: number | undefined): boolean {
  if (status === undefined) return false;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Turns any thrown value into an Error so it can be inspected safely. */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === "string" ? value : JSON.stringify(value));
}

export function assertNever(value: never): never {
  throw new InvariantError(`unexpected value: ${JSON.stringify(value)}`);
}
