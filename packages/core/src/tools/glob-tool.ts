/** Glob: file paths matching a pattern, oldest modification first (as Claude Code 2.0 sorts them). */
import { z } from "zod";
import { globToRegExp, staticPrefix } from "./glob-pattern.js";
import { RegexBudgetError, RegexWorker } from "./regex-worker.js";
import type { Tool } from "./tool.js";
import { defineTool, requireAbsolutePath, success, toolUseError } from "./tool-support.js";
import { walkFiles } from "./walk-files.js";

export const GLOB_MAX_RESULTS = 100;

const inputSchema = z.strictObject({
  pattern: z.string(),
  path: z.string().optional(),
});

export type GlobInput = z.output<typeof inputSchema>;

export interface GlobToolOptions {
  /** Matching time one call may spend (in a worker thread); defaults to DEFAULT_REGEX_BUDGET_MS. */
  readonly regexBudgetMs?: number;
  /** `oldest_first` (Claude Code's order, the default) or `newest_first` (the agent toolset's). */
  readonly order?: "oldest_first" | "newest_first";
  /** Paths shown at most; defaults to GLOB_MAX_RESULTS. */
  readonly maxResults?: number;
}

export function createGlobTool(options: GlobToolOptions = {}): Tool<GlobInput> {
  return defineTool({
    name: "Glob",
    description:
      "Finds files by name pattern (`**/*.ts`, `src/*.{js,ts}`, `[a-c]?.md`) below path (absolute; defaults " +
      "to the working directory). Returns absolute paths, least recently modified first, at most 100.",
    inputSchema,
    async run(input, context) {
      if (input.pattern === "") return toolUseError("The pattern must not be empty.");
      let root = requireAbsolutePath(input.path ?? context.cwd, "path");
      let pattern = input.pattern;
      if (pattern.startsWith("/")) {
        // An absolute pattern names its own root: walk from its literal prefix.
        const prefix = staticPrefix(pattern) || "/";
        root = requireAbsolutePath(prefix, "pattern");
        pattern = pattern.slice(prefix === "/" ? 1 : prefix.length + 1);
      }
      const stat = await context.fs.stat(root);
      if (stat === null) return toolUseError(`Directory does not exist: ${root}`);
      if (stat.kind !== "directory") return toolUseError(`Path is not a directory: ${root}`);
      // A glob compiles to a regular expression (`*a*a*a*b` backtracks on a long name): match in the worker.
      const matcher = globToRegExp(pattern);
      const files = await walkFiles(context.fs, root);
      const worker = new RegexWorker(options.regexBudgetMs);
      let isMatch: boolean[];
      try {
        isMatch = await worker.testEach(
          { source: matcher.source, flags: matcher.flags },
          files.map((file) => file.relativePath),
        );
      } catch (error) {
        if (error instanceof RegexBudgetError) return toolUseError(error.message);
        throw error;
      } finally {
        worker.close();
      }
      const direction = options.order === "newest_first" ? -1 : 1;
      const matches = files
        .filter((_file, index) => isMatch[index])
        .sort((a, b) => direction * (a.mtimeMs - b.mtimeMs) || a.absolutePath.localeCompare(b.absolutePath));
      if (matches.length === 0) return success("No files found");
      const maxResults = options.maxResults ?? GLOB_MAX_RESULTS;
      const shown = matches.slice(0, maxResults).map((file) => file.absolutePath);
      if (matches.length > maxResults) {
        shown.push("(Results are truncated. Consider using a more specific path or pattern.)");
      }
      return success(shown.join("\n"));
    },
  });
}
