/**
 * Read, Write and Edit on the database-backed /memories mount against the sandbox's /workspace, as the
 * tools run them in a real session (p50 of each call's duration recorded in its tool.end event).
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { median, round } from "./stats.mjs";

const repo = path.resolve(import.meta.dirname, "..");
const OUTRIG_BIN = path.join(repo, "packages/cli/bin/outrig.js");

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
  const child = spawn(process.execPath, [OUTRIG_BIN, "serve"], {
    env: {
      ...process.env,
      OUTRIG_HOME: home,
      OUTRIG_PORT: "0",
      ANTHROPIC_API_KEY: "bench",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let output = "";
    const url = await new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match) resolve(match[1]);
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    });
    const { apiKey } = JSON.parse(await fs.readFile(path.join(home, "credentials.json"), "utf8"));
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
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
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
