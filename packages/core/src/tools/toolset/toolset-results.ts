/**
 * Result texts of the agent toolset: errors read `<tool>: <what went wrong>` (as the SDK's own toolset
 * words them), without Claude Code's `<tool_use_error>` wrapper.
 */
import { posix } from "node:path";
import type { z } from "zod";
import type { Tool, ToolContext, ToolResult } from "../tool.js";
import { defineTool } from "../tool-support.js";

/** An error result in the toolset's words. */
export function toolsetError(toolName: string, message: string): ToolResult {
  return { output: `${toolName}: ${message}`, isError: true };
}

/**
 * Drops Claude Code's wrapper from an error result and names the tool; successes pass unchanged. With
 * `isOutputError` false, an error without the wrapper is the tool's own output (a command that failed)
 * and is left as it is.
 */
export function asToolsetError(toolName: string, result: ToolResult, isOutputError = true): ToolResult {
  if (!result.isError) return result;
  const match = /^<tool_use_error>([\s\S]*)<\/tool_use_error>$/.exec(result.output);
  if (match === null && !isOutputError) return result;
  const unwrapped = match?.[1] ?? result.output;
  if (unwrapped.startsWith(`${toolName}: `) || unwrapped.startsWith("InputValidationError: "))
    return { output: unwrapped, isError: true };
  return toolsetError(toolName, unwrapped);
}

/**
 * The toolset takes paths relative to the working directory as well as absolute ones; the shared file
 * tools want them absolute.
 */
export function absolutePath(path: string, cwd: string): string {
  return path.startsWith("/") ? path : posix.join(cwd, path);
}

/**
 * A toolset tool whose input is checked against its own schema (a wrong input is an InputValidationError
 * result naming the toolset's parameters), then translated for a shared tool; every error it returns is
 * in the toolset's words.
 */
export function defineToolsetTool<Schema extends z.ZodType>(spec: {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Schema;
  run(input: z.output<Schema>, context: ToolContext): Promise<ToolResult>;
  /** False when an error result can be the tool's own output (bash: a command's failure), kept as is. */
  readonly isOutputError?: boolean;
}): Tool<z.output<Schema>> {
  const tool = defineTool(spec);
  return {
    ...tool,
    execute: async (input: unknown, context: ToolContext): Promise<ToolResult> =>
      // `execute` validates whatever it is given; its parameter type only documents the parsed input.
      asToolsetError(
        spec.name,
        await tool.execute(input as z.output<Schema>, context),
        spec.isOutputError ?? true,
      ),
  };
}
