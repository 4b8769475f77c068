/**
 * Anthropic's client-side memory tool (`memory_20250818`: view, create, str_replace, insert, delete,
 * rename) over the session's FileSystem, with the result texts Anthropic documents
 * (https://docs.claude.com/en/docs/agents-and-tools/tool-use/memory-tool). Every path must stay under
 * /memories; the mount table decides where it lives.
 */
import { z } from "zod";
import { ensureError } from "../errors/app-error.js";
import { isFileError } from "../sandbox/sandbox-errors.js";
import type { Tool, ToolContext, ToolResult } from "../tools/tool.js";
import { defineTool, ToolFailure } from "../tools/tool-support.js";
import { normalizePath } from "../vfs/create-mount-table.js";

/** The Anthropic tool type the model adapter declares instead of a JSON schema. */
export const MEMORY_TOOL_TYPE = "memory_20250818";
export const MEMORY_ROOT = "/memories";
export const MEMORY_MAX_LINES = 999_999;
/** Lines of context shown around an str_replace edit. */
const SNIPPET_RADIUS = 4;

const inputSchema = z.discriminatedUnion("command", [
  z.object({
    command: z.literal("view"),
    path: z.string(),
    view_range: z.tuple([z.number().int(), z.number().int()]).optional(),
  }),
  z.object({ command: z.literal("create"), path: z.string(), file_text: z.string() }),
  z.object({ command: z.literal("str_replace"), path: z.string(), old_str: z.string(), new_str: z.string() }),
  z.object({
    command: z.literal("insert"),
    path: z.string(),
    insert_line: z.number().int(),
    insert_text: z.string(),
  }),
  z.object({ command: z.literal("delete"), path: z.string() }),
  z.object({ command: z.literal("rename"), old_path: z.string(), new_path: z.string() }),
]);

export type MemoryInput = z.output<typeof inputSchema>;

const ok = (output: string): ToolResult => ({ output, isError: false });
const fail = (output: string): ToolResult => ({ output, isError: true });

/**
 * Validates a model path: under /memories, no `.`/`..` segments (also URL-encoded), no backslash or NUL.
 * Returns the normalized path or throws a ToolFailure with the model-facing text.
 */
export function resolveMemoryPath(path: string): string {
  const invalid = () =>
    new ToolFailure(
      fail(
        `Error: The path ${path} is not allowed. Memory paths must start with ${MEMORY_ROOT} and must not contain "." or ".." segments.`,
      ),
    );
  if (path.includes("\0") || path.includes("\\") || /%2e|%2f|%5c/i.test(path)) throw invalid();
  if (path !== MEMORY_ROOT && !path.startsWith(`${MEMORY_ROOT}/`)) throw invalid();
  if (path.split("/").some((part) => part === "." || part === "..")) throw invalid();
  try {
    return normalizePath(path);
  } catch (error) {
    throw new ToolFailure(fail(`Error: ${ensureError(error).message}`));
  }
}

