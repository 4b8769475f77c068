/**
 * What the model is shown for the agent toolset: the toolset's names and exactly the input fields of the
 * SDK's `BetaManagedAgentsAgentToolset20260401{Bash,Read,Write,Edit,Glob,Grep}Input` (1.17.0), with the
 * same required ones; and which tools are offered for which settings and dependencies.
 */
import { describe, expect, it } from "vitest";
import type { AgentConfig } from "../../agents/agent-config.js";
import type { ExecRequest, ExecResult } from "../../sandbox/sandbox.js";
import { toolDefinitions } from "../create-default-tools.js";
import { createFileStateTracker } from "../file-state-tracker.js";
import type { ToolContext } from "../tool.js";
import { createToolsetTools, type ToolsetSettings, WEB_SEARCH_UNAVAILABLE } from "./create-toolset-tools.js";
import type { WebFetcher, WebSearcher } from "./web-tools.js";

const on = { enabled: true, permission: "always_allow" } as const;
const ALL: ToolsetSettings = {
  bash: on,
  read: on,
  write: on,
  edit: on,
  glob: on,
  grep: on,
  web_fetch: on,
  web_search: on,
};
const fetcher: WebFetcher = { fetch: async () => ({ kind: "refused", reason: "test" }) };
const searcher: WebSearcher = { search: async () => [] };

describe("createToolsetTools", () => {
  it("shows the SDK's input fields, required as the SDK requires them, and nothing else", () => {
    const { tools } = createToolsetTools(ALL, { webFetcher: fetcher, webSearcher: searcher });
    const shapes = Object.fromEntries(
      toolDefinitions(tools).map((definition) => {
        const schema = definition.inputSchema as {
          properties: Record<string, { type?: string }>;
          required?: string[];
          additionalProperties?: boolean;
        };
        expect(schema.additionalProperties).toBe(false);
        return [
          definition.name,
          {
            fields: Object.fromEntries(
              Object.entries(schema.properties).map(([key, value]) => [key, value.type]),
            ),
            required: [...(schema.required ?? [])].sort(),
          },
        ];
      }),
    );
    expect(shapes).toEqual({
      bash: { fields: { command: "string", restart: "boolean", timeout_ms: "integer" }, required: [] },
      read: { fields: { file_path: "string", view_range: "array" }, required: ["file_path"] },
      write: { fields: { file_path: "string", content: "string" }, required: ["content", "file_path"] },
      edit: {
        fields: { file_path: "string", old_string: "string", new_string: "string", replace_all: "boolean" },
        required: ["file_path", "new_string", "old_string"],
      },
      glob: { fields: { pattern: "string", path: "string" }, required: ["pattern"] },
      grep: { fields: { pattern: "string", path: "string" }, required: ["pattern"] },
      web_fetch: { fields: { url: "string" }, required: ["url"] },
      web_search: { fields: { query: "string" }, required: ["query"] },
    });
  });

  it("offers only enabled tools, and names the enabled ones it cannot offer", () => {
    // What a session pins (AgentConfig) is what it takes.
    const pinned: AgentConfig["toolset"] = { glob: on };
    expect(createToolsetTools(pinned).tools.map((tool) => tool.name)).toEqual(["glob"]);
    expect(createToolsetTools({}).tools).toEqual([]);
    const partial = createToolsetTools({ bash: on, grep: { enabled: false, permission: "always_allow" } });
    expect(partial.tools.map((tool) => tool.name)).toEqual(["bash"]);
    const noSearch = createToolsetTools(ALL, { webFetcher: fetcher });
    expect(noSearch.tools.map((tool) => tool.name)).toContain("web_fetch");
    expect(noSearch.tools.map((tool) => tool.name)).not.toContain("web_search");
    expect(noSearch.unavailable).toEqual([{ name: "web_search", reason: WEB_SEARCH_UNAVAILABLE }]);
  });

  it("keeps each call's shell state apart (one call per session)", async () => {
    const commands: string[] = [];
    const context = {
      fs: undefined as unknown as ToolContext["fs"],
      fileState: createFileStateTracker(),
      signal: new AbortController().signal,
      toolCallId: "call_1",
      cwd: "/workspace",
      // Answers like the sandbox would: the trap's trailer, between the call's own markers.
      exec: async (request: ExecRequest): Promise<ExecResult> => {
        commands.push(request.command);
        const start = /__outrig_shell_state_[0-9a-f]+__/.exec(request.command)?.[0] ?? "";
        const end = /__outrig_shell_state_end_[0-9a-f]+__/.exec(request.command)?.[0] ?? "";
        return {
          exitCode: 0,
          signal: null,
          stdout: `ok\n${start}\nbuiltin export MARK=${commands.length}\n${end}\n`,
          stderr: "",
          isTimedOut: false,
          isTruncated: false,
          durationMs: 1,
        };
      },
    } satisfies ToolContext;
    const [first] = createToolsetTools({ bash: on }).tools;
    const [second] = createToolsetTools({ bash: on }).tools;
    if (!first || !second) throw new Error("bash not offered");
    expect(await first.execute({ command: "true" }, context)).toEqual({ output: "ok", isError: false });
    await first.execute({ command: "true" }, context);
    await second.execute({ command: "true" }, context);
    // The first tool sends back the state its own last call saved; the second has none of it.
    expect(commands[1]).toContain("builtin export MARK=1");
    expect(commands[2]).not.toContain("MARK=");
  });
});
