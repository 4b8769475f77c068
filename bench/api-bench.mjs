/**
 * The Managed Agents API figures, with the official SDK as the client against a real `outrig serve`
 * (embedded Postgres, bubblewrap) and the fake LLM at zero latency:
 *  - `sessions.create` → the first event a stream opened right after it delivers (p50, p99);
 *  - `events.send` (a user.message) → the `agent.tool_use` it causes, seen by a client streaming the
 *    session (p50, p99);
 *  - events per second one stream delivers: live, while a turn emits a burst of them (a model response
 *    with many tool calls that fail fast), and replaying the log from its first event (delivery alone).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { startFakeLlmServer } from "@outrig/models";
import { TOOLS } from "./api-client.mjs";
import { median, percentile, round, spawnServer } from "./stats.mjs";

/** The first event of `stream` that `predicate` accepts (the stream is left open for more). */
async function nextEvent(iterator, predicate) {
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) throw new Error("the event stream ended");
    if (predicate(value)) return value;
  }
}

const message = (text) => ({ type: "user.message", content: [{ type: "text", text }] });

export async function apiFigures({ creates = 30, sends = 30, burst = 200 } = {}) {
  const fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-api-"));
  const process_ = spawnServer(home, { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` });
  try {
    const server = await process_.ready();
    const client = new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
    const agent = await client.beta.agents.create({
      name: "bench",
      model: "anthropic:bench",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await client.beta.environments.create({ name: "bench", config: { type: "cloud" } });

    // sessions.create → first streamed event.
    const firstEvent = [];
    for (let index = 0; index < creates + 3; index++) {
      fakeLlm.setScript({ turns: [{ text: "ok" }] });
      const started = performance.now();
      const session = await client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        initial_events: [message("hi")],
      });
      const stream = await client.beta.sessions.events.stream(session.id);
      const iterator = stream[Symbol.asyncIterator]();
      await nextEvent(iterator, () => true);
      if (index >= 3) firstEvent.push(performance.now() - started);
      await nextEvent(iterator, (event) => event.type === "session.status_idle");
      stream.controller.abort();
    }

    // events.send → agent.tool_use on a client streaming the session.
    const toolUse = [];
    const session = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    const stream = await client.beta.sessions.events.stream(session.id);
    const iterator = stream[Symbol.asyncIterator]();
    for (let index = 0; index < sends + 3; index++) {
      fakeLlm.setScript({
        turns: [{ toolCalls: [{ name: TOOLS.bash, input: { command: `true ${index}` } }] }, { text: "done" }],
      });
      const started = performance.now();
      await client.beta.sessions.events.send(session.id, { events: [message(`round ${index}`)] });
      await nextEvent(iterator, (event) => event.type === "agent.tool_use");
      if (index >= 3) toolUse.push(performance.now() - started);
      await nextEvent(iterator, (event) => event.type === "session.status_idle");
    }

    // A burst: one model response with `burst` tool calls that fail fast (a file that is not there).
    fakeLlm.setScript({
      turns: [
        {
          toolCalls: Array.from({ length: burst }, (_, index) => ({
            name: TOOLS.read,
            input: { file_path: `/workspace/missing-${index}.txt` },
          })),
        },
        { text: "done" },
      ],
    });
    await client.beta.sessions.events.send(session.id, { events: [message("burst")] });
    let count = 0;
    let firstAt = 0;
    for (;;) {
      const event = await nextEvent(iterator, () => true);
      if (count === 0) firstAt = performance.now();
      count += 1;
      if (event.type === "session.status_idle") break;
    }
    const seconds = (performance.now() - firstAt) / 1000;
    stream.controller.abort();

    // A stream resumed at the session's first event replays the whole log: delivery alone, no engine.
    const log = [];
    for await (const event of client.beta.sessions.events.list(session.id, { order: "asc", limit: 100 }))
      log.push(event);
    const replayStarted = performance.now();
    const replay = await client.beta.sessions.events.stream(
      session.id,
      {},
      { headers: { "last-event-id": log[0].id } },
    );
    let replayed = 0;
    for await (const event of replay) {
      replayed += 1;
      if (event.id === log.at(-1).id) break;
    }
    const replaySeconds = (performance.now() - replayStarted) / 1000;
    return {
      firstEventP50: median(firstEvent),
      firstEventP99: percentile(firstEvent, 99),
      toolUseP50: median(toolUse),
      toolUseP99: percentile(toolUse, 99),
      burstEvents: count,
      eventsPerSecond: count / seconds,
      replayEvents: replayed,
      replayPerSecond: replayed / replaySeconds,
    };
  } finally {
    await process_.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

export function formatApi(figures) {
  return [
    "| figure (SDK client, fake LLM at zero latency) | value |",
    "| --- | --- |",
    `| \`sessions.create\` (with a user.message) → first event on a stream opened after it | p50 ${round(figures.firstEventP50, 1)} ms, p99 ${round(figures.firstEventP99, 1)} ms |`,
    `| \`events.send\` (user.message) → \`agent.tool_use\` seen by a streaming client | p50 ${round(figures.toolUseP50, 1)} ms, p99 ${round(figures.toolUseP99, 1)} ms |`,
    `| events one stream delivers live during a burst (${figures.burstEvents} events: the tool_use/tool_result pairs of one model response with 200 calls; bound by the calls) | ${round(figures.eventsPerSecond, 0)} events/s |`,
    `| events one stream delivers replaying a session's log (resumed with Last-Event-ID at its first event; ${figures.replayEvents} events) | ${round(figures.replayPerSecond, 0)} events/s |`,
  ].join("\n");
}
