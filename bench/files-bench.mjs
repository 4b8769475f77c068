/**
 * Read, Write and Edit on the database-backed /memories mount against the sandbox's /workspace, as the
 * tools run them in a real session: p50 of each call's time from its `agent.tool_use` to its
 * `agent.tool_result` (their `processed_at`, the times the server logged the call's start and end).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { benchClient, TOOLS } from "./api-client.mjs";
import { median, round, spawnServer } from "./stats.mjs";

function callsFor(root, count) {
  const turns = [];
  for (let index = 0; index < count; index++) {
    const file = `${root}/bench-${index}.md`;
    turns.push({
      toolCalls: [{ name: TOOLS.write, input: { file_path: file, content: `line one\nvalue ${index}\n` } }],
    });
    turns.push({ toolCalls: [{ name: TOOLS.read, input: { file_path: file } }] });
    turns.push({
      toolCalls: [
        {
          name: TOOLS.edit,
          input: { file_path: file, old_string: `value ${index}`, new_string: `edited ${index}` },
        },
      ],
    });
  }
  return turns;
}

export async function filesFigures({ count = 30 } = {}) {
  const script = {
    turns: [...callsFor("/workspace", count), ...callsFor("/memories/me", count), { text: "done" }],
  };
  const fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-files-"));
  const server = spawnServer(home, { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` });
  try {
    const api = await benchClient(await server.ready());
    const session = await api.runSession("go");
    const uses = new Map();
    const figures = {};
    for await (const event of api.client.beta.sessions.events.list(session.id, {
      order: "asc",
      limit: 100,
    })) {
      if (event.type === "agent.tool_use") uses.set(event.id, event);
      if (event.type !== "agent.tool_result") continue;
      const use = uses.get(event.tool_use_id);
      if (event.is_error)
        throw new Error(`${use?.name} failed in the bench: ${JSON.stringify(event.content)}`);
      const mount = String(use?.input.file_path).startsWith("/memories") ? "database" : "workspace";
      const key = `${use?.name}.${mount}`;
      figures[key] ??= [];
      figures[key].push(Date.parse(event.processed_at) - Date.parse(use.processed_at));
    }
    return Object.fromEntries(Object.entries(figures).map(([key, values]) => [key, median(values)]));
  } finally {
    await server.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

export function formatFiles(figures) {
  const row = (tool) =>
    `| ${tool} | ${round(figures[`${tool}.workspace`], 2)} ms | ${round(figures[`${tool}.database`], 2)} ms |`;
  return [
    "| tool call (p50) | /workspace (sandbox) | /memories (Postgres) |",
    "| --- | --- | --- |",
    row(TOOLS.read),
    row(TOOLS.write),
    row(TOOLS.edit),
  ].join("\n");
}
