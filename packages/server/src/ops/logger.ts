/**
 * The server's structured log: one line per record, JSON when the output is not a terminal (for
 * collectors), readable text on a terminal. Records carry fields, never secrets or bodies.
 */
import type { Writable } from "node:stream";
import { z } from "zod";

export const LogLevel = z.enum(["debug", "info", "warn", "error", "silent"]);
export type LogLevel = z.infer<typeof LogLevel>;
export const LogFormat = z.enum(["json", "text"]);
export type LogFormat = z.infer<typeof LogFormat>;

/** Field values a record may carry; `undefined` fields are left out. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  /** True when a record of this level would be written (to skip building fields for nothing). */
  isEnabled(level: Exclude<LogLevel, "silent">): boolean;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  /** Records below this level are dropped; `silent` drops everything. Default `info`. */
  readonly level?: LogLevel;
  /** Default: `text` when `destination` is a terminal, else `json`. */
  readonly format?: LogFormat;
  /** Default: process.stderr (stdout carries the bootstrap key that scripts capture). */
  readonly destination?: Writable & { isTTY?: boolean };
  readonly clock?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Builds a logger; writing never throws (a closed destination loses the record, not the request). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const format = options.format ?? (destination.isTTY ? "text" : "json");
  const threshold = RANK[options.level ?? "info"];
  const clock = options.clock ?? (() => new Date());
  const write = (level: Exclude<LogLevel, "silent">, message: string, fields?: LogFields) => {
    if (RANK[level] < threshold) return;
    const time = clock();
    const line =
      format === "json" ? jsonLine(time, level, message, fields) : textLine(time, level, message, fields);
    try {
      destination.write(line);
    } catch {
      // A destination that went away (EPIPE) must not take the server with it.
    }
  };
  return {
    isEnabled: (level) => RANK[level] >= threshold,
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}

function jsonLine(time: Date, level: string, message: string, fields: LogFields | undefined): string {
  const record: Record<string, unknown> = { time: time.toISOString(), level, msg: message };
  for (const [key, value] of Object.entries(fields ?? {})) if (value !== undefined) record[key] = value;
  return `${JSON.stringify(record)}\n`;
}

function textLine(time: Date, level: string, message: string, fields: LogFields | undefined): string {
  const parts = [time.toISOString().slice(11, 23), level.toUpperCase().padEnd(5), message];
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    const text = String(value);
    parts.push(`${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return `${parts.join(" ")}\n`;
}
