/**
 * Database-backed /memories through every tool, bash included: what one user's session writes under
 * /memories/org is read by another user's session with Read and with `cat`; /memories/me stays private;
 * another org sees nothing; bash cannot write there and is told to use Write or Edit.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, resultText, stopReason, waitForIdle } from "./api-session.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

/** A tool call's result as the API's events show it: the call's name, its text, whether it failed. */
interface ToolResult {
  name: string;
  output: string;
  isError: boolean;
}

let fakeLlm: FakeLlmServer;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      ANTHROPIC_API_KEY: "memories",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
      OPENAI_API_KEY: "memories",
      OPENAI_BASE_URL: `${fakeLlm.url}/v1`,
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** The JSON body of the fake LLM's `index`-th recorded request; fails the test when there is none. */
function requestBody(index: number): unknown {
  const request = fakeLlm.requests[index];
  if (!request) throw new Error(`the fake LLM recorded no request #${index}`);
  return request.body;
}

async function keyFor(org: string, user: string): Promise<string> {
  const result = await runCli(["keys", "create", "--org", org, "--user", user], { OUTRIG_HOME: home });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** Runs one session with `key` through `turns` (the SDK with that key) and returns its tool results by call order. */
async function runSession(
  key: string,
  turns: unknown[],
  model = "anthropic:memories",
  skillIds: readonly string[] = [],
): Promise<ToolResult[]> {
  fakeLlm.setScript({ turns: turns as never });
  const client = apiClient({ url: server.url, apiKey: key });
  const { session } = await createAgentSession(client, {
    model,
    prompt: "go",
    skills: skillIds.map((skillId) => ({ type: "custom" as const, skill_id: skillId })),
  });
  const events = await waitForIdle(client, session.id, 120_000);
  expect(stopReason(events)).toBe("end_turn");
  const names = new Map<string, string>();
  const results: ToolResult[] = [];
  for (const event of events) {
    if (event.type === "agent.tool_use") names.set(event.id, event.name);
    if (event.type === "agent.tool_result")
      results.push({
        name: names.get(event.tool_use_id) ?? "",
        output: resultText(event),
        isError: event.is_error === true,
      });
  }
  return results;
}

describe("memories shared through the database", () => {
  it("are shared with the org through Read and cat, private under /memories/me, invisible to other orgs", async () => {
    const alice = server.apiKey;
    const bob = await keyFor("default", "bob");
    const mallory = await keyFor("other-org", "mallory");

    const written = await runSession(alice, [
      {
        toolCalls: [
          {
            name: "write",
            input: { file_path: "/memories/org/notes.md", content: "deploys need a ticket\n" },
          },
        ],
      },
      {
        toolCalls: [
          { name: "write", input: { file_path: "/memories/me/private.md", content: "alice only\n" } },
        ],
      },
      { text: "noted" },
    ]);
    expect(written.map((event) => event.isError)).toEqual([false, false]);

    const read = await runSession(bob, [
      { toolCalls: [{ name: "read", input: { file_path: "/memories/org/notes.md" } }] },
      { toolCalls: [{ name: "bash", input: { command: "cat /memories/org/notes.md; ls -A /memories/me" } }] },
      { toolCalls: [{ name: "read", input: { file_path: "/memories/me/private.md" } }] },
      { toolCalls: [{ name: "bash", input: { command: "echo overwritten > /memories/org/notes.md" } }] },
      { text: "read" },
    ]);
    expect(read[0]).toMatchObject({
      isError: false,
      output: expect.stringContaining("deploys need a ticket"),
    });
    expect(read[1]?.output).toContain("deploys need a ticket");
    expect(read[1]?.output).not.toContain("private.md");
    expect(read[2]).toMatchObject({ isError: true });
    expect(read[3]).toMatchObject({
      isError: true,
      output: expect.stringContaining("use the Write or Edit tool"),
    });

    const foreign = await runSession(mallory, [
      { toolCalls: [{ name: "read", input: { file_path: "/memories/org/notes.md" } }] },
      {
        toolCalls: [
          { name: "bash", input: { command: "cat /memories/org/notes.md; find /memories /skills -type f" } },
        ],
      },
      { text: "nothing" },
    ]);
    expect(foreign[0]).toMatchObject({ isError: true });
    expect(foreign[1]?.output).not.toContain("deploys need a ticket");
    expect(foreign[1]?.output).not.toContain("notes.md\n");
  }, 120_000);
});

describe("skills and bash on database mounts", () => {
  it("imports a real skill with `outrig skills add`, lists it in the prompt, and bash reads the same bytes as Read", async () => {
    const folder = path.join(import.meta.dirname, "__fixtures__/skills/brand-guidelines");
    const imported = await runCli(["skills", "add", folder], {
      OUTRIG_HOME: home,
      OUTRIG_SERVER: server.url,
    });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain("imported skill brand-guidelines");
    const skillId = /\((skill_[A-Za-z0-9]+),/.exec(imported.stdout)?.[1] ?? "";
    const invalid = await fs.mkdtemp(path.join(home, "bad-skill-"));
    await fs.writeFile(path.join(invalid, "SKILL.md"), "---\nname: Not A Valid Name\n---\nbody\n");
    const rejected = await runCli(["skills", "add", invalid], {
      OUTRIG_HOME: home,
      OUTRIG_SERVER: server.url,
    });
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatch(/skill_invalid: .*name/);

    const skillText = await fs.readFile(path.join(folder, "SKILL.md"), "utf8");
    const noteText = "first line\nsecond line mentions ticket\n";
    const corpus = [
      "cat /skills/brand-guidelines/SKILL.md",
      "cat /memories/me/corpus.md",
      "grep -r ticket /memories/me",
      "find /memories/me -type f -name 'corpus*'",
      "ls -R /skills",
      "head -n 1 /memories/me/corpus.md",
      "wc -c < /memories/me/corpus.md",
      "sed -i s/first/1st/ /memories/me/corpus.md",
      "echo replaced > /memories/me/corpus.md",
      "rm /memories/me/corpus.md",
    ];
    const before = fakeLlm.requests.length;
    const results = await runSession(
      server.apiKey,
      [
        { toolCalls: [{ name: "write", input: { file_path: "/memories/me/corpus.md", content: noteText } }] },
        { toolCalls: [{ name: "read", input: { file_path: "/skills/brand-guidelines/SKILL.md" } }] },
        ...corpus.map((command) => ({ toolCalls: [{ name: "bash", input: { command } }] })),
        { toolCalls: [{ name: "read", input: { file_path: "/memories/me/corpus.md" } }] },
        { text: "done" },
      ],
      "anthropic:memories",
      [skillId],
    );
    const system = JSON.stringify(fakeLlm.requests[before]?.body);
    expect(system).toContain("brand-guidelines");
    expect(system).toContain("/skills/brand-guidelines/SKILL.md");
    // Read shows the skill line-numbered; cat shows exactly the stored bytes.
    const readLines = String(results[1]?.output)
      .split("\n")
      .map((line) => line.replace(/^\s*\d+\t/, ""));
    expect(readLines.join("\n")).toContain(skillText.split("\n")[1] ?? "");
    const [skillCat, noteCat, grep, find, ls, head, wc, sed, redirect, remove] = results.slice(2, 12);
    expect(skillCat?.output).toBe(skillText.trimEnd());
    expect(noteCat?.output).toBe(noteText.trimEnd());
    expect(grep?.output).toBe("/memories/me/corpus.md:second line mentions ticket");
    expect(find?.output).toBe("/memories/me/corpus.md");
    expect(ls?.output).toContain("brand-guidelines");
    expect(head?.output).toBe("first line");
    expect(wc?.output).toBe(String(Buffer.byteLength(noteText)));
    for (const write of [sed, redirect, remove]) {
      expect(write).toMatchObject({
        isError: true,
        output: expect.stringContaining("use the Write or Edit tool"),
      });
    }
    // Nothing bash tried changed the file.
    expect(String(results[12]?.output)).toContain("first line");

    // The same files through the CLI: list, read, write a new version, see the history, delete.
    const cli = (args: string[]) =>
      runCli(["files", ...args], { OUTRIG_HOME: home, OUTRIG_SERVER: server.url });
    expect((await cli(["ls", "/skills"])).stdout).toContain("brand-guidelines/SKILL.md");
    expect((await cli(["cat", "/memories/me/corpus.md"])).stdout).toBe(noteText);
    const local = path.join(home, "note-v2.md");
    await fs.writeFile(local, "second version\n");
    expect((await cli(["put", "/memories/me/corpus.md", local])).code).toBe(0);
    expect((await cli(["cat", "/memories/me/corpus.md"])).stdout).toBe("second version\n");
    expect((await cli(["history", "/memories/me/corpus.md"])).stdout.trim().split("\n")).toHaveLength(2);
    expect((await cli(["rm", "/memories/me/corpus.md"])).code).toBe(0);
    const missing = await cli(["cat", "/memories/me/corpus.md"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not_found");
  }, 120_000);

  it("keeps a skill script's executable bit through `skills add`, storage, a new version and the sandbox", async () => {
    const folder = await fs.mkdtemp(path.join(home, "script-skill-"));
    const skill = path.join(folder, "run-report");
    await fs.mkdir(path.join(skill, "scripts"), { recursive: true });
    await fs.writeFile(
      path.join(skill, "SKILL.md"),
      "---\nname: run-report\ndescription: Runs the report script.\n---\nRun scripts/report.sh.\n",
    );
    await fs.writeFile(path.join(skill, "scripts/report.sh"), "#!/bin/sh\necho report ran\n", {
      mode: 0o755,
    });
    await fs.chmod(path.join(skill, "scripts/report.sh"), 0o755);
    const env = { OUTRIG_HOME: home, OUTRIG_SERVER: server.url };
    const imported = await runCli(["skills", "add", skill], env);
    expect(imported.code, imported.stderr).toBe(0);
    const read = await fetch(
      `${server.url}/v1/file_store/content?path=/skills/run-report/scripts/report.sh`,
      {
        headers: { "x-api-key": server.apiKey },
      },
    );
    expect(read.headers.get("x-file-executable")).toBe("true");
    // Skill folders are read-only in the file store: a change is a new version through the Skills API,
    // which keeps the bit.
    const replacement = path.join(folder, "report-v2.sh");
    await fs.writeFile(replacement, "#!/bin/sh\necho report v2 ran\n");
    const put = await runCli(["files", "put", "/skills/run-report/scripts/report.sh", replacement], env);
    expect(put.code).toBe(1);
    expect(put.stderr).toContain("permission_denied");
    await fs.writeFile(path.join(skill, "scripts/report.sh"), "#!/bin/sh\necho report v2 ran\n");
    const versioned = await runCli(["skills", "add", skill], env);
    expect(versioned.code, versioned.stderr).toBe(0);
    expect(versioned.stdout).toContain("added a version to skill run-report");
    const skillId = /\((skill_[A-Za-z0-9]+),/.exec(imported.stdout)?.[1] ?? "";
    const results = await runSession(
      server.apiKey,
      [
        {
          toolCalls: [
            {
              name: "bash",
              input: {
                command:
                  "stat -c '%a %n' /skills/run-report/SKILL.md /skills/run-report/scripts/report.sh && /skills/run-report/scripts/report.sh",
              },
            },
          ],
        },
        { text: "done" },
      ],
      "anthropic:memories",
      [skillId],
    );
    expect(results[0]).toMatchObject({
      isError: false,
      output: "644 /skills/run-report/SKILL.md\n755 /skills/run-report/scripts/report.sh\nreport v2 ran",
    });
  }, 120_000);
});

describe("Anthropic's memory tool", () => {
  it("is offered to Anthropic models as memory_20250818 and served by the same store; other providers do not get it", async () => {
    const before = fakeLlm.requests.length;
    const results = await runSession(server.apiKey, [
      {
        toolCalls: [
          {
            name: "memory",
            input: {
              command: "create",
              path: "/memories/me/tool-note.md",
              file_text: "remembered by the tool\n",
            },
          },
        ],
      },
      { toolCalls: [{ name: "read", input: { file_path: "/memories/me/tool-note.md" } }] },
      { text: "done" },
    ]);
    const tools = (requestBody(before) as { tools: { name: string; type?: string }[] }).tools;
    expect(tools.find((tool) => tool.name === "memory")).toMatchObject({ type: "memory_20250818" });
    expect(results[0]).toMatchObject({
      isError: false,
      output: expect.stringContaining("/memories/me/tool-note.md"),
    });
    expect(results[1]?.output).toContain("remembered by the tool");

    // Other providers never see it (adding memory tools to models not trained on them makes them worse).
    const openAiBefore = fakeLlm.requests.length;
    await runSession(server.apiKey, [{ text: "hi" }], "openai-chat:gpt-4.1");
    const openAiTools = (requestBody(openAiBefore) as { tools: { function: { name: string } }[] }).tools;
    expect(openAiTools.map((tool) => tool.function.name)).not.toContain("memory");
    expect(openAiTools.map((tool) => tool.function.name)).toContain("read");
  }, 120_000);
});
