/** Claude Code's read-before-write rule, shared by Write and Edit. */
import type { FileStat } from "../sandbox/sandbox.js";
import type { ToolContext, ToolResult } from "./tool.js";
import { toolUseError } from "./tool-support.js";

export const FILE_STATE_SUFFIX = "(file state is current in your context — no need to Read it back)";

/** Returns an error result when an existing file was not read first or changed since; otherwise undefined. */
export function checkReadBeforeWrite(
  path: string,
  stat: FileStat,
  context: ToolContext,
): ToolResult | undefined {
  const record = context.fileState.get(path);
  if (record === undefined)
    return toolUseError("File has not been read yet. Read it first before writing to it.");
  if (stat.mtimeMs !== record.mtimeMs) {
    return toolUseError(
      "File has been modified since read, either by the user or by a linter. Read it again before attempting to write it.",
    );
  }
  return undefined;
}

/** Writes the file and records its new mtime as read, so the model may edit it again without re-reading. */
export async function writeAndRecord(path: string, content: string, context: ToolContext): Promise<void> {
  await context.fs.write(path, new TextEncoder().encode(content));
  const stat = await context.fs.stat(path);
  if (stat !== null) context.fileState.set(path, { mtimeMs: stat.mtimeMs, isPartial: false });
}
