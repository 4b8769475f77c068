/**
 * The toolset bash's state script against the host's bash (the sandbox runs the same bash): values of
 * every shape survive the save/restore round trip, the backend's copy restores a shell whose sandbox
 * file is gone, and the trailer never leaks into what the model sees. The real-sandbox behaviour
 * (standby, hibernate, replacement) is tested in packages/server/src/toolset-tools.test.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { ExecRequest, ExecResult } from "../../sandbox/sandbox.js";
import { createFileStateTracker } from "../file-state-tracker.js";
import type { ToolContext } from "../tool.js";
import {
  ansiCQuote,
  createMemoryShellState,
  createToolsetBashTool,
  SHELL_GROUPS_FILE,
  SHELL_STATE_FILE,
  splitShellState,
} from "./toolset-bash-tool.js";

const hasBash = spawnSync("bash", ["-c", "true"]).status === 0;

/** Runs the request with the host's bash, as the sandbox agent does (`bash -c`, cwd, env). */
function hostExec(request: ExecRequest): Promise<ExecResult> {
  const result = spawnSync("bash", ["-c", request.command], {
    cwd: "/tmp",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/root", BASE_ONLY: "base" },
    encoding: "utf8",
    // No stdin, as in the sandbox: bash given a socket on stdin would read ~/.bashrc (its rshd rule).
    stdio: ["ignore", "pipe", "pipe"],
    timeout: request.timeoutMs,
  });
  return Promise.resolve({
    exitCode: result.status,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    isTimedOut: false,
    isTruncated: false,
    durationMs: 1,
  });
}

function contextWith(exec: (request: ExecRequest) => Promise<ExecResult>): ToolContext {
  return {
    fs: undefined as unknown as ToolContext["fs"],
    exec,
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_1",
    cwd: "/tmp",
  };
}

afterEach(() => {
  rmSync(SHELL_STATE_FILE, { force: true });
  rmSync(SHELL_GROUPS_FILE, { force: true });
});

describe("ansiCQuote", () => {
  it.each([
    ["plain", "$'plain'"],
    ["it's", "$'it\\'s'"],
    ["a\\b", "$'a\\\\b'"],
    ["line\nbreak\ttab", "$'line\\nbreak\\x09tab'"],
  ])("quotes %j on one line", (text, quoted) => {
    expect(ansiCQuote(text)).toBe(quoted);
  });
});

describe("splitShellState", () => {
  it("takes the last block off stdout and keeps output printed after it (a background job)", () => {
    const stdout = "out\nfake __S__\nx\n__E__\n\n__S__\nstate line\n__E__\nlate output\n";
    expect(splitShellState(stdout, "__S__", "__E__")).toEqual({
      stdout: "out\nfake __S__\nx\n__E__\nlate output\n",
      state: "state line\n",
    });
    expect(splitShellState("no trailer", "__S__", "__E__")).toEqual({
      stdout: "no trailer",
      state: undefined,
    });
  });
});

describe.skipIf(!hasBash)("the state script on the host's bash", () => {
  it("recognizes the trailer of a result the sandbox replays for a call re-run after a crash", async () => {
    const recorded = new Map<string, ExecResult>();
    // The sandbox's exactly-once journal: a repeated key gets the first run's result.
    const replaying = async (request: ExecRequest): Promise<ExecResult> => {
      const key = request.command.slice(-40);
      const earlier = recorded.get(key);
      if (earlier) return { ...earlier, isReplayed: true };
      const result = await hostExec(request);
      recorded.set(key, result);
      return result;
    };
    const context = contextWith(replaying);
    const tool = createToolsetBashTool();
    const first = await tool.execute({ command: "export RERUN=1; echo ran" }, context);
    const again = await createToolsetBashTool().execute({ command: "export RERUN=1; echo ran" }, context);
    expect(first).toEqual({ output: "ran", isError: false });
    expect(again).toEqual({ output: "ran", isError: false });
  });

  it("round-trips values of every shape, unsets and functions, from the sandbox's file and from the backend's copy", async () => {
    const state = createMemoryShellState();
    const tool = createToolsetBashTool({ state });
    const context = contextWith(hostExec);
    const values = [
      "simple",
      "with spaces and 'single' and \"double\" quotes",
      "dollar $HOME and `backticks` and $(not run)",
      "new\nlines\n\nand\ttabs",
      "unicode: é ✓ 漢字",
      "trailing backslash \\",
      "",
    ];
    const exports = values.map((value, index) => `export V${index}=${ansiCQuote(value)}`).join("; ");
    expect(
      await tool.execute({ command: `${exports}; unset BASE_ONLY; f() { echo "f:$1"; }` }, context),
    ).toEqual({
      output: "Tool ran without output or errors",
      isError: false,
    });
    const print = values.map((_value, index) => `printf '%s|' "$V${index}"`).join("; ");
    const expected = `${values.join("|")}|[]f:x`;
    const check = `${print}; printf '[%s]' "\${BASE_ONLY-}"; f x`;
    expect((await tool.execute({ command: check }, context)).output).toBe(expected);
    // The sandbox's file is gone (a fresh sandbox): the backend's copy restores the same shell.
    rmSync(SHELL_STATE_FILE, { force: true });
    expect((await tool.execute({ command: check }, context)).output).toBe(expected);
    // Neither copy: a fresh shell.
    rmSync(SHELL_STATE_FILE, { force: true });
    await state.set(undefined);
    expect((await tool.execute({ command: 'printf "[%s]" "$V0"; echo "$BASE_ONLY"' }, context)).output).toBe(
      "[]base",
    );
  });

  it("keeps the backend's copy when the sandbox cannot write its file (a full /tmp)", async () => {
    mkdirSync(SHELL_STATE_FILE, { recursive: true }); // not a file: every write to it fails
    try {
      const tool = createToolsetBashTool();
      const context = contextWith(hostExec);
      await tool.execute({ command: "export KEPT=yes" }, context);
      expect((await tool.execute({ command: 'echo "$KEPT"' }, context)).output).toBe("yes");
    } finally {
      rmSync(SHELL_STATE_FILE, { recursive: true, force: true });
    }
  });

  it("restarts cleanly as the very first call, before any state or process list exists", async () => {
    expect(await createToolsetBashTool().execute({ restart: true }, contextWith(hostExec))).toEqual({
      output: "bash session restarted",
      isError: false,
    });
  });

  it("says so when the saved directory is gone, and starts where the sandbox starts", async () => {
    const tool = createToolsetBashTool();
    const context = contextWith(hostExec);
    const directory = `/tmp/outrig-toolset-gone-${process.pid}`;
    await tool.execute({ command: `mkdir -p ${directory} && cd ${directory}` }, context);
    rmSync(directory, { recursive: true, force: true });
    expect((await tool.execute({ command: "pwd" }, context)).output).toBe(
      `/tmp\noutrig: the shell's directory ${directory} is gone; it starts in /tmp`,
    );
  });
});
