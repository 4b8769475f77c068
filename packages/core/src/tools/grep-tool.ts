/**
 * Grep: ripgrep-like search over the session file system with JS regular expressions. Output modes and
 * texts follow Claude Code 2.0's Grep tool (absolute paths, `path:N:line`, "Found N files").
 * Unlike ripgrep, .gitignore files are not honoured; version-control folders and binary files are skipped.
 */
import { z } from "zod";
import { globToRegExp } from "./glob-pattern.js";
import { RegexBudgetError, type RegexSpec, RegexWorker } from "./regex-worker.js";
import type { Tool, ToolContext } from "./tool.js";
import { defineTool, requireAbsolutePath, success, toolUseError, truncateOutput } from "./tool-support.js";
import { type WalkedFile, walkFiles } from "./walk-files.js";

export const GREP_MAX_FILE_BYTES = 10 * 1024 * 1024;
export const GREP_MAX_OUTPUT_CHARS = 30_000;

/** A subset of ripgrep's `--type` names. */
export const GREP_FILE_TYPES: Readonly<Record<string, readonly string[]>> = {
  c: ["c", "h"],
  cpp: ["cpp", "cc", "cxx", "c++", "hpp", "hh", "hxx", "h", "inl"],
  cs: ["cs"],
  css: ["css", "scss", "sass", "less"],
  dart: ["dart"],
  go: ["go"],
  html: ["html", "htm", "xhtml"],
  java: ["java"],
  js: ["js", "jsx", "mjs", "cjs", "vue"],
  json: ["json", "jsonl", "json5"],
  kotlin: ["kt", "kts"],
  lua: ["lua"],
  md: ["md", "markdown", "mdx", "mkd"],
  markdown: ["md", "markdown", "mdx", "mkd"],
  php: ["php", "phtml"],
  py: ["py", "pyi", "pyw"],
  r: ["r", "R", "rmd", "Rmd"],
  rb: ["rb", "gemspec", "rake"],
  ruby: ["rb", "gemspec", "rake"],
  rust: ["rs"],
  scala: ["scala", "sc", "sbt"],
  sh: ["sh", "bash", "zsh", "ksh", "fish"],
  sql: ["sql"],
  svelte: ["svelte"],
  swift: ["swift"],
  toml: ["toml"],
  ts: ["ts", "tsx", "mts", "cts"],
  txt: ["txt"],
  vue: ["vue"],
  xml: ["xml", "xsd", "xsl", "svg"],
  yaml: ["yaml", "yml"],
};

const inputSchema = z.strictObject({
  pattern: z.string(),
  path: z.string().optional(),
  glob: z.string().optional(),
  output_mode: z.enum(["content", "files_with_matches", "count"]).optional(),
  "-B": z.number().optional(),
  "-A": z.number().optional(),
  "-C": z.number().optional(),
  "-n": z.boolean().optional(),
  "-i": z.boolean().optional(),
  type: z.string().optional(),
  head_limit: z.number().optional(),
  multiline: z.boolean().optional(),
});

export type GrepInput = z.output<typeof inputSchema>;

interface FileMatch {
  readonly file: WalkedFile;
  readonly lines: readonly string[];
  /** 0-based indices of matching lines, ascending. */
  readonly matchingLines: readonly number[];
}

function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return count === 1 ? singular : pluralForm;
}

function nonNegativeInteger(value: number | undefined): number {
  return value === undefined || !Number.isFinite(value) || value < 0 ? 0 : Math.floor(value);
}

/** The files that pass `glob` (matched in the worker: a glob compiles to a regular expression too). */
async function filterByGlob(
  files: readonly WalkedFile[],
  glob: string | undefined,
  worker: RegexWorker,
): Promise<WalkedFile[]> {
  if (glob === undefined || glob.trim() === "") return [...files];
  const isKept = files.map(() => false);
  for (const pattern of glob.trim().split(/\s+/)) {
    const regex = globToRegExp(pattern);
    // Like ripgrep: a glob without a slash matches the file name anywhere in the tree.
    const subjects = files.map((file) =>
      pattern.includes("/")
        ? file.relativePath
        : file.relativePath.slice(file.relativePath.lastIndexOf("/") + 1),
    );
    const matched = await worker.testEach({ source: regex.source, flags: regex.flags }, subjects);
    matched.forEach((isMatch, index) => {
      if (isMatch) isKept[index] = true;
    });
  }
  return files.filter((_file, index) => isKept[index]);
}

function buildFileFilter(input: GrepInput): ((file: WalkedFile) => boolean) | string {
  const filters: ((file: WalkedFile) => boolean)[] = [];
  if (input.type !== undefined) {
    const extensions = GREP_FILE_TYPES[input.type];
    if (extensions === undefined) return `unrecognized file type: ${input.type}`;
    filters.push((file) => {
      const name = file.relativePath.slice(file.relativePath.lastIndexOf("/") + 1);
      const dot = name.lastIndexOf(".");
      return dot > 0 && extensions.includes(name.slice(dot + 1));
    });
  }
  return (file) => filters.every((filter) => filter(file));
}

function isBinary(data: Uint8Array): boolean {
  const end = Math.min(data.length, 8192);
  for (let index = 0; index < end; index++) if (data[index] === 0) return true;
  return false;
}

