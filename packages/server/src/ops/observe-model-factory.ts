/**
 * Wraps every model the factory builds to time its calls: the model-call latency histogram, token
 * counters and (when tracing is on) a `chat` span under the turn the call runs for.
 */
import type { LanguageModel, ModelEvent, ModelFactory, ModelRequest } from "@outrig/core";
import type { OpsMetrics } from "./ops-metrics.js";
import type { OpsTracing } from "./ops-tracing.js";
import { stepScope } from "./step-scope.js";

export function observeModelFactory(
  factory: ModelFactory,
  metrics: OpsMetrics,
  tracing: OpsTracing | undefined,
): ModelFactory {
  return (spec) => observeModel(factory(spec), metrics, tracing);
}

function observeModel(
  model: LanguageModel,
  metrics: OpsMetrics,
  tracing: OpsTracing | undefined,
): LanguageModel {
  return {
    provider: model.provider,
    modelId: model.modelId,
    async *stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      const scope = stepScope.getStore();
      const startTime = Date.now();
      const started = performance.now();
      let last: ModelEvent | undefined;
      try {
        for await (const event of model.stream(request, signal)) {
          if (event.type !== "text.delta") last = event;
          yield event;
        }
      } finally {
        // Also reached when the consumer stops early (an interrupt): that call was aborted.
        const outcome = last?.type === "end" ? "ok" : last?.type === "error" ? "error" : "aborted";
        metrics.recordModelCall(model.modelId, outcome, (performance.now() - started) / 1000);
        if (last?.type === "end")
          metrics.recordModelUsage(model.modelId, last.usage.inputTokens, last.usage.outputTokens);
        if (tracing && scope) {
          tracing.recordModelCall({
            sessionId: scope.sessionId,
            turn: scope.turn,
            provider: model.provider,
            model: model.modelId,
            startTime,
            endTime: Date.now(),
            ...(last?.type === "end"
              ? {
                  inputTokens: last.usage.inputTokens,
                  outputTokens: last.usage.outputTokens,
                  finishReason: last.stopReason,
                }
              : { errorType: last?.type === "error" ? last.code : "aborted" }),
          });
        }
      }
    },
  };
}
