/**
 * The agent toolset's tools on a real bubblewrap sandbox behind a SessionSandbox (the object that
 * puts a session's sandbox on standby and replaces a dead one): bash's shell state across calls,
 * restart, timeout_ms, standby/resume and replacement; the file tools with the toolset's schemas.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  createFileStateTracker,
  createMountTable,
  createToolsetTools,
  runSession,
  SandboxFileSystem,
  type SandboxProvider,
  type Tool,
  type ToolContext,
  type ToolResult,
  type ToolsetSettings,
} from "@outrig/core";
import type { SessionEvent } from "@outrig/protocol";
import {
  checkRuncHibernate,
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  createRuncSandboxProvider,
} from "@outrig/sandboxes";
import { MemorySessionStore, ScriptedModel } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionSandbox } from "./session-sandbox.js";
import { SessionSnapshots } from "./session-snapshots.js";

const isRoot = process.getuid?.() === 0;
const provider = createBubblewrapSandboxProvider();
let root: string;
let count = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "outrig-toolset-tools-"));
});
afterAll(async () => {
  await provider.close();
  await rm(root, { recursive: true, force: true });
});

const ALL_ON: ToolsetSettings = Object.fromEntries(
  ["bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search"].map((name) => [
    name,
    { enabled: true, permission: "always_allow" },
  ]),
);

/** A session's sandbox, the toolset's tools and a context to call them with. */
async function openSession(sandboxProvider: SandboxProvider = provider) {
  count += 1;
  const workspaceDir = path.join(root, `workspace-${count}`);
  const stateDir = path.join(root, `state-${count}`);
  const sandbox = new SessionSandbox({
    provider: sandboxProvider,
    sessionId: `ses_toolset_${count}`,
    orgId: "org_1",
    workspaceDir,
    stateDir,
    policy: async () => ({ coldAfterMs: 600_000, destroyAfterMs: 600_000 }),
    snapshots: new SessionSnapshots({
      store: createLocalDirectoryBlobStore(path.join(root, `blobs-${count}`)),
      sessionId: `ses_toolset_${count}`,
      workspaceDir,
      stateDir,
    }),
    emit: async () => undefined,
  });
  const getSandbox = async () => sandbox.proxy;
  const context: ToolContext = {
    fs: createMountTable([
      { prefix: "/", fileSystem: new SandboxFileSystem(getSandbox, "/") },
      { prefix: "/workspace", fileSystem: new SandboxFileSystem(getSandbox, "/workspace") },
    ]),
    exec: (request, signal) => sandbox.proxy.exec(request, signal),
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_1",
    cwd: "/workspace",
  };
  let tools = new Map(createToolsetTools(ALL_ON).tools.map((tool) => [tool.name, tool]));
  const call = (name: string, input: unknown): Promise<ToolResult> => {
    const tool = tools.get(name) as Tool | undefined;
    if (!tool) throw new Error(`no tool ${name}`);
    return tool.execute(input, context);
  };
  const bash = async (command: string, extra: Record<string, unknown> = {}) =>
    call("bash", { command, ...extra });
  /** New tool objects: the backend's copy of the shell state is gone (another process took over). */
  const recreateTools = () => {
    tools = new Map(createToolsetTools(ALL_ON).tools.map((tool) => [tool.name, tool]));
  };
  return { sandbox, context, call, bash, recreateTools, workspaceDir };
}

