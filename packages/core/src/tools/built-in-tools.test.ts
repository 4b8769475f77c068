/** Edge cases of each built-in tool beyond the golden recordings, over an in-memory file system. */
import { spawnSync } from "node:child_process";
import { MemoryFileSystem } from "@outrig/testing";
import { describe, expect, it } from "vitest";
import type { ExecRequest, ExecResult } from "../sandbox/sandbox.js";
import { createMountTable } from "../vfs/create-mount-table.js";
import { createBashTool, splitFinalCwd, wrapCommand } from "./bash-tool.js";
import { createDefaultTools, toolDefinitions } from "./create-default-tools.js";
import { createEditTool } from "./edit-tool.js";
import { createFileStateTracker } from "./file-state-tracker.js";
import { createGlobTool } from "./glob-tool.js";
import { createGrepTool } from "./grep-tool.js";
import { createReadTool } from "./read-tool.js";
import type { Tool, ToolContext } from "./tool.js";
import { createWriteTool } from "./write-tool.js";

type ExecHandler = (request: ExecRequest) => Partial<ExecResult>;

function setup(files: Record<string, string | Uint8Array> = {}, exec?: ExecHandler) {
  const memory = new MemoryFileSystem(
    Object.fromEntries(Object.entries(files).map(([name, content]) => [`/${name}`, content])),
  );
  const requests: ExecRequest[] = [];
  const context: ToolContext = {
    fs: createMountTable([{ prefix: "/workspace", fileSystem: memory }]),
    async exec(request) {
      requests.push(request);
      if (exec === undefined) throw new Error("exec not expected");
      return {
        exitCode: 0,
        signal: null,
        stdout: "",
        stderr: "",
        isTimedOut: false,
        isTruncated: false,
        durationMs: 1,
        ...exec(request),
      };
    },
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call-1",
    cwd: "/workspace",
  };
  const run = (tool: Tool, input: unknown) => tool.execute(input, context);
  const text = async (path: string) => new TextDecoder().decode(await memory.read(path));
  return { memory, context, run, text, requests };
}

const read = createReadTool();
const write = createWriteTool();
const edit = createEditTool();
const glob = createGlobTool();
const grep = createGrepTool();
const bash = createBashTool();

