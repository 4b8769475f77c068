/** Read: line-numbered file text in Claude Code 2.1's `N\t` format; records the read for Edit/Write. */
import { z } from "zod";
import { isFileError } from "../sandbox/sandbox-errors.js";
import type { Tool } from "./tool.js";
import {
  defineTool,
  fileDoesNotExist,
  plainError,
  requireAbsolutePath,
  success,
  toolUseError,
} from "./tool-support.js";

export const READ_DEFAULT_LIMIT = 2000;
export const READ_MAX_LINE_LENGTH = 2000;
/** Whole-file reads (no offset/limit) above this size are refused, like Claude Code. */
export const READ_MAX_BYTES = 256 * 1024;
/** Even sliced reads load the file; this caps that. */
export const READ_MAX_BYTES_SLICED = 10 * 1024 * 1024;
export const READ_MAX_TOKENS = 25_000;

const BINARY_EXTENSIONS = new Set(
  (
    "png jpg jpeg gif bmp ico webp tiff tif psd heic avif pdf zip tar gz tgz bz2 xz 7z rar zst " +
    "exe dll so dylib o a lib bin class jar war pyc pyo wasm dmg iso img " +
    "mp3 mp4 wav flac ogg avi mov mkv webm m4a aac woff woff2 ttf otf eot sqlite db"
  ).split(" "),
);

const inputSchema = z.strictObject({
  file_path: z.string(),
  offset: z.number().int().nonnegative().optional(),
  limit: z.number().int().positive().optional(),
  pages: z.string().optional(),
});

export type ReadInput = z.output<typeof inputSchema>;

function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

function looksBinary(data: Uint8Array): boolean {
  const end = Math.min(data.length, 8192);
  for (let index = 0; index < end; index++) if (data[index] === 0) return true;
  return false;
}

function formatKilobytes(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)}KB`;
}

/** Splits file text into lines; a trailing newline yields a last, empty line (as Claude Code shows it). */
export function splitLines(text: string): string[] {
  return text.split("\n").map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

/** Formats lines as `N\t<text>` starting at `firstLineNumber`, cutting over-long lines. */
export function formatNumberedLines(lines: readonly string[], firstLineNumber: number): string {
  return lines
    .map((line, index) => {
      const text =
        line.length > READ_MAX_LINE_LENGTH
          ? `${line.slice(0, READ_MAX_LINE_LENGTH)}… [line truncated]`
          : line;
      return `${firstLineNumber + index}\t${text}`;
    })
    .join("\n");
}

export interface ReadToolOptions {
  /** Lines read when the call gives no limit; READ_DEFAULT_LIMIT unless set (Infinity: the whole file). */
  readonly defaultLimit?: number;
}

export function createReadTool(options: ReadToolOptions = {}): Tool<ReadInput> {
  const defaultLimit = options.defaultLimit ?? READ_DEFAULT_LIMIT;
  return defineTool({
    name: "Read",
    description:
      "Reads a text file from the session's file system and returns it with line numbers (`N<TAB>text`). " +
      "file_path must be absolute. Reads up to 2000 lines by default; use offset (1-based first line) and limit " +
      "to read a slice of a long file. Lines longer than 2000 characters are cut. Binary files are refused. " +
      "A file must be read before Edit or Write may change it.",
    inputSchema,
    async run(input, context) {
      const path = requireAbsolutePath(input.file_path);
      const stat = await context.fs.stat(path);
      if (stat === null) return plainError(fileDoesNotExist(context.cwd));
      if (stat.kind === "directory") return plainError("EISDIR: illegal operation on a directory, read");
      const isSliced = input.offset !== undefined || input.limit !== undefined;
      const extension = extensionOf(path);
      if (BINARY_EXTENSIONS.has(extension)) {
        return toolUseError(
          `This tool cannot read binary files. The file appears to be a binary .${extension} file. Please use appropriate tools for binary file analysis.`,
        );
      }
      if (!isSliced && stat.size > READ_MAX_BYTES) {
        return plainError(
          `File content (${formatKilobytes(stat.size)}) exceeds maximum allowed size (256KB). Use offset and limit parameters to read specific portions of the file, or search for specific content instead of reading the whole file.`,
        );
      }
      if (stat.size > READ_MAX_BYTES_SLICED) {
        return plainError(
          `File content (${formatKilobytes(stat.size)}) exceeds maximum size that can be read even with offset and limit (10240KB). Search for specific content instead, for example with grep via the Bash tool.`,
        );
      }
      let data: Uint8Array;
      try {
        data = await context.fs.read(path);
      } catch (error) {
        if (isFileError(error, "is_directory"))
          return plainError("EISDIR: illegal operation on a directory, read");
        throw error;
      }
      if (looksBinary(data)) {
        return toolUseError(
          "This tool cannot read binary files. The file appears to be binary. Please use appropriate tools for binary file analysis.",
        );
      }
      context.fileState.set(path, { mtimeMs: stat.mtimeMs, isPartial: isSliced });
      const text = new TextDecoder().decode(data);
      if (text.length === 0) {
        return success(
          "<system-reminder>Warning: the file exists but the contents are empty.</system-reminder>",
        );
      }
      const lines = splitLines(text);
      // Claude Code treats offset 0 and 1 alike: both start at the first line.
      const firstLine = Math.max(1, input.offset ?? 1);
      if (firstLine > lines.length) {
        return success(
          `<system-reminder>Warning: the file exists but is shorter than the provided offset (${input.offset}). The file has ${lines.length} lines.</system-reminder>`,
        );
      }
      const slice = lines.slice(firstLine - 1, firstLine - 1 + (input.limit ?? defaultLimit));
      const output = formatNumberedLines(slice, firstLine);
      // Claude Code counts tokens with the API; a four-characters-per-token estimate stands in for it.
      const estimatedTokens = Math.ceil(output.length / 4);
      if (estimatedTokens > READ_MAX_TOKENS) {
        return plainError(
          `File content (${estimatedTokens} tokens) exceeds maximum allowed tokens (${READ_MAX_TOKENS}). Use offset and limit parameters to read specific portions of the file, or search for specific content instead of reading the whole file.`,
        );
      }
      return success(output);
    },
  });
}
