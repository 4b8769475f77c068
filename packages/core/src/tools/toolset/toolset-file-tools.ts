/**
 * `read`, `write`, `edit`, `glob` and `grep` of the agent toolset: the toolset's names, input schemas and
 * result texts in front of the shared file tools (Read, Write, Edit, Glob, Grep), so the read-before-write
 * rule, the file-state tracking, the size caps and the regex worker's time budget are the same code.
 */
import { z } from "zod";
import { createEditTool } from "../edit-tool.js";
import { createGlobTool } from "../glob-tool.js";
import { createGrepTool } from "../grep-tool.js";
import { createReadTool } from "../read-tool.js";
import type { Tool } from "../tool.js";
import { success } from "../tool-support.js";
import { createWriteTool } from "../write-tool.js";
import { absolutePath, defineToolsetTool, toolsetError } from "./toolset-results.js";

/** Paths glob shows at most (the SDK's toolset shows 200). */
export const TOOLSET_GLOB_MAX_RESULTS = 200;

export interface ToolsetFileToolOptions {
  /** Matching time one glob or grep call may spend (in a worker thread). */
  readonly regexBudgetMs?: number;
}

const readSchema = z.strictObject({
  file_path: z.string(),
  view_range: z.array(z.number().int()).optional(),
});

const LINE_NUMBER = /^\d+\t/;

export function createToolsetReadTool(): Tool<z.output<typeof readSchema>> {
  const read = createReadTool({ defaultLimit: Number.POSITIVE_INFINITY });
  return defineToolsetTool({
    name: "read",
    description:
      "Reads a UTF-8 text file of the session's file system (a path relative to /workspace, or absolute) and " +
      "returns its text. view_range [start_line, end_line] (1-based, inclusive; end_line 0 or negative: to the " +
      "end) reads part of it; a whole file over 256 KB must be read in parts. Binary files are refused. A file " +
      "must be read before write or edit may change it.",
    inputSchema: readSchema,
    async run(input, context) {
      const range = input.view_range ?? [];
      if (range.length !== 0 && range.length !== 2)
        return toolsetError("read", "view_range must be [start_line, end_line]");
      const [start, end] = range;
      let slice: { offset?: number; limit?: number } = {};
      if (start !== undefined && end !== undefined) {
        if (end > 0 && end < start) return success("");
        slice = { offset: Math.max(1, start), ...(end > 0 ? { limit: end - Math.max(1, start) + 1 } : {}) };
      }
      const result = await read.execute(
        { file_path: absolutePath(input.file_path, context.cwd), ...slice },
        context,
      );
      if (result.isError) {
        return {
          output: result.output.replace(
            /Use offset and limit parameters to read specific portions of the file/,
            "Use view_range to read specific line ranges, e.g. view_range: [1, 500]",
          ),
          isError: true,
        };
      }
      if (result.output.startsWith("<system-reminder>Warning: the file exists but the contents are empty."))
        return success("");
      if (result.output.startsWith("<system-reminder>"))
        return success(result.output.replace(/<\/?system-reminder>/g, ""));
      return success(
        result.output
          .split("\n")
          .map((line) => line.replace(LINE_NUMBER, ""))
          .join("\n"),
      );
    },
  });
}

const writeSchema = z.strictObject({ file_path: z.string(), content: z.string() });

export function createToolsetWriteTool(): Tool<z.output<typeof writeSchema>> {
  const write = createWriteTool();
  return defineToolsetTool({
    name: "write",
    description:
      "Writes a whole UTF-8 text file (a path relative to /workspace, or absolute), creating parent folders. " +
      "Overwriting an existing file requires that it was read with read first and has not changed since; " +
      "prefer edit for changing part of a file.",
    inputSchema: writeSchema,
    async run(input, context) {
      const result = await write.execute(
        { file_path: absolutePath(input.file_path, context.cwd), content: input.content },
        context,
      );
      if (result.isError) return result;
      return success(`wrote ${new TextEncoder().encode(input.content).length} bytes to ${input.file_path}`);
    },
  });
}

const editSchema = z.strictObject({
  file_path: z.string(),
  old_string: z.string(),
  new_string: z.string(),
  replace_all: z.boolean().optional(),
});

/** Counts non-overlapping occurrences, as Edit replaces them. */
function countOccurrences(text: string, needle: string): number {
  return needle === "" ? 0 : text.split(needle).length - 1;
}

export function createToolsetEditTool(): Tool<z.output<typeof editSchema>> {
  const edit = createEditTool();
  return defineToolsetTool({
    name: "edit",
    description:
      "Replaces old_string with new_string in a file (a path relative to /workspace, or absolute) that was " +
      "read with read first. old_string must occur exactly once unless replace_all is true; include " +
      "surrounding lines to make it unique.",
    inputSchema: editSchema,
    async run(input, context) {
      const path = absolutePath(input.file_path, context.cwd);
      // The count for the result text; Edit itself decides whether the edit may happen.
      let count = 1;
      if (input.replace_all === true) {
        const before = await context.fs.read(path).catch(() => undefined);
        if (before !== undefined)
          count = countOccurrences(new TextDecoder().decode(before), input.old_string);
      }
      const result = await edit.execute(
        {
          file_path: path,
          old_string: input.old_string,
          new_string: input.new_string,
          replace_all: input.replace_all ?? false,
        },
        context,
      );
      if (result.isError) return result;
      return success(`edited ${input.file_path} (${Math.max(count, 1)} replacement(s))`);
    },
  });
}

const globSchema = z.strictObject({ pattern: z.string(), path: z.string().optional() });

export function createToolsetGlobTool(
  options: ToolsetFileToolOptions = {},
): Tool<z.output<typeof globSchema>> {
  const glob = createGlobTool({
    ...options,
    order: "newest_first",
    maxResults: TOOLSET_GLOB_MAX_RESULTS,
  });
  return defineToolsetTool({
    name: "glob",
    description:
      "Finds files whose path matches a glob pattern (`**/*.ts`, `src/*.{js,ts}`) below path (relative to " +
      `/workspace or absolute; defaults to /workspace). Returns absolute paths, newest first, at most ${TOOLSET_GLOB_MAX_RESULTS}.`,
    inputSchema: globSchema,
    async run(input, context) {
      const result = await glob.execute(
        {
          pattern: input.pattern,
          ...(input.path === undefined ? {} : { path: absolutePath(input.path, context.cwd) }),
        },
        context,
      );
      if (!result.isError && result.output === "No files found") return success("no matches");
      return result;
    },
  });
}

const grepSchema = z.strictObject({ pattern: z.string(), path: z.string().optional() });

export function createToolsetGrepTool(
  options: ToolsetFileToolOptions = {},
): Tool<z.output<typeof grepSchema>> {
  const grep = createGrepTool(options);
  return defineToolsetTool({
    name: "grep",
    description:
      "Searches file contents for a regular expression (JavaScript syntax, close to ripgrep's) below path (a " +
      "file or folder, relative to /workspace or absolute; defaults to /workspace). Returns matching lines as " +
      "`path:line:text` (`line:text` for a single file). Binary files and .git folders are skipped.",
    inputSchema: grepSchema,
    async run(input, context) {
      const result = await grep.execute(
        {
          pattern: input.pattern,
          output_mode: "content",
          "-n": true,
          ...(input.path === undefined ? {} : { path: absolutePath(input.path, context.cwd) }),
        },
        context,
      );
      if (!result.isError && result.output === "No matches found") return success("no matches");
      return result;
    },
  });
}