function formatContent(matches: readonly FileMatch[], input: GrepInput, showPath: boolean): string[] {
  const context = nonNegativeInteger(input["-C"]);
  const before = input["-B"] === undefined ? context : nonNegativeInteger(input["-B"]);
  const after = input["-A"] === undefined ? context : nonNegativeInteger(input["-A"]);
  const showNumbers = input["-n"] ?? true;
  const hasContext = before > 0 || after > 0;
  const output: string[] = [];
  for (const { file, lines, matchingLines } of matches) {
    const isMatch = new Set(matchingLines);
    const shown = new Set<number>();
    for (const line of matchingLines) {
      for (
        let index = Math.max(0, line - before);
        index <= Math.min(lines.length - 1, line + after);
        index++
      ) {
        shown.add(index);
      }
    }
    let previous: number | undefined;
    for (const index of [...shown].sort((a, b) => a - b)) {
      if (hasContext && output.length > 0 && (previous === undefined || index > previous + 1))
        output.push("--");
      const separator = isMatch.has(index) ? ":" : "-";
      const prefix =
        (showPath ? `${file.absolutePath}${separator}` : "") +
        (showNumbers ? `${index + 1}${separator}` : "");
      output.push(`${prefix}${lines[index]}`);
      previous = index;
    }
  }
  return output;
}

async function searchFiles(
  files: readonly WalkedFile[],
  spec: RegexSpec,
  multiline: boolean,
  context: ToolContext,
  worker: RegexWorker,
): Promise<FileMatch[]> {
  const results: FileMatch[] = [];
  for (const file of files) {
    if (context.signal.aborted) break;
    if (file.size > GREP_MAX_FILE_BYTES) continue;
    let data: Uint8Array;
    try {
      data = await context.fs.read(file.absolutePath);
    } catch {
      continue; // Vanished or unreadable since the listing, as ripgrep skips it.
    }
    if (isBinary(data)) continue;
    const text = new TextDecoder().decode(data);
    const lines = text.split("\n");
    if (lines.length > 1 && lines.at(-1) === "") lines.pop();
    const matchingLines = await worker.matchLines(spec, text, multiline);
    if (matchingLines.length > 0) results.push({ file, lines, matchingLines });
  }
  return results;
}

export interface GrepToolOptions {
  /** Matching time one call may spend (in a worker thread); defaults to DEFAULT_REGEX_BUDGET_MS. */
  readonly regexBudgetMs?: number;
}

export function createGrepTool(options: GrepToolOptions = {}): Tool<GrepInput> {
  return defineTool({
    name: "Grep",
    description:
      "Searches file contents with a regular expression (JavaScript syntax, close to ripgrep's) below path " +
      "(absolute file or folder; defaults to the working directory). Filter files with glob (`*.ts`, " +
      "`**/*.{js,ts}`) or type (`ts`, `py`, `rust`...). output_mode: files_with_matches (default, newest " +
      "first), content (matching lines; -n line numbers on by default, -A/-B/-C context) or count. -i ignores " +
      "case; multiline lets `.` and patterns span lines. head_limit keeps the first N lines or entries.",
    inputSchema,
    async run(input, context) {
      const flags = `g${input["-i"] === true ? "i" : ""}${input.multiline === true ? "ms" : ""}`;
      try {
        // Compiling checks the syntax and is linear in the pattern; matching happens in the worker.
        new RegExp(input.pattern, flags);
      } catch (error) {
        return toolUseError(`Invalid regular expression: ${(error as Error).message}`);
      }
      const root = requireAbsolutePath(input.path ?? context.cwd, "path");
      const stat = await context.fs.stat(root);
      if (stat === null) return toolUseError(`Path does not exist: ${root}`);
      const isSingleFile = stat.kind !== "directory";
      const filter = buildFileFilter(input);
      if (typeof filter === "string") return toolUseError(filter);
      const worker = new RegexWorker(options.regexBudgetMs);
      let matches: FileMatch[];
      try {
        const candidates = isSingleFile
          ? [{ relativePath: root.slice(root.lastIndexOf("/") + 1), absolutePath: root, ...stat }]
          : await filterByGlob((await walkFiles(context.fs, root)).filter(filter), input.glob, worker);
        const spec = { source: input.pattern, flags };
        matches = await searchFiles(candidates, spec, input.multiline === true, context, worker);
      } catch (error) {
        if (error instanceof RegexBudgetError) return toolUseError(error.message);
        throw error;
      } finally {
        worker.close();
      }
      const headLimit =
        input.head_limit !== undefined && input.head_limit > 0 ? Math.floor(input.head_limit) : undefined;
      const mode = input.output_mode ?? "files_with_matches";
      if (mode === "files_with_matches") {
        if (matches.length === 0) return success("No files found");
        const paths = [...matches]
          .sort(
            (a, b) =>
              b.file.mtimeMs - a.file.mtimeMs || a.file.absolutePath.localeCompare(b.file.absolutePath),
          )
          .map((match) => match.file.absolutePath)
          .slice(0, headLimit);
        return success(`Found ${paths.length} ${plural(paths.length, "file")}\n${paths.join("\n")}`);
      }
      const byPath = [...matches].sort((a, b) => a.file.absolutePath.localeCompare(b.file.absolutePath));
      if (mode === "count") {
        if (byPath.length === 0) return success("No matches found");
        const shown = byPath.slice(0, headLimit);
        const total = shown.reduce((sum, match) => sum + match.matchingLines.length, 0);
        const lines = shown.map((match) =>
          isSingleFile
            ? `${match.matchingLines.length}`
            : `${match.file.absolutePath}:${match.matchingLines.length}`,
        );
        return success(
          `${lines.join("\n")}\n\nFound ${total} total ${plural(total, "occurrence")} across ${shown.length} ${plural(shown.length, "file")}.`,
        );
      }
      const lines = formatContent(byPath, input, !isSingleFile).slice(0, headLimit);
      if (lines.length === 0) return success("No matches found");
      return success(truncateOutput(lines.join("\n"), GREP_MAX_OUTPUT_CHARS));
    },
  });
}