describe("Read", () => {
  it.each([
    ["one line, no newline", "x", {}, "1\tx"],
    ["CRLF endings", "a\r\nb", {}, "1\ta\n2\tb"],
    ["offset 0 starts at line 1", "a\nb", { offset: 0 }, "1\ta\n2\tb"],
    ["offset and limit", "a\nb\nc\nd", { offset: 3, limit: 1 }, "3\tc"],
    ["limit only", "a\nb\nc", { limit: 2 }, "1\ta\n2\tb"],
    [
      "offset past the end",
      "a\nb\n",
      { offset: 9 },
      "<system-reminder>Warning: the file exists but is shorter than the provided offset (9). The file has 3 lines.</system-reminder>",
    ],
    [
      "empty file",
      "",
      {},
      "<system-reminder>Warning: the file exists but the contents are empty.</system-reminder>",
    ],
  ])("%s", async (_name, content, slice, expected) => {
    const { run } = setup({ "f.txt": content });
    expect(await run(read, { file_path: "/workspace/f.txt", ...slice })).toEqual({
      output: expected,
      isError: false,
    });
  });

  it("stops after 2000 lines by default and cuts lines longer than 2000 characters", async () => {
    const lines = Array.from({ length: 2500 }, (_, index) => `l${index + 1}`);
    lines[0] = "x".repeat(2500);
    const { run } = setup({ "big.txt": lines.join("\n") });
    const result = await run(read, { file_path: "/workspace/big.txt" });
    const output = result.output.split("\n");
    expect(output).toHaveLength(2000);
    expect(output[0]).toBe(`1\t${"x".repeat(2000)}… [line truncated]`);
    expect(output.at(-1)).toBe("2000\tl2000");
  });

  it("records the read with its mtime, marking slices as partial", async () => {
    const { run, context, memory } = setup({ "f.txt": "a\nb" });
    await run(read, { file_path: "/workspace/f.txt", limit: 1 });
    const mtimeMs = (await memory.stat("/f.txt"))?.mtimeMs;
    expect(context.fileState.get("/workspace/f.txt")).toEqual({ mtimeMs, isPartial: true });
    await run(read, { file_path: "/workspace//./f.txt" });
    expect(context.fileState.get("/workspace/f.txt")).toEqual({ mtimeMs, isPartial: false });
  });

  it.each([
    [
      "a missing file",
      "/workspace/nope.txt",
      "File does not exist. Note: your current working directory is /workspace.",
    ],
    ["a directory", "/workspace/dir", "EISDIR: illegal operation on a directory, read"],
    [
      "a path outside every mount",
      "/etc/passwd",
      "File does not exist. Note: your current working directory is /workspace.",
    ],
    [
      "a binary extension",
      "/workspace/logo.png",
      "<tool_use_error>This tool cannot read binary files. The file appears to be a binary .png file. Please use appropriate tools for binary file analysis.</tool_use_error>",
    ],
    [
      "content with NUL bytes",
      "/workspace/blob",
      "<tool_use_error>This tool cannot read binary files. The file appears to be binary. Please use appropriate tools for binary file analysis.</tool_use_error>",
    ],
    [
      "a file over 256 KB",
      "/workspace/huge.txt",
      "File content (300.0KB) exceeds maximum allowed size (256KB). Use offset and limit parameters to read specific portions of the file, or search for specific content instead of reading the whole file.",
    ],
  ])("refuses %s", async (_name, path, expected) => {
    const { run, context } = setup({
      "dir/inner.txt": "x",
      "logo.png": "png",
      blob: new Uint8Array([104, 0, 105]),
      "huge.txt": "y".repeat(300 * 1024),
    });
    expect(await run(read, { file_path: path })).toEqual({ output: expected, isError: true });
    expect(context.fileState.get(path)).toBeUndefined();
  });

  it("reads a slice of a file over 256 KB", async () => {
    const { run } = setup({ "huge.txt": `first\n${"y".repeat(300 * 1024)}` });
    expect(await run(read, { file_path: "/workspace/huge.txt", limit: 1 })).toEqual({
      output: "1\tfirst",
      isError: false,
    });
  });

  it("refuses output over the token budget", async () => {
    const { run } = setup({ "wide.txt": Array.from({ length: 100 }, () => "z".repeat(1500)).join("\n") });
    const result = await run(read, { file_path: "/workspace/wide.txt" });
    expect(result.isError).toBe(true);
    expect(result.output).toMatch(/^File content \(\d+ tokens\) exceeds maximum allowed tokens \(25000\)\./);
  });
});

describe("Write", () => {
  it("creates a file and its parent folders, and the new file counts as read", async () => {
    const { run, text } = setup();
    expect(await run(write, { file_path: "/workspace/a/b/c.txt", content: "hi" })).toEqual({
      output:
        "File created successfully at: /workspace/a/b/c.txt (file state is current in your context — no need to Read it back)",
      isError: false,
    });
    expect(await text("/a/b/c.txt")).toBe("hi");
    expect(await run(write, { file_path: "/workspace/a/b/c.txt", content: "again" })).toEqual({
      output:
        "The file /workspace/a/b/c.txt has been updated successfully. (file state is current in your context — no need to Read it back)",
      isError: false,
    });
    expect(await text("/a/b/c.txt")).toBe("again");
  });

  it("refuses to overwrite a file changed since it was read", async () => {
    const { run, memory, text } = setup({ "f.txt": "old" });
    await run(read, { file_path: "/workspace/f.txt" });
    memory.touch("/f.txt");
    expect(await run(write, { file_path: "/workspace/f.txt", content: "new" })).toEqual({
      output:
        "<tool_use_error>File has been modified since read, either by the user or by a linter. Read it again before attempting to write it.</tool_use_error>",
      isError: true,
    });
    expect(await text("/f.txt")).toBe("old");
  });

  it("refuses to write over a directory or below a file", async () => {
    const { run } = setup({ "dir/x": "", file: "" });
    expect(await run(write, { file_path: "/workspace/dir", content: "" })).toEqual({
      output: "<tool_use_error>Path is a directory, not a file: /workspace/dir</tool_use_error>",
      isError: true,
    });
    expect(await run(write, { file_path: "/workspace/file/below", content: "" })).toMatchObject({
      output: "ENOTDIR: not a directory (a parent of the path is a file)",
      isError: true,
    });
  });
});

