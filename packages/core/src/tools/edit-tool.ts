/** Edit: exact string replacement in a file the model has read; unique match unless replace_all. */
import { z } from "zod";
import { checkReadBeforeWrite, FILE_STATE_SUFFIX, writeAndRecord } from "./read-before-write.js";
import type { Tool } from "./tool.js";
import { defineTool, fileDoesNotExist, requireAbsolutePath, success, toolUseError } from "./tool-support.js";

/** Edit loads the whole file; larger files are refused rather than decoded. */
export const EDIT_MAX_BYTES = 10 * 1024 * 1024;

const inputSchema = z.strictObject({
  file_path: z.string(),
  old_string: z.string(),
  new_string: z.string(),
  replace_all: z.boolean().default(false),
});

export type EditInput = z.output<typeof inputSchema>;

/** Counts non-overlapping occurrences of `needle` (non-empty). */
export function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  let from = 0;
  for (;;) {
    const index = haystack.indexOf(needle, from);
    if (index === -1) return count;
    count++;
    from = index + needle.length;
  }
}

export function createEditTool(): Tool<EditInput> {
  return defineTool({
    name: "Edit",
    description:
      "Replaces exact text in a file. file_path must be absolute and the file must have been read with Read " +
      "first. old_string must occur exactly once unless replace_all is true; include surrounding lines to make " +
      "it unique. An empty old_string creates a new file (or fills an empty one) with new_string.",
    inputSchema,
    async run(input, context) {
      const path = requireAbsolutePath(input.file_path);
      if (input.old_string === input.new_string) {
        return toolUseError("No changes to make: old_string and new_string are exactly the same.");
      }
      const stat = await context.fs.stat(path);
      if (stat === null) {
        if (input.old_string !== "") return toolUseError(fileDoesNotExist(context.cwd));
        await writeAndRecord(path, input.new_string, context);
        return success(`The file ${path} has been updated successfully. ${FILE_STATE_SUFFIX}`);
      }
      if (stat.kind === "directory") return toolUseError(`Path is a directory, not a file: ${path}`);
      if (stat.size > EDIT_MAX_BYTES) {
        return toolUseError(
          `File is too large to edit (${stat.size} bytes; the limit is ${EDIT_MAX_BYTES}).`,
        );
      }
      const refusal = checkReadBeforeWrite(path, stat, context);
      if (refusal !== undefined) return refusal;
      const content = new TextDecoder().decode(await context.fs.read(path));
      let updated: string;
      if (input.old_string === "") {
        if (content.trim() !== "") return toolUseError("Cannot create new file - file already exists.");
        updated = input.new_string;
      } else {
        const matches = countOccurrences(content, input.old_string);
        if (matches === 0) {
          return toolUseError(`String to replace not found in file.\nString: ${input.old_string}`);
        }
        if (matches > 1 && !input.replace_all) {
          return toolUseError(
            `Found ${matches} matches of the string to replace, but replace_all is false. To replace all occurrences, set replace_all to true. To replace only one occurrence, please provide more context to uniquely identify the instance.\nString: ${input.old_string}`,
          );
        }
        // split/join and slicing, never String.replace: `$&` and friends in new_string must stay literal.
        if (input.replace_all) updated = content.split(input.old_string).join(input.new_string);
        else {
          const index = content.indexOf(input.old_string);
          updated =
            content.slice(0, index) + input.new_string + content.slice(index + input.old_string.length);
        }
      }
      await writeAndRecord(path, updated, context);
      return success(`The file ${path} has been updated successfully. ${FILE_STATE_SUFFIX}`);
    },
  });
}
