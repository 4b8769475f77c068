/**
 * Operations on a real server (startServer on Postgres, the fake LLM, bubblewrap sandboxes) driven by the
 * pinned SDK: the JSON request and session-event log lines, the Prometheus endpoint parsed with a real
 * text-format parser before and after a scripted session, and the session's spans received by an
 * OTLP/HTTP endpoint the test runs (OTLP JSON, as the official proto definitions map it).
 */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/ops/logger.js";
import { turnIds } from "../src/ops/ops-tracing.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type Sample = { labels?: Record<string, string>; value?: string; count?: string; sum?: string };
type MetricFamily = { name: string; type: string; metrics: Sample[] };
type OtlpValue = { stringValue?: string; intValue?: string | number; arrayValue?: { values: OtlpValue[] } };
type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: OtlpValue }[];
};

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;
let apiKey: string;
let receiver: http.Server;
const logLines: string[] = [];
const received: OtlpSpan[] = [];
const receivedContentTypes: string[] = [];

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  // The OTLP/HTTP receiver: POST /v1/traces with an ExportTraceServiceRequest in OTLP JSON.
  receiver = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      receivedContentTypes.push(String(request.headers["content-type"]));
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const resource of body.resourceSpans)
        for (const scope of resource.scopeSpans) received.push(...scope.spans);
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", () => resolve()));
  const receiverPort = (receiver.address() as AddressInfo).port;
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        { toolCalls: [{ name: "bash", input: { command: "echo observed" } }] },
        ...Array.from({ length: 50 }, () => ({ text: "done" })),
      ],
    },
    turnSelection: "history",
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-operations-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-operations",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `operations-${process.pid}`,
    OUTRIG_METRICS_LISTEN: "127.0.0.1:0",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
  });
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      callback();
    },
  });
  server = await startServer(config, {
    logger: createLogger({ destination, format: "json", level: "info" }),
  });
  apiKey = server.bootstrapKey ?? "";
  client = new Anthropic({ apiKey, baseURL: server.url, maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await fakeLlm?.close();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function scrape(): Promise<Map<string, MetricFamily>> {
  if (!server.metricsUrl) throw new Error("no metrics endpoint");
  const response = await fetch(server.metricsUrl);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  const text = await response.text();
  const parse = parsePrometheusTextFormat as (text: string) => MetricFamily[];
  // The whole exposition parses (the parser throws on any malformed line). It folds a labelled
  // histogram's series into one sample, so each histogram's `_count` series is parsed again as a
  // counter family of its own to read the count per label set.
  const families = parse(text);
  const counts = families
    .filter((family) => family.type === "HISTOGRAM")
    .map((family) => {
      const lines = text.split("\n").filter((line) => line.startsWith(`${family.name}_count`));
      return parse(`# TYPE ${family.name}_count counter\n${lines.join("\n")}\n`);
    });
  return new Map([...families, ...counts.flat()].map((family) => [family.name, family]));
}

/** The value of the sample whose labels include `labels` (a histogram's count: `<name>_count`). */
function sampleOf(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name);
  const sample = family?.metrics.find((candidate) =>
    Object.entries(labels).every(([key, value]) => candidate.labels?.[key] === value),
  );
  return Number(sample?.count ?? sample?.value ?? 0);
}

function attribute(span: OtlpSpan, key: string): string | number | string[] | undefined {
  const value = span.attributes.find((candidate) => candidate.key === key)?.value;
  if (!value) return undefined;
  if (value.arrayValue) return value.arrayValue.values.map((item) => String(item.stringValue));
  return value.stringValue ?? (value.intValue === undefined ? undefined : Number(value.intValue));
}

const isEndTurn = (event: { type: string; stop_reason?: unknown }) =>
  event.type === "session.status_idle" && (event.stop_reason as { type: string }).type === "end_turn";

describe("operations", () => {
  it("logs, counts and traces a scripted session", async () => {
    const before = await scrape();
    const agent = await client.beta.agents.create({
      name: "ops",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await client.beta.environments.create({ name: "ops" });
    const session = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
    const stream = await client.beta.sessions.events.stream(session.id);
    await client.beta.sessions.events.send(session.id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "run it" }] }],
    });
    for await (const event of stream) if (isEndTurn(event as { type: string })) break;
    const retrieved = await client.beta.sessions.retrieve(session.id);
    expect(retrieved.status).toBe("idle");

    // Metrics moved by exactly what the session did: two model answers, one bash call.
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sampleOf(after, name, labels) - sampleOf(before, name, labels);
    expect(delta("outrig_steps_total", { kind: "model" })).toBe(2);
    expect(delta("outrig_steps_total", { kind: "tool" })).toBe(1);
    expect(delta("outrig_tool_call_duration_seconds_count", { tool: "bash", is_error: "false" })).toBe(1);
    expect(
      delta("outrig_model_call_duration_seconds_count", { model: "claude-sonnet-4-5", outcome: "ok" }),
    ).toBe(2);
    expect(delta("outrig_model_tokens_total", { direction: "output" })).toBeGreaterThan(0);
    expect(
      delta("outrig_http_requests_total", { method: "POST", route: "/v1/sessions", status: "200" }),
    ).toBe(1);
    expect(
      delta("outrig_http_requests_total", {
        method: "POST",
        route: "/v1/sessions/:id/events",
        status: "200",
      }),
    ).toBe(1);
    expect(sampleOf(after, "outrig_sessions", { status: "idle" })).toBeGreaterThanOrEqual(1);
    expect(sampleOf(after, "outrig_sessions", { status: "running" })).toBe(0);
    // The sandbox started (and, idle between steps, may have gone to standby and resumed).
    expect(delta("outrig_sandbox_transitions_total", { state: "running" })).toBeGreaterThanOrEqual(1);
    expect(after.get("outrig_sandboxes")?.type).toBe("GAUGE");
    expect(after.get("outrig_egress_decisions_total")?.type).toBe("COUNTER");
    // The scrape endpoint is not the API: it serves nothing else, and the API has no /metrics.
    expect((await fetch(`${new URL(server.metricsUrl ?? "").origin}/v1/sessions`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { headers: { "x-api-key": apiKey } })).status).toBe(404);

    // One JSON line per request, with the route pattern, org and key id, never the key.
    const records = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const send = records.find(
      (record) =>
        record.msg === "request" && record.route === "/v1/sessions/:id/events" && record.method === "POST",
    );
    expect(send).toMatchObject({ level: "info", status: 200 });
    expect(send?.request_id).toMatch(/^req_/);
    expect(send?.org_id).toEqual(expect.any(String));
    expect(send?.key_id).toEqual(expect.any(String));
    expect(send?.duration_ms).toEqual(expect.any(Number));
    expect(logLines.join("\n")).not.toContain(apiKey);
    // One line per session event, in seq order, without contents.
    const sessionEvents = records.filter(
      (record) => record.msg === "session event" && record.session_id === session.id,
    );
    expect(sessionEvents.map((record) => record.type)).toEqual(
      expect.arrayContaining(["turn.start", "message.end", "tool.start", "tool.end", "turn.end"]),
    );
    const seqs = sessionEvents.map((record) => Number(record.seq));
    expect(seqs).toEqual([...seqs].sort((left, right) => left - right));
    expect(logLines.join("\n")).not.toContain("echo observed");

    // The spans: a turn span, and under it two chat spans and one execute_tool span.
    await server.flushTraces();
    expect(receivedContentTypes).toContain("application/json");
    const ids = turnIds(session.id, 1);
    const spans = received.filter((span) => attribute(span, "outrig.session.id") === session.id);
    const turnSpan = spans.find((span) => attribute(span, "gen_ai.operation.name") === "invoke_agent");
    expect(turnSpan).toMatchObject({ traceId: ids.traceId, spanId: ids.spanId });
    expect(attribute(turnSpan as OtlpSpan, "outrig.turn")).toBe(1);
    expect(attribute(turnSpan as OtlpSpan, "gen_ai.conversation.id")).toBe(session.id);
    const chats = spans.filter((span) => attribute(span, "gen_ai.operation.name") === "chat");
    expect(chats).toHaveLength(2);
    for (const chat of chats) {
      expect(chat).toMatchObject({
        traceId: ids.traceId,
        parentSpanId: ids.spanId,
        name: "chat claude-sonnet-4-5",
      });
      expect(attribute(chat, "gen_ai.request.model")).toBe("claude-sonnet-4-5");
      expect(attribute(chat, "gen_ai.usage.input_tokens")).toEqual(expect.any(Number));
      expect(attribute(chat, "gen_ai.usage.output_tokens")).toEqual(expect.any(Number));
      expect(attribute(chat, "outrig.turn")).toBe(1);
    }
    expect(chats.map((chat) => attribute(chat, "gen_ai.response.finish_reasons"))).toEqual(
      expect.arrayContaining([["tool_use"], ["end_turn"]]),
    );
    const tools = spans.filter((span) => attribute(span, "gen_ai.operation.name") === "execute_tool");
    expect(tools).toHaveLength(1);
    const toolUse = (await client.beta.sessions.events.list(session.id)).data.find(
      (event) => event.type === "agent.tool_use",
    ) as { id: string } | undefined;
    expect(tools[0]).toMatchObject({
      traceId: ids.traceId,
      parentSpanId: ids.spanId,
      name: "execute_tool bash",
    });
    expect(attribute(tools[0] as OtlpSpan, "gen_ai.tool.name")).toBe("bash");
    expect(attribute(tools[0] as OtlpSpan, "gen_ai.tool.call.id")).toEqual(expect.any(String));
    expect(toolUse).toBeDefined();
  }, 120_000);
});
