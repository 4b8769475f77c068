/**
 * Bash: runs one command through `context.exec` in the session's working directory. Each call starts
 * in the working directory again; when a command ends elsewhere the model is told, as Claude Code does.
 */
import { z } from "zod";
import { ensureError } from "../errors/app-error.js";
import type { ExecResult } from "../sandbox/sandbox.js";
import type { Tool, ToolResult } from "./tool.js";
import { defineTool, toolUseError, truncateOutput } from "./tool-support.js";

export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
export const BASH_MAX_TIMEOUT_MS = 600_000;
export const BASH_MAX_OUTPUT_CHARS = 30_000;
/** Per stream, what the sandbox keeps before dropping output. */
export const BASH_MAX_OUTPUT_BYTES = 1024 * 1024;

const CWD_MARKER = "__outrig_final_cwd_5f1c__";

const inputSchema = z.strictObject({
  command: z.string(),
  timeout: z.number().optional(),
  description: z.string().optional(),
  run_in_background: z.boolean().optional(),
  dangerouslyDisableSandbox: z.boolean().optional(),
});

export type BashInput = z.output<typeof inputSchema>;

/** The script we run: an EXIT trap reports the final directory on stdout after the command's own output. */
export function wrapCommand(command: string): string {
  // Same line as the command, so bash's "line N" in error messages matches the model's own numbering.
  return `trap 'printf "\\n%s%s\\n" "${CWD_MARKER}" "$PWD"' EXIT; ${command}`;
}

/** Splits the trailer written by `wrapCommand` off stdout. */
export function splitFinalCwd(stdout: string): { stdout: string; finalCwd: string | undefined } {
  const index = stdout.lastIndexOf(`\n${CWD_MARKER}`);
  if (index === -1) return { stdout, finalCwd: undefined };
  const finalCwd = stdout.slice(index + CWD_MARKER.length + 1).replace(/\n$/, "");
  return { stdout: stdout.slice(0, index), finalCwd };
}

function tidy(text: string): string {
  return text.replace(/^(?:[ \t]*\n)+/, "").trimEnd();
}

/** A call's timeout in ms: the default when absent or not positive, at most the maximum. */
export function resolveTimeout(timeout: number | undefined): number {
  if (timeout === undefined || !Number.isFinite(timeout) || timeout <= 0) return BASH_DEFAULT_TIMEOUT_MS;
  return Math.min(Math.floor(timeout), BASH_MAX_TIMEOUT_MS);
}

/** One line naming the limit that stopped the command: the call's own, or a lower one that applied. */
function describeTimeout(requestedMs: number, timeLimit: ExecResult["timeLimit"]): string {
  if (timeLimit === undefined || timeLimit.ms >= requestedMs)
    return `Command timed out after ${requestedMs} ms`;
  return `Command timed out after ${timeLimit.ms} ms, ${timeLimit.source} (the call asked for ${requestedMs} ms)`;
}

export function createBashTool(): Tool<BashInput> {
  return defineTool({
    name: "Bash",
    description:
      "Runs a shell command in the session's sandbox, starting in the working directory (/workspace) each " +
      "time; a `cd` does not carry over to the next call. Returns stdout and stderr; a non-zero exit is " +
      "reported as `Exit code N` and marks the result as an error. timeout is in milliseconds (default 120000, " +
      "max 600000). Output longer than 30000 characters is cut. run_in_background is not supported.",
    inputSchema,
    async run(input, context) {
      if (input.run_in_background === true) {
        return toolUseError(
          "run_in_background is not supported here. Run the command in the foreground with a timeout (at most 600000 ms), or start it with nohup/& and redirect its output to a file.",
        );
      }
      if (input.command.trim() === "") return toolUseError("The command is empty.");
      const timeoutMs = resolveTimeout(input.timeout);
      let result: Awaited<ReturnType<typeof context.exec>>;
      try {
        result = await context.exec(
          {
            command: wrapCommand(input.command),
            cwd: context.cwd,
            timeoutMs,
            maxOutputBytes: BASH_MAX_OUTPUT_BYTES,
          },
          context.signal,
        );
      } catch (error) {
        return toolUseError(`Error: the command could not be run: ${ensureError(error).message}`);
      }
      const { stdout, finalCwd } = splitFinalCwd(result.stdout);
      const notes =
        finalCwd !== undefined && finalCwd !== context.cwd ? [`Shell cwd was reset to ${context.cwd}`] : [];
      return formatBashResult({ ...result, stdout }, timeoutMs, notes);
    },
  });
}

/**
 * The text the model sees for a finished command, as Claude Code shows it: `Exit code N` first for a
 * non-zero exit, then stdout and stderr, then the timeout or signal, a note on dropped output and
 * `notes`; cut to BASH_MAX_OUTPUT_CHARS. A non-zero exit or a timeout marks the result as an error.
 */
export function formatBashResult(
  result: ExecResult,
  timeoutMs: number,
  notes: readonly string[] = [],
): ToolResult {
  const parts: string[] = [];
  const isFailure = result.isTimedOut || result.exitCode !== 0;
  if (!result.isTimedOut && result.exitCode !== null && result.exitCode !== 0) {
    parts.push(`Exit code ${result.exitCode}`);
  }
  for (const stream of [result.stdout, result.stderr]) {
    const text = tidy(stream);
    if (text !== "") parts.push(text);
  }
  if (result.isTimedOut) parts.push(describeTimeout(timeoutMs, result.timeLimit));
  else if (result.exitCode === null) {
    parts.push(`Command was terminated by signal ${result.signal ?? "unknown"}`);
  }
  if (result.isTruncated) {
    parts.push(`(Output beyond ${BASH_MAX_OUTPUT_BYTES} bytes per stream was dropped.)`);
  }
  parts.push(...notes);
  const text = parts.join("\n");
  return {
    output: text === "" ? "Tool ran without output or errors" : truncateOutput(text, BASH_MAX_OUTPUT_CHARS),
    isError: isFailure,
  };
}
