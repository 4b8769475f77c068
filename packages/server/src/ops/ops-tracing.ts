/**
 * OpenTelemetry traces with the GenAI semantic conventions: one trace per turn (an `invoke_agent` span),
 * and under it a `chat` span per model call and an `execute_tool` span per tool call. Ids derive from
 * the session and turn, so a turn that moves between workers stays one trace. Built only when an OTLP
 * endpoint is configured: without one nothing here is loaded or called.
 */
import { createHash } from "node:crypto";
import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  RandomIdGenerator,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";

export interface OpsTracingOptions {
  /** The OTLP/HTTP traces URL (e.g. `http://collector:4318/v1/traces`); spans go there as OTLP JSON. */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Replaces the OTLP exporter (tests keep spans in memory with it). */
  readonly exporter?: SpanExporter;
  readonly serviceName: string;
  readonly serviceInstanceId: string;
}

export interface ModelCallSpan {
  readonly sessionId: string;
  readonly turn: number;
  readonly provider: string;
  readonly model: string;
  readonly startTime: number;
  readonly endTime: number;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly finishReason?: string;
  /** The error code of a failed call (`model_rate_limited`, `aborted`…). */
  readonly errorType?: string;
}

export interface ToolCallSpan {
  readonly sessionId: string;
  readonly turn: number;
  readonly name: string;
  readonly toolCallId: string;
  readonly startTime: number;
  readonly endTime: number;
  readonly isError: boolean;
  /** Set for a call that never ran (denied by policy or a person). */
  readonly deniedBy?: string;
}

export interface TurnSpan {
  readonly sessionId: string;
  readonly turn: number;
  readonly agentId?: string;
  readonly startTime: number;
  readonly endTime: number;
  /** `end_turn`, `interrupted`, … for turn.end; the error code for turn.error. */
  readonly outcome: string;
  readonly isError: boolean;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
}

/** Exports the spans of sessions; every method returns at once (export is batched in the background). */
export class OpsTracing {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;
  readonly #ids: FixedIdGenerator;

  constructor(options: OpsTracingOptions) {
    this.#ids = new FixedIdGenerator();
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": options.serviceName,
        "service.instance.id": options.serviceInstanceId,
      }),
      idGenerator: this.#ids,
      spanProcessors: [
        new BatchSpanProcessor(
          options.exporter ?? new OTLPTraceExporter({ url: options.url, headers: { ...options.headers } }),
        ),
      ],
    });
    this.#tracer = this.#provider.getTracer("outrig");
  }

  recordModelCall(call: ModelCallSpan): void {
    const span = this.#tracer.startSpan(
      `chat ${call.model}`,
      {
        kind: SpanKind.CLIENT,
        startTime: call.startTime,
        attributes: definedOnly({
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": call.provider,
          "gen_ai.system": call.provider,
          "gen_ai.request.model": call.model,
          "gen_ai.conversation.id": call.sessionId,
          "gen_ai.usage.input_tokens": call.inputTokens,
          "gen_ai.usage.output_tokens": call.outputTokens,
          "gen_ai.response.finish_reasons": call.finishReason ? [call.finishReason] : undefined,
          "error.type": call.errorType,
          ...sessionAttributes(call.sessionId, call.turn),
        }),
      },
      this.#turnContext(call.sessionId, call.turn),
    );
    if (call.errorType) span.setStatus({ code: SpanStatusCode.ERROR, message: call.errorType });
    span.end(call.endTime);
  }

  recordToolCall(call: ToolCallSpan): void {
    const span = this.#tracer.startSpan(
      `execute_tool ${call.name}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: call.startTime,
        attributes: definedOnly({
          "gen_ai.operation.name": "execute_tool",
          "gen_ai.tool.name": call.name,
          "gen_ai.tool.call.id": call.toolCallId,
          "gen_ai.conversation.id": call.sessionId,
          "outrig.tool.denied_by": call.deniedBy,
          ...sessionAttributes(call.sessionId, call.turn),
        }),
      },
      this.#turnContext(call.sessionId, call.turn),
    );
    if (call.isError) span.setStatus({ code: SpanStatusCode.ERROR, message: "tool_error" });
    span.end(call.endTime);
  }

  /** The turn's own span, recorded when the turn ends (its children were exported as they ended). */
  recordTurn(turn: TurnSpan): void {
    const ids = turnIds(turn.sessionId, turn.turn);
    const span = this.#ids.withIds(ids, () =>
      this.#tracer.startSpan(
        "invoke_agent outrig",
        {
          kind: SpanKind.INTERNAL,
          root: true,
          startTime: turn.startTime,
          attributes: definedOnly({
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": turn.agentId,
            "gen_ai.conversation.id": turn.sessionId,
            "gen_ai.usage.input_tokens": turn.inputTokens,
            "gen_ai.usage.output_tokens": turn.outputTokens,
            "outrig.turn.outcome": turn.outcome,
            ...sessionAttributes(turn.sessionId, turn.turn),
          }),
        },
        ROOT_CONTEXT,
      ),
    );
    if (turn.isError) span.setStatus({ code: SpanStatusCode.ERROR, message: turn.outcome });
    span.end(turn.endTime);
  }

  /** Sends the spans ended so far; resolves when the receiver answered (or the export failed). */
  async flush(): Promise<void> {
    await this.#provider.forceFlush();
  }

  async close(): Promise<void> {
    await this.#provider.shutdown();
  }

  #turnContext(sessionId: string, turn: number): Context {
    const ids = turnIds(sessionId, turn);
    return trace.setSpanContext(context.active(), { ...ids, traceFlags: TraceFlags.SAMPLED, isRemote: true });
  }
}

/** The trace id and the turn span's id of one turn: the same on every worker. */
export function turnIds(sessionId: string, turn: number): { traceId: string; spanId: string } {
  const digest = createHash("sha256").update(`${sessionId}\u0000${turn}`).digest("hex");
  return { traceId: digest.slice(0, 32), spanId: digest.slice(32, 48) };
}

function sessionAttributes(sessionId: string, turn: number): Attributes {
  return { "outrig.session.id": sessionId, "outrig.turn": turn };
}

function definedOnly(attributes: Record<string, Attributes[string]>): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined));
}

/**
 * Random ids, except inside `withIds`: span creation is synchronous, so the ids given there go to
 * exactly the one span started in the callback.
 */
class FixedIdGenerator implements IdGenerator {
  readonly #random = new RandomIdGenerator();
  #fixed: { traceId: string; spanId: string } | undefined;

  withIds<T>(ids: { traceId: string; spanId: string }, create: () => T): T {
    this.#fixed = ids;
    try {
      return create();
    } finally {
      this.#fixed = undefined;
    }
  }

  generateTraceId(): string {
    return this.#fixed?.traceId ?? this.#random.generateTraceId();
  }

  generateSpanId(): string {
    return this.#fixed?.spanId ?? this.#random.generateSpanId();
  }
}