describe("Edit", () => {
  async function readThenEdit(content: string, input: Record<string, unknown>) {
    const session = setup({ "f.txt": content });
    await session.run(read, { file_path: "/workspace/f.txt" });
    const result = await session.run(edit, { file_path: "/workspace/f.txt", ...input });
    return { result, content: await session.text("/f.txt") };
  }
  const updated = {
    output:
      "The file /workspace/f.txt has been updated successfully. (file state is current in your context — no need to Read it back)",
    isError: false,
  };

  it.each([
    ["a unique string", "a b c", { old_string: "b", new_string: "B" }, "a B c"],
    [
      "every occurrence with replace_all",
      "x y x y x",
      { old_string: "x", new_string: "z", replace_all: true },
      "z y z y z",
    ],
    ["with `$` patterns kept literally", "cost", { old_string: "cost", new_string: "$& $1 $$" }, "$& $1 $$"],
    ["a multi-line string", "a\nb\nc\n", { old_string: "a\nb", new_string: "" }, "\nc\n"],
    ["an empty file via an empty old_string", "", { old_string: "", new_string: "fresh" }, "fresh"],
  ])("replaces %s", async (_name, content, input, expected) => {
    const outcome = await readThenEdit(content, input);
    expect(outcome).toEqual({ result: updated, content: expected });
  });

  it.each([
    [
      "old_string equal to new_string",
      { old_string: "a", new_string: "a" },
      "<tool_use_error>No changes to make: old_string and new_string are exactly the same.</tool_use_error>",
    ],
    [
      "a missing string",
      { old_string: "zzz", new_string: "a" },
      "<tool_use_error>String to replace not found in file.\nString: zzz</tool_use_error>",
    ],
    [
      "three matches without replace_all",
      { old_string: "a", new_string: "b" },
      "<tool_use_error>Found 3 matches of the string to replace, but replace_all is false. To replace all occurrences, set replace_all to true. To replace only one occurrence, please provide more context to uniquely identify the instance.\nString: a</tool_use_error>",
    ],
    [
      "an empty old_string on a non-empty file",
      { old_string: "", new_string: "b" },
      "<tool_use_error>Cannot create new file - file already exists.</tool_use_error>",
    ],
  ])("refuses %s and leaves the file alone", async (_name, input, expected) => {
    const outcome = await readThenEdit("a a a", input);
    expect(outcome).toEqual({ result: { output: expected, isError: true }, content: "a a a" });
  });

  it("requires a read first, and a fresh one after an outside change", async () => {
    const { run, memory } = setup({ "f.txt": "abc" });
    const input = { file_path: "/workspace/f.txt", old_string: "b", new_string: "B" };
    expect((await run(edit, input)).output).toBe(
      "<tool_use_error>File has not been read yet. Read it first before writing to it.</tool_use_error>",
    );
    await run(read, { file_path: "/workspace/f.txt", offset: 1, limit: 1 });
    memory.touch("/f.txt");
    expect((await run(edit, input)).output).toContain("File has been modified since read");
    await run(read, { file_path: "/workspace/f.txt" });
    expect((await run(edit, input)).isError).toBe(false);
    // Its own edit keeps the state current: a second edit needs no new read.
    expect(await run(edit, { ...input, old_string: "c", new_string: "C" })).toMatchObject({ isError: false });
    expect(new TextDecoder().decode(await memory.read("/f.txt"))).toBe("aBC");
  });

  it("creates a missing file from an empty old_string, and refuses other edits of missing files", async () => {
    const { run, text } = setup();
    expect(
      await run(edit, { file_path: "/workspace/n.txt", old_string: "", new_string: "new" }),
    ).toMatchObject({
      isError: false,
    });
    expect(await text("/n.txt")).toBe("new");
    expect(await run(edit, { file_path: "/workspace/m.txt", old_string: "x", new_string: "y" })).toEqual({
      output:
        "<tool_use_error>File does not exist. Note: your current working directory is /workspace.</tool_use_error>",
      isError: true,
    });
  });
});

