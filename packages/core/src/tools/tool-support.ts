/**
 * Shared plumbing for the built-in tools: input validation in Claude Code's words, the
 * `<tool_use_error>` wrapper, and the guarantee that nothing a model sends throws out of `execute`.
 */
import type { z } from "zod";
import { ensureError } from "../errors/app-error.js";
import { isFileError } from "../sandbox/sandbox-errors.js";
import { normalizePath } from "../vfs/create-mount-table.js";
import type { Tool, ToolContext, ToolResult } from "./tool.js";

/** An error result wrapped the way Claude Code wraps validation failures. */
export function toolUseError(message: string): ToolResult {
  return { output: `<tool_use_error>${message}</tool_use_error>`, isError: true };
}

/** An error result without the wrapper (Claude Code sends exceptions thrown while running a tool as bare text). */
export function plainError(message: string): ToolResult {
  return { output: message, isError: true };
}

export function success(output: string): ToolResult {
  return { output, isError: false };
}

/** Thrown inside a tool body to end it with a given result; caught by `defineTool`. */
export class ToolFailure extends Error {
  readonly result: ToolResult;
  constructor(result: ToolResult) {
    super(result.output);
    this.result = result;
  }
}

/** Normalizes a model-supplied absolute path, or fails with a model-facing message. */
export function requireAbsolutePath(path: string, parameter = "file_path"): string {
  if (path.includes("\0"))
    throw new ToolFailure(toolUseError(`The ${parameter} must not contain NUL bytes.`));
  if (!path.startsWith("/")) {
    throw new ToolFailure(
      toolUseError(`The ${parameter} must be an absolute path, not a relative path: ${path.slice(0, 200)}`),
    );
  }
  try {
    return normalizePath(path);
  } catch (error) {
    throw new ToolFailure(toolUseError(ensureError(error).message));
  }
}

/** Claude Code 2.1's text for a missing file. */
export function fileDoesNotExist(cwd: string): string {
  return `File does not exist. Note: your current working directory is ${cwd}.`;
}

/**
 * Turns a file-system failure into the text the model sees. `FileError.path` is relative to its mount, so
 * it is left out: the model only knows the absolute path it sent.
 */
export function fileErrorResult(error: unknown, cwd: string): ToolResult {
  if (isFileError(error)) {
    switch (error.code) {
      case "not_found":
        return plainError(fileDoesNotExist(cwd));
      case "is_directory":
        return plainError("EISDIR: illegal operation on a directory, read");
      case "not_directory":
        return plainError("ENOTDIR: not a directory (a parent of the path is a file)");
      // Backends other than the sandbox explain why (e.g. "only org admins can change /skills"): keep that.
      case "permission_denied":
        return plainError(`EACCES: permission denied. ${error.message}`);
      case "read_only":
        return plainError(`EROFS: read-only file system. ${error.message}`);
      case "conflict":
        return toolUseError(error.message);
      case "too_large":
        return plainError("File is too large to read.");
      case "invalid_path":
        return toolUseError(error.message);
      case "io_error":
        return plainError(`Error: ${error.message}`);
    }
  }
  if (error instanceof ToolFailure) return error.result;
  return plainError(`Error: ${ensureError(error).message}`);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * Formats a zod failure as Claude Code's InputValidationError text, one line per issue:
 * missing parameters, wrong types and unexpected parameters get its wording; other issues keep zod's message.
 */
export function formatInputValidationError(toolName: string, error: z.ZodError, input: unknown): string {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const name = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) lines.push(`An unexpected parameter \`${key}\` was provided`);
    } else if (issue.code === "invalid_type" && issue.path.length === 0) {
      lines.push(
        `The tool input is expected as \`${issue.expected}\` but provided as \`${describeType(input)}\``,
      );
    } else if (issue.code === "invalid_type") {
      const value = valueAt(input, issue.path);
      if (value === undefined) lines.push(`The required parameter \`${name}\` is missing`);
      else {
        lines.push(
          `The parameter \`${name}\` type is expected as \`${issue.expected}\` but provided as \`${describeType(value)}\``,
        );
      }
    } else {
      lines.push(`The parameter \`${name}\` is invalid: ${issue.message}`);
    }
  }
  const heading = lines.length === 1 ? "issue" : "issues";
  return `<tool_use_error>InputValidationError: ${toolName} failed due to the following ${heading}:\n${lines.join("\n")}</tool_use_error>`;
}

export interface ToolSpec<Schema extends z.ZodType> {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Schema;
  run(input: z.output<Schema>, context: ToolContext): Promise<ToolResult>;
}

/**
 * Builds a Tool whose `execute` validates its input again (so it is safe to call with anything) and
 * never throws: validation failures, file errors and unexpected exceptions all become `isError` results.
 */
export function defineTool<Schema extends z.ZodType>(spec: ToolSpec<Schema>): Tool<z.output<Schema>> {
  return {
    name: spec.name,
    description: spec.description,
    // A schema always satisfies ZodType of its own output; TypeScript cannot see it through the generic.
    inputSchema: spec.inputSchema as unknown as z.ZodType<z.output<Schema>>,
    async execute(input: unknown, context: ToolContext): Promise<ToolResult> {
      const parsed = spec.inputSchema.safeParse(input);
      if (!parsed.success) {
        return { output: formatInputValidationError(spec.name, parsed.error, input), isError: true };
      }
      try {
        return await spec.run(parsed.data, context);
      } catch (error) {
        return fileErrorResult(error, context.cwd);
      }
    },
  };
}

/** Shortens text the way Claude Code shortens long tool output: a head and a count of dropped lines. */
export function truncateOutput(text: string, maxChars = 30_000): string {
  if (text.length <= maxChars) return text;
  const kept = text.slice(0, maxChars);
  const droppedLines = text.slice(maxChars).split("\n").length;
  return `${kept}\n\n... [${droppedLines} lines truncated] ...`;
}