describe.skipIf(!isRoot)("toolset bash on a real sandbox", () => {
  it("keeps cwd, exported variables and functions between calls, and keeps reporting exit codes", async () => {
    const session = await openSession();
    try {
      expect(await session.bash("pwd")).toEqual({ output: "/workspace", isError: false });
      expect(
        await session.bash(
          "mkdir -p sub/deeper && cd sub && export GREETING='hello world' && greet() { echo \"hi $1\"; }",
        ),
      ).toEqual({ output: "Tool ran without output or errors", isError: false });
      expect(
        await session.bash('pwd; echo "$GREETING"; greet there; bash -c \'echo "child sees $GREETING"\''),
      ).toEqual({
        output: "/workspace/sub\nhello world\nhi there\nchild sees hello world",
        isError: false,
      });
      // A value with quotes, newlines and dollar signs survives as it was.
      await session.bash("export TRICKY=$'a \\'b\\' \"c\"\\n$HOME `x`'");
      expect((await session.bash('printf "%s|" "$TRICKY"')).output).toBe("a 'b' \"c\"\n$HOME `x`|");
      // Unsetting a variable of the sandbox's own environment sticks too.
      expect((await session.bash("printenv HOME || echo none")).output).not.toBe("none");
      await session.bash("unset HOME");
      expect((await session.bash("printenv HOME || echo none")).output).toBe("none");
      // A failing command keeps what it changed before failing; its exit code is reported.
      expect(await session.bash("cd deeper; export STEP=2; exit 3")).toEqual({
        output: "Exit code 3",
        isError: true,
      });
      expect((await session.bash('pwd; echo "$STEP"')).output).toBe("/workspace/sub/deeper\n2");
      // A syntax error on line 2: bash names the model's own line.
      const syntax = await session.bash("echo one\nif then");
      expect(syntax.isError).toBe(true);
      expect(syntax.output).toContain("line 2");
      expect((await session.bash("pwd")).output).toBe("/workspace/sub/deeper");
      // The saved state is not shown to the model, and its output is what the command printed.
      const listing = await session.bash("ls -a /workspace");
      expect(listing.output).toBe(".\n..\nsub");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("restart gives a fresh shell in /workspace and kills the old shell's background processes", async () => {
    const session = await openSession();
    try {
      await session.bash("mkdir -p a && cd a && export KEEP=1");
      const pid = (await session.bash("sleep 300 >/dev/null 2>&1 & echo $!")).output;
      expect(pid).toMatch(/^\d+$/);
      expect((await session.bash(`kill -0 ${pid} && echo alive`)).output).toBe("alive");
      expect(await session.call("bash", { restart: true })).toEqual({
        output: "bash session restarted",
        isError: false,
      });
      expect((await session.bash('pwd; echo "[$KEEP]"')).output).toBe("/workspace\n[]");
      const probe = await session.bash(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`);
      expect(probe.output).toBe("gone");
      // restart with a command runs it in the fresh shell.
      await session.bash("cd a && export AGAIN=1");
      expect(await session.call("bash", { restart: true, command: 'pwd; echo "[$AGAIN]"' })).toEqual({
        output: "/workspace\n[]",
        isError: false,
      });
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("timeout_ms kills the command and leaves the shell as it was before it", async () => {
    const session = await openSession();
    try {
      await session.bash("mkdir -p here && cd here");
      const startedAt = performance.now();
      const result = await session.call("bash", {
        command: "cd /tmp && export LATE=1 && sleep 20",
        timeout_ms: 700,
      });
      expect(performance.now() - startedAt).toBeLessThan(10_000);
      expect(result).toEqual({ output: "Command timed out after 700 ms", isError: true });
      expect((await session.bash('pwd; echo "[$LATE]"')).output).toBe("/workspace/here\n[]");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("keeps the shell across standby and resume, and when the backend's copy is gone (the sandbox's file)", async () => {
    const session = await openSession();
    try {
      await session.bash("mkdir -p proj && cd proj && export MODE=standby");
      const handle = session.sandbox.handle;
      if (!handle?.suspend) throw new Error("the bubblewrap sandbox has no suspend");
      await handle.suspend();
      expect(handle.state).toBe("standby");
      expect((await session.bash('pwd; echo "$MODE"')).output).toBe("/workspace/proj\nstandby");
      expect(handle.state).toBe("running");
      session.recreateTools();
      expect((await session.bash('pwd; echo "$MODE"')).output).toBe("/workspace/proj\nstandby");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("brings cwd and variables back in the fresh sandbox that replaces a dead one", async () => {
    const session = await openSession();
    try {
      await session.bash(
        "mkdir -p app/src && cd app/src && export STAGE=before-crash && note() { echo noted; }",
      );
      const dead = session.sandbox.handle;
      if (!dead) throw new Error("no sandbox");
      await dead.destroy(); // the sandbox died between two calls
      const result = await session.bash('pwd; echo "$STAGE"; note');
      expect(session.sandbox.handle?.id).not.toBe(dead.id);
      // The model is told the sandbox was replaced, and its shell is where it was.
      expect(result.output).toContain("/workspace/app/src\nbefore-crash\nnoted");
      expect(result.output).toContain("replaced with a new one");
      expect((await session.bash("pwd")).output).toBe("/workspace/app/src");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("runs a session's calls one at a time, so calls made together lose nothing", async () => {
    const session = await openSession();
    try {
      const [slow, fast] = await Promise.all([
        session.bash("sleep 0.3; export FIRST=1; echo slow"),
        session.bash("export SECOND=2; echo fast"),
      ]);
      expect([slow.output, fast.output]).toEqual(["slow", "fast"]);
      expect((await session.bash('echo "$FIRST$SECOND"')).output).toBe("12");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("rejects wrong input with a tool error, not a crash", async () => {
    const session = await openSession();
    try {
      expect(await session.call("bash", {})).toEqual({ output: "bash: command is required", isError: true });
      const wrongType = await session.call("bash", { command: "true", timeout_ms: "soon" });
      expect(wrongType.isError).toBe(true);
      expect(wrongType.output).toContain("InputValidationError: bash failed");
      expect(wrongType.output).toContain("`timeout_ms`");
      expect(wrongType.output).not.toContain("<tool_use_error>");
      const unknown = await session.call("bash", { command: "true", timeout: 5 });
      expect(unknown.output).toContain("An unexpected parameter `timeout` was provided");
      expect((await session.call("bash", "echo hi")).isError).toBe(true);
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);
});

const runc = await checkRuncHibernate();

describe.skipIf(!runc.isSupported)("toolset bash on a runc sandbox", () => {
  it("keeps the shell across hibernate (CRIU) and restore", async () => {
    if (!runc.isSupported) return;
    const runcProvider = createRuncSandboxProvider({
      criuPath: runc.criuPath,
      stateDir: path.join(root, "runc"),
    });
    const session = await openSession(runcProvider);
    try {
      await session.bash(
        "mkdir -p deep/er && cd deep/er && export SLEPT=no && sleep 600 >/dev/null 2>&1 & echo started",
      );
      await session.bash("cd deep/er && export SLEPT=yes");
      const handle = session.sandbox.handle;
      if (!handle?.hibernate) throw new Error("the runc sandbox has no hibernate");
      await handle.hibernate();
      expect(handle.state).toBe("hibernated");
      expect(
        (await session.bash('pwd; echo "$SLEPT"; pgrep -x sleep >/dev/null && echo sleeper')).output,
      ).toBe("/workspace/deep/er\nyes\nsleeper");
    } finally {
      await session.sandbox.destroy();
      await runcProvider.close();
    }
  }, 180_000);
});

describe.skipIf(!isRoot)("toolset file tools on a real sandbox", () => {
  it("read, write and edit with the toolset's schemas, the read-before-write rule and its result texts", async () => {
    const session = await openSession();
    try {
      expect(
        await session.call("write", { file_path: "notes/a.txt", content: "one\ntwo\nthree\ntwo\n" }),
      ).toEqual({
        output: "wrote 18 bytes to notes/a.txt",
        isError: false,
      });
      expect(await session.call("read", { file_path: "/workspace/notes/a.txt" })).toEqual({
        output: "one\ntwo\nthree\ntwo\n",
        isError: false,
      });
      expect(await session.call("read", { file_path: "notes/a.txt", view_range: [2, 3] })).toEqual({
        output: "two\nthree",
        isError: false,
      });
      expect((await session.call("read", { file_path: "notes/a.txt", view_range: [3, -1] })).output).toBe(
        "three\ntwo\n",
      );
      expect(await session.call("read", { file_path: "notes/a.txt", view_range: [1] })).toEqual({
        output: "read: view_range must be [start_line, end_line]",
        isError: true,
      });
      expect(
        await session.call("edit", { file_path: "notes/a.txt", old_string: "two", new_string: "2" }),
      ).toEqual({
        output: expect.stringMatching(/^edit: Found 2 matches of the string to replace/),
        isError: true,
      });
      expect(
        await session.call("edit", {
          file_path: "notes/a.txt",
          old_string: "two",
          new_string: "2",
          replace_all: true,
        }),
      ).toEqual({ output: "edited notes/a.txt (2 replacement(s))", isError: false });
      expect(
        await session.call("edit", { file_path: "notes/a.txt", old_string: "three", new_string: "3" }),
      ).toEqual({
        output: "edited notes/a.txt (1 replacement(s))",
        isError: false,
      });
      expect((await session.bash("cat notes/a.txt")).output).toBe("one\n2\n3\n2");
      // Changed behind the tools' back (by bash): must be read again before write or edit.
      await session.bash("sleep 0.01; echo changed > notes/a.txt");
      expect(await session.call("write", { file_path: "notes/a.txt", content: "x" })).toEqual({
        output:
          "write: File has been modified since read, either by the user or by a linter. Read it again before attempting to write it.",
        isError: true,
      });
      await session.bash("echo fresh > notes/b.txt");
      expect(
        await session.call("edit", { file_path: "notes/b.txt", old_string: "fresh", new_string: "y" }),
      ).toEqual({
        output: "edit: File has not been read yet. Read it first before writing to it.",
        isError: true,
      });
      expect(await session.call("read", { file_path: "missing.txt" })).toEqual({
        output: "read: File does not exist. Note: your current working directory is /workspace.",
        isError: true,
      });
      const wrong = await session.call("write", { file_path: "x.txt" });
      expect(wrong).toEqual({
        output:
          "InputValidationError: write failed due to the following issue:\nThe required parameter `content` is missing",
        isError: true,
      });
      const extra = await session.call("read", { file_path: "notes/a.txt", offset: 2 });
      expect(extra.output).toContain("An unexpected parameter `offset` was provided");
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);

  it("glob lists newest first and grep returns path:line:text, both relative to /workspace", async () => {
    const session = await openSession();
    try {
      await session.bash(
        "mkdir -p src && echo 'const a = 1' > src/old.ts && sleep 0.05 && echo 'let b = 2 // TODO' > src/new.ts && echo readme > README.md",
      );
      expect(await session.call("glob", { pattern: "**/*.ts" })).toEqual({
        output: "/workspace/src/new.ts\n/workspace/src/old.ts",
        isError: false,
      });
      expect(await session.call("glob", { pattern: "*.md", path: "src" })).toEqual({
        output: "no matches",
        isError: false,
      });
      expect((await session.call("glob", { pattern: "*.ts", path: "nowhere" })).output).toBe(
        "glob: Directory does not exist: /workspace/nowhere",
      );
      expect(await session.call("grep", { pattern: "TODO|const" })).toEqual({
        output: "/workspace/src/new.ts:1:let b = 2 // TODO\n/workspace/src/old.ts:1:const a = 1",
        isError: false,
      });
      expect(await session.call("grep", { pattern: "b =", path: "src/new.ts" })).toEqual({
        output: "1:let b = 2 // TODO",
        isError: false,
      });
      expect(await session.call("grep", { pattern: "absent" })).toEqual({
        output: "no matches",
        isError: false,
      });
      const bad = await session.call("grep", { pattern: "(" });
      expect(bad.isError).toBe(true);
      expect(bad.output).toMatch(/^grep: Invalid regular expression/);
      expect((await session.call("grep", { pattern: 5 })).output).toContain(
        "InputValidationError: grep failed",
      );
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);
});

describe.skipIf(!isRoot)("toolset tools driven by the loop", () => {
  it("runs a scripted turn: the shell carries over between steps and read-before-edit holds across them", async () => {
    const session = await openSession();
    const store = new MemorySessionStore();
    const created = await store.createSession({ orgId: "org_1", userId: "usr_1", model: "x", system: null });
    await store.startTurn("org_1", created.id, "go");
    const call = (id: string, name: string, input: Record<string, unknown>) => ({
      toolCalls: [{ id, name, input }],
    });
    try {
      await runSession(
        {
          store,
          tools: createToolsetTools(ALL_ON).tools,
          limits: { maxSteps: 20, maxModelAttempts: 1 },
          sleep: async () => undefined,
          random: () => 0.5,
          publish: () => undefined,
        },
        {
          sessionId: created.id,
          model: new ScriptedModel([
            call("c1", "bash", {
              command: "mkdir -p pkg && cd pkg && echo 'version = 1' > conf.ini && export BUILD=fast",
            }),
            call("c2", "edit", { file_path: "pkg/conf.ini", old_string: "1", new_string: "2" }),
            call("c3", "read", { file_path: "pkg/conf.ini" }),
            call("c4", "edit", { file_path: "pkg/conf.ini", old_string: "1", new_string: "2" }),
            call("c5", "bash", { command: 'cat conf.ini; echo "$BUILD"' }),
            { text: "done" },
          ]),
          fs: session.context.fs,
          exec: session.context.exec,
          systemPrompt: "test",
          cwd: "/workspace",
        },
        new AbortController().signal,
      );
      const events = await store.readEvents(created.id, { afterSeq: 0, limit: 1000 });
      const output = (id: string) => {
        const end = events.find(
          (event): event is Extract<SessionEvent, { type: "tool.end" }> =>
            event.type === "tool.end" && event.toolCallId === id,
        );
        return end && { output: end.output, isError: end.isError };
      };
      expect(output("c2")).toEqual({
        output: "edit: File has not been read yet. Read it first before writing to it.",
        isError: true,
      });
      expect(output("c3")).toEqual({ output: "version = 1\n", isError: false });
      expect(output("c4")).toEqual({ output: "edited pkg/conf.ini (1 replacement(s))", isError: false });
      expect(output("c5")).toEqual({ output: "version = 2\nfast", isError: false });
    } finally {
      await session.sandbox.destroy();
    }
  }, 120_000);
});

describe("createToolsetTools", () => {
  it("offers the enabled tools by the toolset's names and says which it cannot offer", () => {
    const { tools, unavailable } = createToolsetTools(ALL_ON);
    expect(tools.map((tool) => tool.name)).toEqual(["bash", "read", "write", "edit", "glob", "grep"]);
    expect(unavailable.map((entry) => entry.name)).toEqual(["web_fetch", "web_search"]);
    expect(unavailable[1]?.reason).toMatch(/needs a search backend/);
    const some = createToolsetTools({
      bash: { enabled: false, permission: "always_allow" },
      read: { enabled: true, permission: "always_ask" },
    });
    expect(some.tools.map((tool) => tool.name)).toEqual(["read"]);
    expect(some.unavailable).toEqual([]);
  });
});