describe("Glob", () => {
  async function globSetup() {
    const session = setup({ "b.ts": "", "a.ts": "", "src/c.ts": "", "src/d.md": "", ".git/x.ts": "" });
    session.memory.touch("/a.ts", 1000);
    session.memory.touch("/b.ts", 2000);
    session.memory.touch("/src/c.ts", 3000);
    return session;
  }

  it.each([
    ["*.ts", undefined, "/workspace/a.ts\n/workspace/b.ts"],
    ["**/*.ts", undefined, "/workspace/a.ts\n/workspace/b.ts\n/workspace/src/c.ts"],
    ["*", "/workspace/src", "/workspace/src/c.ts\n/workspace/src/d.md"],
    ["/workspace/src/*.{ts,md}", undefined, "/workspace/src/c.ts\n/workspace/src/d.md"],
    ["*.py", undefined, "No files found"],
  ])("%s in %s", async (pattern, path, expected) => {
    const { run } = await globSetup();
    expect(await run(glob, { pattern, path })).toEqual({ output: expected, isError: false });
  });

  it("returns 100 paths and a truncation note", async () => {
    const files = Object.fromEntries(Array.from({ length: 120 }, (_, index) => [`f${index}.txt`, ""]));
    const { run } = setup(files);
    const lines = (await run(glob, { pattern: "*.txt" })).output.split("\n");
    expect(lines).toHaveLength(101);
    expect(lines.at(-1)).toBe("(Results are truncated. Consider using a more specific path or pattern.)");
  });

  it.each([
    ["/workspace/nope", "<tool_use_error>Directory does not exist: /workspace/nope</tool_use_error>"],
    ["/workspace/a.ts", "<tool_use_error>Path is not a directory: /workspace/a.ts</tool_use_error>"],
  ])("refuses path %s", async (path, expected) => {
    const { run } = await globSetup();
    expect(await run(glob, { pattern: "*", path })).toEqual({ output: expected, isError: true });
  });
});

