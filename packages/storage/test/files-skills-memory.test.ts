import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildSkillsPrompt,
  createDefaultTools,
  createFileStateTracker,
  createMemoryTool,
  loadMemoryInstructions,
  loadSkills,
  MountTable,
  parseSkill,
  type SkillFile,
  type Tool,
  type ToolContext,
} from "@outrig/core";
import { createTestDatabase, MemoryFileSystem, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabase,
  createDatabaseMounts,
  createMountMirror,
  type Database,
  importSkill,
  type MirrorApplyEvent,
  PostgresFileStore,
} from "../src/index.js";

const FIXTURES = fileURLToPath(new URL("./__fixtures__/skills/", import.meta.url));
const encode = (text: string) => new TextEncoder().encode(text);

async function readFolder(directory: string, prefix = ""): Promise<SkillFile[]> {
  const files: SkillFile[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await readFolder(path.join(directory, entry.name), relative)));
    else files.push({ path: relative, content: await readFile(path.join(directory, entry.name)) });
  }
  return files;
}

const skillMd = (frontmatter: string, body = "# Body\n") => [
  { path: "SKILL.md", content: encode(`---\n${frontmatter}\n---\n${body}`) },
];

function context(fs: MountTable): ToolContext {
  return {
    fs,
    exec: () => Promise.reject(new Error("no sandbox")),
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_1",
    cwd: "/workspace",
  };
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

describe("Agent Skills parsing", () => {
  it.each(["brand-guidelines", "internal-comms", "theme-factory"])(
    "accepts the real skill %s",
    async (name) => {
      const files = await readFolder(path.join(FIXTURES, name));
      const parsed = parseSkill(files, { directoryName: name });
      if (!parsed.isValid) throw new Error(parsed.reasons.join("; "));
      expect(parsed.skill.name).toBe(name);
      expect(parsed.skill.license).toBe("Complete terms in LICENSE.txt");
      expect(parsed.skill.description.length).toBeGreaterThan(50);
      expect(parsed.skill.body.startsWith("---")).toBe(false);
    },
  );

  it("reads the optional fields", () => {
    const parsed = parseSkill(
      skillMd(
        'name: pdf-processing\ndescription: >\n  Extract PDF text.\n  Use for PDFs.\nlicense: Apache-2.0\ncompatibility: Requires git\nmetadata:\n  author: example-org\n  version: "1.0"\nallowed-tools: Bash(git:*) Read',
      ),
    );
    expect(parsed).toMatchObject({
      isValid: true,
      skill: {
        name: "pdf-processing",
        description: "Extract PDF text. Use for PDFs.",
        license: "Apache-2.0",
        compatibility: "Requires git",
        metadata: { author: "example-org", version: "1.0" },
        allowedTools: ["Bash(git:*)", "Read"],
        body: "# Body\n",
      },
    });
  });

  it.each([
    [
      "name: PDF-Processing\ndescription: d",
      'name "PDF-Processing" may only contain lowercase letters a-z, digits 0-9 and hyphens',
    ],
    ["name: -pdf\ndescription: d", 'name "-pdf" must not start or end with a hyphen'],
    ["name: pdf--processing\ndescription: d", 'name "pdf--processing" must not contain consecutive hyphens'],
    [`name: ${"a".repeat(65)}\ndescription: d`, "name must be 1-64 characters (got 65)"],
    ["description: d", "name is required"],
    ["name: ok", "description is required"],
    ['name: ok\ndescription: ""', "description must not be empty"],
    [`name: ok\ndescription: ${"d".repeat(1025)}`, "description must be at most 1024 characters (got 1025)"],
    [
      `name: ok\ndescription: d\ncompatibility: ${"c".repeat(501)}`,
      "compatibility must be 1-500 characters (got 501)",
    ],
    ["name: ok\ndescription: d\nmetadata: flat", "metadata must be a map from string keys to string values"],
    ["name: ok\ndescription: d\nversion: 2", 'unknown frontmatter field "version"'],
    [
      "name: ok\ndescription: [a, b]",
      "frontmatter: line 2: flow collections, anchors and tags are not supported",
    ],
    ['name: ok\ndescription: "unterminated', "frontmatter: line 2: unterminated double-quoted string"],
  ])("rejects frontmatter %j", (frontmatter, reason) => {
    const parsed = parseSkill(skillMd(frontmatter));
    expect(parsed.isValid).toBe(false);
    if (!parsed.isValid) expect(parsed.reasons).toContain(reason);
  });

  it("rejects a folder without SKILL.md, without frontmatter, with a mismatched name or escaping paths", () => {
    expect(parseSkill([{ path: "README.md", content: encode("x") }])).toEqual({
      isValid: false,
      reasons: ["the folder has no SKILL.md"],
    });
    expect(parseSkill([{ path: "SKILL.md", content: encode("# no frontmatter") }])).toEqual({
      isValid: false,
      reasons: ['SKILL.md must start with YAML frontmatter between "---" lines'],
    });
    expect(parseSkill(skillMd("name: one\ndescription: d"), { directoryName: "two" })).toEqual({
      isValid: false,
      reasons: ['name "one" must match the folder name "two"'],
    });
    const escaping = parseSkill([
      ...skillMd("name: ok\ndescription: d"),
      { path: "../x", content: encode("") },
    ]);
    expect(escaping).toEqual({
      isValid: false,
      reasons: ['file path "../x" must not contain empty, "." or ".." segments'],
    });
  });
});

describe("skills and memories on Postgres", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let store: PostgresFileStore;
  let orgId: string;
  let otherOrgId: string;
  let adminId: string;
  let aliceId: string;
  let bobId: string;
  let mirrorRoot: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    store = new PostgresFileStore(database.pool);
    orgId = (await database.auth.createOrg("skills-org")).id;
    otherOrgId = (await database.auth.createOrg("skills-other")).id;
    adminId = (await database.auth.createUser(orgId, { name: "admin", role: "admin" })).id;
    aliceId = (await database.auth.createUser(orgId, { name: "alice", role: "member" })).id;
    bobId = (await database.auth.createUser(orgId, { name: "bob", role: "member" })).id;
    mirrorRoot = await mkdtemp(path.join(os.tmpdir(), "outrig-mirror-"));
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
    if (mirrorRoot) await rm(mirrorRoot, { recursive: true, force: true });
  });

  const mounts = (userId: string, role = "member", org = orgId) =>
    new MountTable(
      createDatabaseMounts({ store, orgId: org, userId, role, sessionId: `ses_${userId}`, turn: 1 }),
    );

  it("imports the real skills and lists only names and descriptions in the prompt", async () => {
    for (const name of ["brand-guidelines", "internal-comms", "theme-factory"]) {
      await importSkill(store, orgId, await readFolder(path.join(FIXTURES, name)), {
        directoryName: name,
        author: { userId: adminId },
      });
    }
    await expect(importSkill(store, orgId, skillMd("name: Bad\ndescription: d"))).rejects.toThrow(
      'Invalid skill: name "Bad" may only contain lowercase letters a-z, digits 0-9 and hyphens',
    );
    const member = mounts(aliceId);
    const loaded = await loadSkills(member);
    expect(loaded.rejected).toEqual([]);
    expect(loaded.skills.map((skill) => skill.location)).toEqual([
      "/skills/brand-guidelines/SKILL.md",
      "/skills/internal-comms/SKILL.md",
      "/skills/theme-factory/SKILL.md",
    ]);
    const prompt = buildSkillsPrompt(loaded.skills);
    expect(prompt).toContain(
      "<skill>\n<name>internal-comms</name>\n<description>A set of resources to help me write all kinds of internal communications",
    );
    expect(prompt).not.toContain("When to use this skill");
    expect(buildSkillsPrompt([])).toBe("");
    // Bodies and extra files are there for Read.
    const example = new TextDecoder().decode(
      await member.read("/skills/internal-comms/examples/faq-answers.md"),
    );
    expect(example.length).toBeGreaterThan(100);
    // Another org sees no skills.
    await expect(loadSkills(mounts(adminId, "admin", otherOrgId))).resolves.toEqual({
      skills: [],
      rejected: [],
    });
    // Re-importing an unchanged skill writes nothing new.
    const before = await store.history({ orgId, namespace: "skills" }, "/theme-factory/SKILL.md");
    await importSkill(store, orgId, await readFolder(path.join(FIXTURES, "theme-factory")));
    await expect(
      store.history({ orgId, namespace: "skills" }, "/theme-factory/SKILL.md"),
    ).resolves.toHaveLength(before.length);
  });

  it("loads org then user instruction files, preferring AGENTS.md over CLAUDE.md", async () => {
    const alice = mounts(aliceId);
    await alice.write("/memories/org/AGENTS.md", encode("Use British spelling.\n"));
    await alice.write("/memories/org/CLAUDE.md", encode("ignored: AGENTS.md wins\n"));
    await alice.write("/memories/me/CLAUDE.md", encode("Call me Al.\n"));
    const loaded = await loadMemoryInstructions(alice);
    expect(loaded.sources.map((source) => source.path)).toEqual([
      "/memories/org/AGENTS.md",
      "/memories/me/CLAUDE.md",
    ]);
    expect(loaded.prompt).toContain("Contents of /memories/org/AGENTS.md:\n\nUse British spelling.");
    expect(loaded.prompt).toContain("Contents of /memories/me/CLAUDE.md:\n\nCall me Al.");
    expect(loaded.prompt).not.toContain("ignored");
    const bob = await loadMemoryInstructions(mounts(bobId));
    expect(bob.sources.map((source) => source.path)).toEqual(["/memories/org/AGENTS.md"]);
    await expect(loadMemoryInstructions(mounts(adminId, "admin", otherOrgId))).resolves.toEqual({
      sources: [],
      prompt: "",
    });
  });

  it("runs the memory tool commands with Anthropic's result texts", async () => {
    const memory = createMemoryTool();
    const run = (input: unknown, ctx: ToolContext) => memory.execute(input, ctx);
    const ctx = context(mounts(bobId));
    expect(
      await run(
        { command: "create", path: "/memories/me/notes.txt", file_text: "Hello World\nThis is line two\n" },
        ctx,
      ),
    ).toEqual({
      isError: false,
      output: "File created successfully at: /memories/me/notes.txt",
    });
    expect(await run({ command: "create", path: "/memories/me/notes.txt", file_text: "x" }, ctx)).toEqual({
      isError: true,
      output: "Error: File /memories/me/notes.txt already exists",
    });
    expect((await run({ command: "view", path: "/memories/me/notes.txt" }, ctx)).output).toBe(
      "Here's the content of /memories/me/notes.txt with line numbers:\n     1\tHello World\n     2\tThis is line two\n     3\t",
    );
    expect(
      (await run({ command: "view", path: "/memories/me/notes.txt", view_range: [2, -1] }, ctx)).output,
    ).toBe(
      "Here's the content of /memories/me/notes.txt with line numbers:\n     2\tThis is line two\n     3\t",
    );
    expect(await run({ command: "view", path: "/memories/me/missing.txt" }, ctx)).toEqual({
      isError: true,
      output: "The path /memories/me/missing.txt does not exist. Please provide a valid path.",
    });
    expect(
      await run(
        { command: "str_replace", path: "/memories/me/notes.txt", old_str: "line two", new_str: "line 2" },
        ctx,
      ),
    ).toEqual({
      isError: false,
      output: "The memory file has been edited.\n     1\tHello World\n     2\tThis is line 2\n     3\t",
    });
    expect(
      (
        await run(
          { command: "str_replace", path: "/memories/me/notes.txt", old_str: "nope", new_str: "x" },
          ctx,
        )
      ).output,
    ).toBe("No replacement was performed, old_str `nope` did not appear verbatim in /memories/me/notes.txt.");
    expect(
      (await run({ command: "str_replace", path: "/memories/me/notes.txt", old_str: "l", new_str: "L" }, ctx))
        .output,
    ).toBe(
      "No replacement was performed. Multiple occurrences of old_str `l` in lines: 1, 2. Please ensure it is unique",
    );
    expect(
      (await run({ command: "str_replace", path: "/memories/me", old_str: "a", new_str: "b" }, ctx)).output,
    ).toBe("Error: The path /memories/me does not exist. Please provide a valid path.");
    expect(
      await run(
        { command: "insert", path: "/memories/me/notes.txt", insert_line: 1, insert_text: "Inserted\n" },
        ctx,
      ),
    ).toEqual({ isError: false, output: "The file /memories/me/notes.txt has been edited." });
    expect(new TextDecoder().decode(await ctx.fs.read("/memories/me/notes.txt"))).toBe(
      "Hello World\nInserted\nThis is line 2\n",
    );
    expect(
      (
        await run(
          { command: "insert", path: "/memories/me/notes.txt", insert_line: 9, insert_text: "x" },
          ctx,
        )
      ).output,
    ).toBe(
      "Error: Invalid `insert_line` parameter: 9. It should be within the range of lines of the file: [0, 3]",
    );
    expect(
      (await run({ command: "insert", path: "/memories/me/gone.txt", insert_line: 0, insert_text: "x" }, ctx))
        .output,
    ).toBe("Error: The path /memories/me/gone.txt does not exist");
    await run({ command: "create", path: "/memories/me/sub/deep/far.txt", file_text: "x".repeat(1536) }, ctx);
    expect((await run({ command: "view", path: "/memories/me" }, ctx)).output).toBe(
      [
        "Here're the files and directories up to 2 levels deep in /memories/me, excluding hidden items and node_modules:",
        "1.5K\t/memories/me",
        "36\t/memories/me/notes.txt",
        "1.5K\t/memories/me/sub",
        "1.5K\t/memories/me/sub/deep",
      ].join("\n"),
    );
    expect(
      await run(
        { command: "rename", old_path: "/memories/me/notes.txt", new_path: "/memories/me/sub/deep/far.txt" },
        ctx,
      ),
    ).toEqual({
      isError: true,
      output: "Error: The destination /memories/me/sub/deep/far.txt already exists",
    });
    expect(
      await run({ command: "rename", old_path: "/memories/me/sub", new_path: "/memories/me/moved" }, ctx),
    ).toEqual({
      isError: false,
      output: "Successfully renamed /memories/me/sub to /memories/me/moved",
    });
    expect((await run({ command: "view", path: "/memories/me/moved/deep/far.txt" }, ctx)).isError).toBe(
      false,
    );
    expect(
      (await run({ command: "rename", old_path: "/memories/me/nothing", new_path: "/memories/me/x" }, ctx))
        .output,
    ).toBe("Error: The path /memories/me/nothing does not exist");
    expect(await run({ command: "delete", path: "/memories/me/moved" }, ctx)).toEqual({
      isError: false,
      output: "Successfully deleted /memories/me/moved",
    });
    expect((await run({ command: "delete", path: "/memories/me/moved" }, ctx)).output).toBe(
      "Error: The path /memories/me/moved does not exist",
    );
    for (const bad of [
      "/etc/passwd",
      "/memories/../etc/passwd",
      "/memories/me/%2e%2e/x",
      "/memoriesX/a",
      "/memories/me/a\\..\\b",
    ]) {
      expect(await run({ command: "view", path: bad }, ctx)).toEqual({
        isError: true,
        output: `Error: The path ${bad} is not allowed. Memory paths must start with /memories and must not contain "." or ".." segments.`,
      });
    }
    expect(await run({ command: "create", path: "/memories/loose.txt", file_text: "x" }, ctx)).toEqual({
      isError: true,
      output:
        "Error: /memories itself holds no files: write under /memories/me/ (private to you) or /memories/org/ (shared with your org).",
    });
    const root = (await run({ command: "view", path: "/memories" }, ctx)).output.split("\n");
    expect(root[0]).toBe(
      "Here're the files and directories up to 2 levels deep in /memories, excluding hidden items and node_modules:",
    );
    expect(root).toContain("36\t/memories/me/notes.txt");
    expect(root.some((line) => line.endsWith("\t/memories/org/AGENTS.md"))).toBe(true);
    // A member cannot change skills through the memory tool's paths either (they are not under /memories).
    expect((await run({ command: "create", path: "/skills/x/SKILL.md", file_text: "x" }, ctx)).isError).toBe(
      true,
    );
  });

  it("mirrors the mounts to a host tree and follows another session's writes", async () => {
    const events: MirrorApplyEvent[] = [];
    const waiters: { match: (event: MirrorApplyEvent) => boolean; resolve: () => void }[] = [];
    const waitFor = (match: (event: MirrorApplyEvent) => boolean) =>
      new Promise<void>((resolve) => {
        if (events.some(match)) resolve();
        else waiters.push({ match, resolve });
      });
    const mirror = await createMountMirror({
      store,
      rootDir: mirrorRoot,
      orgId,
      userId: aliceId,
      pollIntervalMs: 60_000,
      onApply: (event) => {
        events.push(event);
        for (const waiter of waiters.splice(0)) {
          if (waiter.match(event)) waiter.resolve();
          else waiters.push(waiter);
        }
      },
    });
    try {
      // Initial contents.
      expect(await readFile(path.join(mirror.memoriesDir, "org/AGENTS.md"), "utf8")).toBe(
        "Use British spelling.\n",
      );
      expect(await readFile(path.join(mirror.memoriesDir, "me/CLAUDE.md"), "utf8")).toBe("Call me Al.\n");
      expect(await readFile(path.join(mirror.skillsDir, "brand-guidelines/SKILL.md"), "utf8")).toContain(
        "name: brand-guidelines",
      );
      // Bob's private memories are not Alice's; another org's never appear.
      await expect(stat(path.join(mirror.memoriesDir, "me/notes.txt"))).rejects.toThrow();

      const bob = mounts(bobId);
      const latencies: number[] = [];
      for (let round = 0; round < 20; round++) {
        const started = performance.now();
        await bob.write("/memories/org/live.md", encode(`round ${round}\n`));
        await waitFor(
          (event) =>
            event.path === "/live.md" && event.namespace === "memories/org" && event.version === round + 1,
        );
        latencies.push(performance.now() - started);
        expect(await readFile(path.join(mirror.memoriesDir, "org/live.md"), "utf8")).toBe(`round ${round}\n`);
      }
      console.log(
        `write→mirror visible: p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p95 ${percentile(latencies, 0.95).toFixed(1)} ms (20 writes, LISTEN/NOTIFY)`,
      );
      const outsider = mounts(adminId, "admin", otherOrgId);
      await outsider.write("/memories/org/secret.md", encode("other org"));
      await mounts(bobId).write("/memories/me/bob-only.md", encode("bob"));
      await bob.remove("/memories/org/live.md");
      await waitFor((event) => event.path === "/live.md" && event.isDeleted);
      await expect(stat(path.join(mirror.memoriesDir, "org/live.md"))).rejects.toThrow();
      await mirror.sync();
      await expect(stat(path.join(mirror.memoriesDir, "org/secret.md"))).rejects.toThrow();
      expect(events.some((event) => event.path === "/bob-only.md" || event.path === "/secret.md")).toBe(
        false,
      );

      // Polling catches changes made while nothing was listening.
      await mirror.close();
      const polled = await createMountMirror({
        store,
        rootDir: mirrorRoot,
        orgId,
        userId: aliceId,
        pollIntervalMs: 60_000,
      });
      await bob.write("/memories/org/later.md", encode("later"));
      await polled.sync();
      expect(await readFile(path.join(polled.memoriesDir, "org/later.md"), "utf8")).toBe("later");
      await polled.close();
    } finally {
      await mirror.close();
    }
  });

  it("measures Read, Write and Edit p50 on the database mount against an in-memory file system", async () => {
    const tools = createDefaultTools();
    const byName = (name: string) => tools.find((candidate) => candidate.name === name) as Tool;
    const [read, write, edit] = [byName("Read"), byName("Write"), byName("Edit")];
    const measure = async (ctx: ToolContext, file: string) => {
      const timings = { Read: [] as number[], Write: [] as number[], Edit: [] as number[] };
      await write.execute({ file_path: file, content: "line 0\n" }, ctx);
      for (let index = 0; index < 40; index++) {
        let started = performance.now();
        expect((await read.execute({ file_path: file }, ctx)).isError).toBe(false);
        timings.Read.push(performance.now() - started);
        started = performance.now();
        expect(
          (
            await edit.execute(
              { file_path: file, old_string: `line ${index}`, new_string: `line ${index + 1}` },
              ctx,
            )
          ).isError,
        ).toBe(false);
        timings.Edit.push(performance.now() - started);
        started = performance.now();
        expect((await write.execute({ file_path: file, content: `line ${index + 1}\n` }, ctx)).isError).toBe(
          false,
        );
        timings.Write.push(performance.now() - started);
      }
      return Object.fromEntries(
        Object.entries(timings).map(([name, values]) => [name, percentile(values, 0.5).toFixed(2)]),
      );
    };
    const database = await measure(context(mounts(aliceId)), "/memories/me/bench.md");
    const memory = await measure(
      context(new MountTable([{ prefix: "/workspace", fileSystem: new MemoryFileSystem() }])),
      "/workspace/bench.md",
    );
    console.log(`p50 ms, database mount: ${JSON.stringify(database)}; in-memory: ${JSON.stringify(memory)}`);
  });
});