/** Human-readable size as in the docs' listing: `512`, `1.5K`, `2.0M`. */
export function formatMemorySize(bytes: number): string {
  if (bytes < 1024) return String(bytes);
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)}K`;
  return `${(bytes / (1024 * 1024)).toFixed(1)}M`;
}

function numbered(lines: readonly string[], firstLine: number): string {
  return lines.map((line, index) => `${String(firstLine + index).padStart(6)}\t${line}`).join("\n");
}

function isHidden(relativePath: string): boolean {
  return relativePath.split("/").some((part) => part.startsWith(".") || part === "node_modules");
}

const decode = (data: Uint8Array) => new TextDecoder().decode(data);
const encode = (text: string) => new TextEncoder().encode(text);

async function view(
  input: Extract<MemoryInput, { command: "view" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const path = resolveMemoryPath(input.path);
  const stat = await context.fs.stat(path);
  if (stat === null) return fail(`The path ${input.path} does not exist. Please provide a valid path.`);
  if (stat.kind === "directory") {
    const entries = (await context.fs.list(path, { recursive: true })).filter(
      (entry) => !isHidden(entry.path),
    );
    const sizeUnder = (directory: string) =>
      entries
        .filter(
          (entry) => entry.kind === "file" && (directory === "" || entry.path.startsWith(`${directory}/`)),
        )
        .reduce((total, entry) => total + entry.size, 0);
    const lines = [
      `Here're the files and directories up to 2 levels deep in ${input.path}, excluding hidden items and node_modules:`,
      `${formatMemorySize(sizeUnder(""))}\t${path}`,
    ];
    for (const entry of entries) {
      if (entry.path.split("/").length > 2) continue;
      const size = entry.kind === "directory" ? sizeUnder(entry.path) : entry.size;
      lines.push(`${formatMemorySize(size)}\t${path === "/" ? "" : path}/${entry.path}`);
    }
    return ok(lines.join("\n"));
  }
  const lines = decode(await context.fs.read(path)).split("\n");
  if (lines.length > MEMORY_MAX_LINES) {
    return fail(`File ${input.path} exceeds maximum line limit of 999,999 lines.`);
  }
  let start = 1;
  let end = lines.length;
  if (input.view_range !== undefined) {
    const [first, last] = input.view_range;
    if (first < 1 || first > lines.length || (last !== -1 && (last < first || last > lines.length))) {
      return fail(
        `Error: Invalid \`view_range\` parameter: [${first}, ${last}]. It should be within the range of lines of the file: [1, ${lines.length}]`,
      );
    }
    start = first;
    end = last === -1 ? lines.length : last;
  }
  return ok(
    `Here's the content of ${input.path} with line numbers:\n${numbered(lines.slice(start - 1, end), start)}`,
  );
}

