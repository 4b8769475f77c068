/**
 * The server's Prometheus metrics, in a registry of its own (two servers in one process never mix).
 * Labels name routes, tools, models and states, never orgs, users or ids: the series stay few.
 */
import type { SessionEvent } from "@outrig/protocol";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { applySandboxEvent, EMPTY_SANDBOX_STATE, type SandboxStateView } from "../sandbox-state.js";

/** Latency buckets in seconds, from a fast local tool call to a long model answer. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface OpsMetricsOptions {
  /** Counts sessions by status at scrape time (all orgs); omitted: the gauge is left out. */
  readonly countSessions?: () => Promise<readonly { status: string; count: number }[]>;
}

export class OpsMetrics {
  readonly registry = new Registry();
  readonly #httpRequests: Counter<"method" | "route" | "status">;
  readonly #httpDuration: Histogram<"method" | "route">;
  readonly #steps: Counter<"kind">;
  readonly #sessionEvents: Counter<"type">;
  readonly #toolCalls: Histogram<"tool" | "is_error">;
  readonly #modelCalls: Histogram<"model" | "outcome">;
  readonly #modelTokens: Counter<"model" | "direction">;
  readonly #egressDecisions: Counter<"decision">;
  readonly #sandboxTransitions: Counter<"state">;
  /** The sandbox state of each session whose sandbox this process saw and that is not destroyed yet. */
  readonly #sandboxes = new Map<string, SandboxStateView>();

  constructor(options: OpsMetricsOptions = {}) {
    const registers = [this.registry];
    this.#httpRequests = new Counter({
      name: "outrig_http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.#httpDuration = new Histogram({
      name: "outrig_http_request_duration_seconds",
      help: "Time to the response headers of an HTTP request, by method and route pattern",
      labelNames: ["method", "route"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#steps = new Counter({
      name: "outrig_steps_total",
      help: "Loop steps recorded: model answers (model) and tool results (tool)",
      labelNames: ["kind"],
      registers,
    });
    this.#sessionEvents = new Counter({
      name: "outrig_session_events_total",
      help: "Session events appended by this process, by type",
      labelNames: ["type"],
      registers,
    });
    this.#toolCalls = new Histogram({
      name: "outrig_tool_call_duration_seconds",
      help: "Duration of tool calls, by tool name and whether the result is an error",
      labelNames: ["tool", "is_error"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#modelCalls = new Histogram({
      name: "outrig_model_call_duration_seconds",
      help: "Duration of model calls (request to last token), by model and outcome (ok, error, aborted)",
      labelNames: ["model", "outcome"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#modelTokens = new Counter({
      name: "outrig_model_tokens_total",
      help: "Tokens the models reported, by model and direction (input, output)",
      labelNames: ["model", "direction"],
      registers,
    });
    this.#egressDecisions = new Counter({
      name: "outrig_egress_decisions_total",
      help: "Requests from sandboxes through egress, by decision",
      labelNames: ["decision"],
      registers,
    });
    this.#sandboxTransitions = new Counter({
      name: "outrig_sandbox_transitions_total",
      help: "Sandbox lifecycle transitions recorded by this process, by the state entered",
      labelNames: ["state"],
      registers,
    });
    const sandboxes = this.#sandboxes;
    new Gauge({
      name: "outrig_sandboxes",
      help: "Sandboxes of sessions this process ran, by lifecycle state (running, standby, hibernated, cold)",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        for (const state of ["running", "standby", "hibernated", "cold"]) this.set({ state }, 0);
        for (const view of sandboxes.values()) this.inc({ state: view.state });
      },
    });
    const countSessions = options.countSessions;
    if (countSessions) {
      new Gauge({
        name: "outrig_sessions",
        help: "Sessions that are not archived, by status (all orgs, from the database)",
        labelNames: ["status"],
        registers,
        async collect() {
          const rows = await countSessions();
          this.reset();
          for (const status of ["idle", "running", "error"]) this.set({ status }, 0);
          for (const row of rows) this.set({ status: row.status }, row.count);
        },
      });
    }
  }

  /** The text exposition format (`text/plain; version=0.0.4`). */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  recordRequest(method: string, route: string, status: number, seconds: number): void {
    this.#httpRequests.inc({ method, route, status: String(status) });
    this.#httpDuration.observe({ method, route }, seconds);
  }

  recordModelCall(model: string, outcome: "ok" | "error" | "aborted", seconds: number): void {
    this.#modelCalls.observe({ model, outcome }, seconds);
  }

  recordModelUsage(model: string, inputTokens: number, outputTokens: number): void {
    this.#modelTokens.inc({ model, direction: "input" }, inputTokens);
    this.#modelTokens.inc({ model, direction: "output" }, outputTokens);
  }

  recordEgress(decision: string): void {
    this.#egressDecisions.inc({ decision });
  }

  /** Counts one persisted session event: steps, tool latencies, sandbox states. */
  recordSessionEvent(sessionId: string, event: SessionEvent): void {
    this.#sessionEvents.inc({ type: event.type });
    switch (event.type) {
      case "message.end":
        this.#steps.inc({ kind: "model" });
        break;
      case "tool.end":
        this.#steps.inc({ kind: "tool" });
        this.#toolCalls.observe(
          { tool: event.name, is_error: String(event.isError) },
          event.durationMs / 1000,
        );
        break;
      default:
        if (event.type.startsWith("sandbox.")) this.#recordSandbox(sessionId, event);
    }
  }

  #recordSandbox(sessionId: string, event: SessionEvent): void {
    const before = this.#sandboxes.get(sessionId) ?? EMPTY_SANDBOX_STATE;
    const after = applySandboxEvent(before, event);
    if (after.state !== before.state) this.#sandboxTransitions.inc({ state: after.state });
    if (after.state === "none" || after.state === "destroyed") this.#sandboxes.delete(sessionId);
    else this.#sandboxes.set(sessionId, after);
  }
}
