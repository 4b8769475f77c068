/**
 * Durable replay and traces: a worker that crashes mid-turn and a fresh one that resumes from the log
 * record each model call, tool call and turn once, under one trace (no spans for steps read back).
 */

import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { createMountTable, SessionRunner, type Tool } from "@outrig/core";
import { createCrashingStore, MemorySessionStore, ScriptedModel, SimulatedCrash } from "@outrig/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createLogger } from "../src/ops/logger.js";
import { observeModelFactory } from "../src/ops/observe-model-factory.js";
import { observeSessionStore } from "../src/ops/observe-session-store.js";
import { OpsMetrics } from "../src/ops/ops-metrics.js";
import { OpsTracing, turnIds } from "../src/ops/ops-tracing.js";
import { stepScope } from "../src/ops/step-scope.js";

const appendTool = (effects: string[]): Tool<{ line: string }> => ({
  name: "Append",
  description: "Appends a line",
  inputSchema: z.strictObject({ line: z.string() }),
  async execute(input) {
    effects.push(input.line);
    return { output: `appended ${input.line}`, isError: false };
  },
});

describe("traces across a crash", () => {
  it("records each completed step once when a fresh runner resumes the turn", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new OpsTracing({
      url: "http://127.0.0.1:1/v1/traces",
      exporter,
      serviceName: "t",
      serviceInstanceId: "w",
    });
    const metrics = new OpsMetrics();
    const logger = createLogger({ level: "silent" });
    const inner = new MemorySessionStore();
    const session = await inner.createSession({
      orgId: "org_1",
      userId: "usr_1",
      model: "scripted:x",
      system: null,
    });
    // The model asks for two calls in two answers, then ends; it fails if asked again for a recorded step.
    const scripted = new ScriptedModel([
      { toolCalls: [{ name: "Append", input: { line: "a" }, id: "call_a" }] },
      { toolCalls: [{ name: "Append", input: { line: "b" }, id: "call_b" }] },
      { text: "done" },
    ]);
    const model = observeModelFactory(() => scripted, metrics, tracing)("scripted:x");
    const effects: string[] = [];
    const runner = (store: typeof inner) =>
      new SessionRunner(
        {
          store,
          tools: [appendTool(effects)],
          limits: { maxSteps: 10, maxModelAttempts: 3 },
          sleep: async () => undefined,
          random: () => 0.5,
          publish: () => undefined,
        },
        {
          sessionId: session.id,
          model,
          fs: createMountTable([]),
          exec: async () => {
            throw new Error("no sandbox");
          },
          systemPrompt: "test",
          cwd: "/workspace",
        },
      );
    const observe = (store: typeof inner) => observeSessionStore(store, { logger, metrics, tracing });
    await observe(inner).startTurn("org_1", session.id, "go");
    const signal = new AbortController().signal;
    const runTurn = async (active: SessionRunner) =>
      stepScope.run({ sessionId: session.id, turn: 1 }, async () => {
        for (let index = 0; index < 20; index += 1)
          if ((await active.runStep(signal)).type === "idle") return;
      });
    // Appends: message.end, tool.start, tool.end (call_a), message.end, tool.start: the crash hits the
    // second call's start, after the first call and two model answers were recorded.
    await expect(runTurn(runner(observe(createCrashingStore(inner, 5))))).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    await runTurn(runner(observe(inner)));
    expect(scripted.remaining).toBe(0);
    expect(effects).toEqual(["a", "b"]);

    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const ids = turnIds(session.id, 1);
    const byOperation = (name: string) =>
      spans.filter((span) => span.attributes["gen_ai.operation.name"] === name);
    expect(byOperation("chat")).toHaveLength(3);
    expect(byOperation("execute_tool").map((span) => span.attributes["gen_ai.tool.call.id"])).toEqual([
      "call_a",
      "call_b",
    ]);
    expect(byOperation("invoke_agent")).toHaveLength(1);
    for (const span of spans) expect(span.spanContext().traceId).toBe(ids.traceId);
    expect(byOperation("invoke_agent")[0]?.spanContext().spanId).toBe(ids.spanId);
    await tracing.close();
  });
});
