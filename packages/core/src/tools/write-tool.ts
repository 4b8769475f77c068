/** Write: creates or overwrites a whole file; overwriting needs a prior, still-current Read. */
import { z } from "zod";
import { checkReadBeforeWrite, FILE_STATE_SUFFIX, writeAndRecord } from "./read-before-write.js";
import type { Tool } from "./tool.js";
import { defineTool, requireAbsolutePath, success, toolUseError } from "./tool-support.js";

const inputSchema = z.strictObject({
  file_path: z.string(),
  content: z.string(),
});

export type WriteInput = z.output<typeof inputSchema>;

export function createWriteTool(): Tool<WriteInput> {
  return defineTool({
    name: "Write",
    description:
      "Writes a file to the session's file system, creating parent folders as needed. file_path must be " +
      "absolute. Overwriting an existing file requires that it was read with Read first and has not changed " +
      "since. Prefer Edit for changing part of an existing file.",
    inputSchema,
    async run(input, context) {
      const path = requireAbsolutePath(input.file_path);
      const stat = await context.fs.stat(path);
      if (stat?.kind === "directory") {
        return toolUseError(`Path is a directory, not a file: ${path}`);
      }
      if (stat !== null) {
        const refusal = checkReadBeforeWrite(path, stat, context);
        if (refusal !== undefined) return refusal;
      }
      await writeAndRecord(path, input.content, context);
      if (stat === null) return success(`File created successfully at: ${path} ${FILE_STATE_SUFFIX}`);
      return success(`The file ${path} has been updated successfully. ${FILE_STATE_SUFFIX}`);
    },
  });
}