describe("Grep", () => {
  async function grepSetup() {
    const session = setup({
      "a.ts": "const alpha = 1;\nconst beta = 2;\nalpha();\n",
      "b.md": "Alpha in prose\n",
      "src/c.ts": "one\ntwo\nthree alpha\nfour\nfive\nsix alpha\n",
      "bin.dat": new Uint8Array([97, 108, 112, 104, 97, 0]),
      ".git/config": "alpha",
    });
    session.memory.touch("/a.ts", 1000);
    session.memory.touch("/src/c.ts", 3000);
    session.memory.touch("/b.md", 2000);
    return session;
  }

  it.each([
    ["files, newest first", { pattern: "alpha" }, "Found 2 files\n/workspace/src/c.ts\n/workspace/a.ts"],
    [
      "-i",
      { pattern: "alpha", "-i": true },
      "Found 3 files\n/workspace/src/c.ts\n/workspace/b.md\n/workspace/a.ts",
    ],
    [
      "glob by name",
      { pattern: "alpha", glob: "*.ts", path: "/workspace/src" },
      "Found 1 file\n/workspace/src/c.ts",
    ],
    [
      "glob with braces",
      { pattern: "alpha", glob: "*.{md,txt}", "-i": true },
      "Found 1 file\n/workspace/b.md",
    ],
    ["type", { pattern: "lpha", type: "md", "-i": true }, "Found 1 file\n/workspace/b.md"],
    ["head_limit on files", { pattern: "alpha", head_limit: 1 }, "Found 1 file\n/workspace/src/c.ts"],
    ["no match", { pattern: "zeta" }, "No files found"],
    [
      "content with numbers",
      { pattern: "alpha", output_mode: "content" },
      "/workspace/a.ts:1:const alpha = 1;\n/workspace/a.ts:3:alpha();\n/workspace/src/c.ts:3:three alpha\n/workspace/src/c.ts:6:six alpha",
    ],
    [
      "content without numbers",
      { pattern: "^alpha", output_mode: "content", "-n": false },
      "/workspace/a.ts:alpha();",
    ],
    [
      "content with context",
      { pattern: "alpha", output_mode: "content", path: "/workspace/src", "-B": 1, "-A": 0 },
      "/workspace/src/c.ts-2-two\n/workspace/src/c.ts:3:three alpha\n--\n/workspace/src/c.ts-5-five\n/workspace/src/c.ts:6:six alpha",
    ],
    [
      "content in a single file drops the path",
      { pattern: "alpha", output_mode: "content", path: "/workspace/src/c.ts", "-C": 1 },
      "2-two\n3:three alpha\n4-four\n5-five\n6:six alpha",
    ],
    [
      "multiline",
      { pattern: "one.two", output_mode: "content", multiline: true },
      "/workspace/src/c.ts:1:one\n/workspace/src/c.ts:2:two",
    ],
    [
      "content head_limit",
      { pattern: "alpha", output_mode: "content", head_limit: 1 },
      "/workspace/a.ts:1:const alpha = 1;",
    ],
    ["content, no match", { pattern: "zeta", output_mode: "content" }, "No matches found"],
    [
      "count",
      { pattern: "alpha", output_mode: "count" },
      "/workspace/a.ts:2\n/workspace/src/c.ts:2\n\nFound 4 total occurrences across 2 files.",
    ],
  ])("%s", async (_name, input, expected) => {
    const { run } = await grepSetup();
    expect(await run(grep, input)).toEqual({ output: expected, isError: false });
  });

  it.each([
    [{ pattern: "(" }, /^<tool_use_error>Invalid regular expression: /],
    [
      { pattern: "a", type: "klingon" },
      /^<tool_use_error>unrecognized file type: klingon<\/tool_use_error>$/,
    ],
    [
      { pattern: "a", path: "/workspace/none" },
      /^<tool_use_error>Path does not exist: \/workspace\/none<\/tool_use_error>$/,
    ],
  ])("refuses %j", async (input, expected) => {
    const { run } = await grepSetup();
    const result = await run(grep, input);
    expect(result.isError).toBe(true);
    expect(result.output).toMatch(expected);
  });
});

