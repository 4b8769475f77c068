/**
 * Read, Write and Edit on the database-backed /memories mount against the sandbox's /workspace, as the
 * tools run them in a real session (p50 of each call's duration recorded in its tool.end event).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { median, round, spawnServer } from "./stats.mjs";

function callsFor(root, count) {
  const turns = [];
  for (let index = 0; index < count; index++) {
    const file = `${root}/bench-${index}.md`;
    turns.push({
      toolCalls: [{ name: "Write", input: { file_path: file, content: `line one\nvalue ${index}\n` } }],
    });
    turns.push({ toolCalls: [{ name: "Read", input: { file_path: file } }] });
    turns.push({
      toolCalls: [
        {
          name: "Edit",
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
    const { url, apiKey } = await server.ready();
    const headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
    const session = await (
      await fetch(`${url}/v1/sessions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ model: "anthropic:bench", prompt: "go" }),
      })
    ).json();
    for (;;) {
      const current = await (await fetch(`${url}/v1/sessions/${session.id}`, { headers })).json();
      if (current.status !== "running") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The event stream stays open; read it until the turn's end.
    const response = await fetch(`${url}/v1/sessions/${session.id}/events`, { headers });
    let events = "";
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      events += decoder.decode(chunk, { stream: true });
      if (/"type":"turn\.(end|error)"/.test(events)) break;
    }
    const ends = [...events.matchAll(/^data: (.*)$/gm)]
      .map((match) => JSON.parse(match[1]))
      .filter((event) => event.type === "tool.end");
    const starts = new Map();
    for (const match of events.matchAll(/^data: (.*)$/gm)) {
      const event = JSON.parse(match[1]);
      if (event.type === "tool.start") starts.set(event.toolCallId, event.input.file_path);
    }
    const figures = {};
    for (const end of ends) {
      if (end.isError) throw new Error(`${end.name} failed in the bench: ${end.output}`);
      const mount = String(starts.get(end.toolCallId)).startsWith("/memories") ? "database" : "workspace";
      const key = `${end.name}.${mount}`;
      figures[key] ??= [];
      figures[key].push(end.durationMs);
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
    row("Read"),
    row("Write"),
    row("Edit"),
  ].join("\n");
}