async function create(
  input: Extract<MemoryInput, { command: "create" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const path = resolveMemoryPath(input.path);
  if (path === MEMORY_ROOT) return fail(`Error: File ${input.path} already exists`);
  if ((await context.fs.stat(path)) !== null) return fail(`Error: File ${input.path} already exists`);
  await context.fs.write(path, encode(input.file_text));
  return ok(`File created successfully at: ${input.path}`);
}

/** Reads a file for an edit command, or fails with `missing` when it is absent or a directory. */
async function readForEdit(path: string, context: ToolContext, missing: string): Promise<string> {
  const stat = await context.fs.stat(path);
  if (stat === null || stat.kind !== "file") throw new ToolFailure(fail(missing));
  return decode(await context.fs.read(path));
}

async function strReplace(
  input: Extract<MemoryInput, { command: "str_replace" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const path = resolveMemoryPath(input.path);
  const content = await readForEdit(
    path,
    context,
    `Error: The path ${input.path} does not exist. Please provide a valid path.`,
  );
  const positions: number[] = [];
  if (input.old_str !== "") {
    for (
      let index = content.indexOf(input.old_str);
      index !== -1;
      index = content.indexOf(input.old_str, index + 1)
    ) {
      positions.push(index);
    }
  }
  if (positions.length === 0) {
    return fail(
      `No replacement was performed, old_str \`${input.old_str}\` did not appear verbatim in ${input.path}.`,
    );
  }
  if (positions.length > 1) {
    const lineNumbers = [...new Set(positions.map((index) => content.slice(0, index).split("\n").length))];
    return fail(
      `No replacement was performed. Multiple occurrences of old_str \`${input.old_str}\` in lines: ${lineNumbers.join(", ")}. Please ensure it is unique`,
    );
  }
  // Invariant: exactly one position was found above.
  const at = positions[0] as number;
  const updated = content.slice(0, at) + input.new_str + content.slice(at + input.old_str.length);
  await context.fs.write(path, encode(updated));
  const lines = updated.split("\n");
  const firstChanged = content.slice(0, at).split("\n").length;
  const lastChanged = firstChanged + input.new_str.split("\n").length - 1;
  const from = Math.max(1, firstChanged - SNIPPET_RADIUS);
  const to = Math.min(lines.length, lastChanged + SNIPPET_RADIUS);
  return ok(`The memory file has been edited.\n${numbered(lines.slice(from - 1, to), from)}`);
}

async function insert(
  input: Extract<MemoryInput, { command: "insert" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const path = resolveMemoryPath(input.path);
  const content = await readForEdit(path, context, `Error: The path ${input.path} does not exist`);
  const hasFinalNewline = content.endsWith("\n");
  const lines = content === "" ? [] : (hasFinalNewline ? content.slice(0, -1) : content).split("\n");
  if (input.insert_line < 0 || input.insert_line > lines.length) {
    return fail(
      `Error: Invalid \`insert_line\` parameter: ${input.insert_line}. It should be within the range of lines of the file: [0, ${lines.length}]`,
    );
  }
  const inserted = (
    input.insert_text.endsWith("\n") ? input.insert_text.slice(0, -1) : input.insert_text
  ).split("\n");
  lines.splice(input.insert_line, 0, ...inserted);
  await context.fs.write(path, encode(`${lines.join("\n")}${hasFinalNewline || content === "" ? "\n" : ""}`));
  return ok(`The file ${input.path} has been edited.`);
}

async function remove(
  input: Extract<MemoryInput, { command: "delete" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const path = resolveMemoryPath(input.path);
  if (path === MEMORY_ROOT) return fail(`Error: Cannot delete ${input.path}: it is the memory root.`);
  if ((await context.fs.stat(path)) === null) return fail(`Error: The path ${input.path} does not exist`);
  await context.fs.remove(path);
  return ok(`Successfully deleted ${input.path}`);
}

async function rename(
  input: Extract<MemoryInput, { command: "rename" }>,
  context: ToolContext,
): Promise<ToolResult> {
  const from = resolveMemoryPath(input.old_path);
  const to = resolveMemoryPath(input.new_path);
  const source = await context.fs.stat(from);
  if (source === null || from === MEMORY_ROOT)
    return fail(`Error: The path ${input.old_path} does not exist`);
  if ((await context.fs.stat(to)) !== null)
    return fail(`Error: The destination ${input.new_path} already exists`);
  if (to.startsWith(`${from}/`)) return fail(`Error: Cannot move ${input.old_path} into itself`);
  if (source.kind === "directory") {
    // Copy every file, then remove the source tree: not atomic across files, but never loses one.
    for (const entry of await context.fs.list(from, { recursive: true })) {
      if (entry.kind !== "file") continue;
      const data = await context.fs.read(`${from}/${entry.path}`);
      await context.fs.stat(`${to}/${entry.path}`);
      await context.fs.write(`${to}/${entry.path}`, data);
    }
  } else {
    await context.fs.write(to, await context.fs.read(from));
  }
  await context.fs.remove(from);
  return ok(`Successfully renamed ${input.old_path} to ${input.new_path}`);
}

/** The `memory` tool. File-system failures come back as `Error: <message>` results, never as exceptions. */
export function createMemoryTool(): Tool<MemoryInput> {
  const tool = defineTool({
    name: "memory",
    description:
      "Stores and retrieves information across sessions in files under /memories: /memories/me is private " +
      "to the user, /memories/org is shared with the whole org. Commands: view, create, str_replace, insert, " +
      "delete, rename.",
    inputSchema,
    async run(input, context) {
      try {
        switch (input.command) {
          case "view":
            return await view(input, context);
          case "create":
            return await create(input, context);
          case "str_replace":
            return await strReplace(input, context);
          case "insert":
            return await insert(input, context);
          case "delete":
            return await remove(input, context);
          case "rename":
            return await rename(input, context);
        }
      } catch (error) {
        if (error instanceof ToolFailure) return error.result;
        if (isFileError(error)) return fail(`Error: ${error.message}`);
        throw error;
      }
    },
  });
  // Anthropic models are trained on this vendor tool; other providers do not get it.
  return { ...tool, providerTools: { anthropic: "memory_20250818" } };
}