describe("Bash", () => {
  it("runs the wrapped command in /workspace with the default timeout", async () => {
    const { run, requests } = setup({}, () => ({ stdout: "hi\n" }));
    expect(await run(bash, { command: "echo hi" })).toEqual({ output: "hi", isError: false });
    expect(requests).toEqual([
      { command: wrapCommand("echo hi"), cwd: "/workspace", timeoutMs: 120_000, maxOutputBytes: 1024 * 1024 },
    ]);
  });

  it.each([
    [undefined, 120_000],
    [5000, 5000],
    [999_999, 600_000],
    [-1, 120_000],
    [1500.7, 1500],
  ])("timeout %s becomes %s ms", async (timeout, expected) => {
    const { run, requests } = setup({}, () => ({}));
    await run(bash, { command: "true", timeout });
    expect(requests[0]?.timeoutMs).toBe(expected);
  });

  it.each([
    ["no output", {}, "Tool ran without output or errors", false],
    ["stderr only", { stderr: "warn\n" }, "warn", false],
    ["a failure", { exitCode: 2, stdout: "o", stderr: "e" }, "Exit code 2\no\ne", true],
    [
      "a timeout",
      { exitCode: null, signal: "SIGKILL", isTimedOut: true, stdout: "part" },
      "part\nCommand timed out after 120000 ms",
      true,
    ],
    ["a signal", { exitCode: null, signal: "SIGSEGV" }, "Command was terminated by signal SIGSEGV", true],
    [
      "a final cwd elsewhere",
      { stdout: "x\n\n__outrig_final_cwd_5f1c__/tmp\n" },
      "x\nShell cwd was reset to /workspace",
      false,
    ],
    ["the same final cwd", { stdout: "x\n__outrig_final_cwd_5f1c__/workspace\n" }, "x", false],
    [
      "output cut by the sandbox",
      { stdout: "x", isTruncated: true },
      "x\n(Output beyond 1048576 bytes per stream was dropped.)",
      false,
    ],
  ])("formats %s", async (_name, result, expected, isError) => {
    const { run } = setup({}, () => result as Partial<ExecResult>);
    expect(await run(bash, { command: "cmd" })).toEqual({ output: expected, isError });
  });

  it("cuts output over 30000 characters and says how many lines were dropped", async () => {
    const { run } = setup({}, () => ({ stdout: "ab\n".repeat(20_000) }));
    const result = await run(bash, { command: "yes" });
    expect(result.output.startsWith("ab\nab\n")).toBe(true);
    expect(result.output.endsWith("\n\n... [10000 lines truncated] ...")).toBe(true);
  });

  it("refuses background runs and empty commands without running anything", async () => {
    const { run, requests } = setup({}, () => ({}));
    expect((await run(bash, { command: "sleep 9", run_in_background: true })).isError).toBe(true);
    expect((await run(bash, { command: "  " })).isError).toBe(true);
    expect(requests).toHaveLength(0);
  });

  it("reports a sandbox failure as an error result", async () => {
    const { run } = setup({}, () => {
      throw new Error("sandbox unavailable");
    });
    expect(await run(bash, { command: "ls" })).toEqual({
      output: "<tool_use_error>Error: the command could not be run: sandbox unavailable</tool_use_error>",
      isError: true,
    });
  });

  it("keeps quotes, exit codes and bash's line numbers intact in the wrapped command (real bash)", () => {
    const quoted = spawnSync("bash", ["-c", wrapCommand(`echo "it's" 'a "b"'; exit 4`)], {
      encoding: "utf8",
    });
    expect(quoted.status).toBe(4);
    expect(splitFinalCwd(quoted.stdout)).toEqual({ stdout: `it's a "b"\n`, finalCwd: process.cwd() });
    const missing = spawnSync("bash", ["-c", wrapCommand("no-such-command-outrig")], { encoding: "utf8" });
    expect(missing.status).toBe(127);
    expect(missing.stderr).toBe("bash: line 1: no-such-command-outrig: command not found\n");
  });

  it("splits the cwd trailer only when present", () => {
    expect(splitFinalCwd("plain")).toEqual({ stdout: "plain", finalCwd: undefined });
    expect(splitFinalCwd("a\n__outrig_final_cwd_5f1c__/x y\n")).toEqual({ stdout: "a", finalCwd: "/x y" });
  });
});

describe("bad input never throws", () => {
  const tools = createDefaultTools();
  const inputs: [string, unknown][] = [
    ["undefined", undefined],
    ["null", null],
    ["a string", "read /etc/passwd"],
    ["an array", ["/workspace/a"]],
    ["an empty object", {}],
    [
      "wrong types",
      { file_path: 1, command: false, pattern: 3, content: {}, old_string: [], new_string: null },
    ],
    ["extra keys", { file_path: "/workspace/a", command: "true", pattern: "x", unknown_key: 1 }],
    [
      "a NUL byte in the path",
      {
        file_path: "/workspace/a\0b",
        content: "",
        old_string: "a",
        new_string: "b",
        pattern: "x",
        path: "/workspace/\0",
        command: "true",
      },
    ],
    [
      "a relative path",
      { file_path: "a.txt", content: "", old_string: "a", new_string: "b", pattern: "x", path: "src" },
    ],
    [
      "a huge path",
      {
        file_path: `/${"a".repeat(10_000)}`,
        content: "",
        old_string: "a",
        new_string: "b",
        pattern: "x",
        path: `/${"a".repeat(10_000)}`,
      },
    ],
    [
      "negative and fractional numbers",
      { file_path: "/workspace/a", offset: -1, limit: 0.5, pattern: "x", "-A": -3, head_limit: -1 },
    ],
  ];
  for (const tool of tools) {
    it.each(inputs)(`${tool.name} with %s`, async (_name, input) => {
      const { run } = setup({ a: "a" }, () => ({}));
      const result = await run(tool, input);
      expect(typeof result.output).toBe("string");
      expect(typeof result.isError).toBe("boolean");
    });
  }

  it.each([
    [
      read,
      {},
      "<tool_use_error>InputValidationError: Read failed due to the following issue:\nThe required parameter `file_path` is missing</tool_use_error>",
    ],
    [
      edit,
      { file_path: 3, old_string: "a", new_string: "b", extra: true },
      "<tool_use_error>InputValidationError: Edit failed due to the following issues:\nThe parameter `file_path` type is expected as `string` but provided as `number`\nAn unexpected parameter `extra` was provided</tool_use_error>",
    ],
    [
      bash,
      "ls",
      "<tool_use_error>InputValidationError: Bash failed due to the following issue:\nThe tool input is expected as `object` but provided as `string`</tool_use_error>",
    ],
    [
      read,
      { file_path: "/workspace/a", limit: 0 },
      "<tool_use_error>InputValidationError: Read failed due to the following issue:\nThe parameter `limit` is invalid: Too small: expected number to be >0</tool_use_error>",
    ],
    [
      read,
      { file_path: "a.txt" },
      "<tool_use_error>The file_path must be an absolute path, not a relative path: a.txt</tool_use_error>",
    ],
    [
      write,
      { file_path: "/workspace/a\0", content: "" },
      "<tool_use_error>The file_path must not contain NUL bytes.</tool_use_error>",
    ],
    [
      write,
      { file_path: `/workspace/${"a".repeat(5000)}`, content: "" },
      "<tool_use_error>Path is longer than 4096 characters.</tool_use_error>",
    ],
  ])("%#: reports invalid input in Claude Code's words", async (tool, input, expected) => {
    const { run } = setup({ a: "a" });
    expect(await run(tool as Tool, input)).toEqual({ output: expected, isError: true });
  });

  it("accepts a large but valid write", async () => {
    const { run, text } = setup();
    const content = "x".repeat(2 * 1024 * 1024);
    expect((await run(write, { file_path: "/workspace/big", content })).isError).toBe(false);
    expect((await text("/big")).length).toBe(content.length);
  });
});

describe("unexpected failures", () => {
  it("turns an exception from the file system into an error result", async () => {
    const { context } = setup();
    const broken: ToolContext = {
      ...context,
      fs: { ...context.fs, stat: () => Promise.reject(new TypeError("disk on fire")) } as ToolContext["fs"],
    };
    for (const [tool, input] of [
      [read, { file_path: "/workspace/a" }],
      [write, { file_path: "/workspace/a", content: "" }],
      [edit, { file_path: "/workspace/a", old_string: "a", new_string: "b" }],
      [glob, { pattern: "*" }],
      [grep, { pattern: "x" }],
    ] as const) {
      expect(await (tool as Tool).execute(input, broken)).toEqual({
        output: "Error: disk on fire",
        isError: true,
      });
    }
  });

  it("refuses to edit a file over the size cap", async () => {
    const { run } = setup({ "big.txt": "a".repeat(10 * 1024 * 1024 + 1) });
    expect(
      (await run(edit, { file_path: "/workspace/big.txt", old_string: "a", new_string: "b" })).output,
    ).toBe(
      "<tool_use_error>File is too large to edit (10485761 bytes; the limit is 10485760).</tool_use_error>",
    );
  });
});

describe("toolDefinitions", () => {
  it("describes every default tool once, with a JSON Schema that has no description text from Claude Code", () => {
    const definitions = toolDefinitions(createDefaultTools());
    expect(definitions.map((definition) => definition.name)).toEqual([
      "Bash",
      "Read",
      "Write",
      "Edit",
      "Glob",
      "Grep",
    ]);
    for (const definition of definitions) {
      expect(definition.description.length).toBeGreaterThan(40);
      expect(definition.inputSchema).toMatchObject({ type: "object", additionalProperties: false });
    }
  });

  it("refuses duplicate names", () => {
    expect(() => toolDefinitions([read, read])).toThrow("Duplicate tool name: Read");
  });
});
