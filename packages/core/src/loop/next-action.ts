/** Pure: picks the loop's next step from the run state. */
import type { RunState } from "./run-state.js";

export interface LoopLimits {
  /** Model calls per turn before the turn ends with `max_steps`. */
  readonly maxSteps: number;
  /** Attempts per model call (first try included) for retryable errors. */
  readonly maxModelAttempts: number;
}

export type NextAction =
  | { readonly type: "none" }
  | { readonly type: "call_model"; readonly step: number }
  | { readonly type: "run_tool"; readonly toolCallId: string }
  | { readonly type: "end_turn"; readonly reason: "end_turn" | "max_steps" | "max_tokens" | "refusal" };

export function nextAction(state: RunState, limits: LoopLimits): NextAction {
  if (state.turnStatus !== "running") return { type: "none" };
  const pending = state.toolCalls.find((call) => call.result === undefined);
  if (pending) return { type: "run_tool", toolCallId: pending.toolCallId };
  const last = state.messages[state.messages.length - 1];
  if (last?.role === "assistant") {
    // The model answered without asking for tools: the turn is over.
    switch (state.lastStopReason) {
      case "max_tokens":
        return { type: "end_turn", reason: "max_tokens" };
      case "refusal":
        return { type: "end_turn", reason: "refusal" };
      default:
        return { type: "end_turn", reason: "end_turn" };
    }
  }
  if (state.step >= limits.maxSteps) return { type: "end_turn", reason: "max_steps" };
  return { type: "call_model", step: state.step + 1 };
}

/** Capped exponential backoff with full jitter; a server's retry-after wins when longer. */
export function retryDelayMs(
  attempt: number,
  random: number,
  retryAfterMs: number | undefined,
  options: { baseMs: number; capMs: number } = { baseMs: 500, capMs: 30_000 },
): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(ceiling / 2 + (ceiling / 2) * random);
  if (retryAfterMs !== undefined && retryAfterMs > 0)
    return Math.min(options.capMs * 4, Math.max(retryAfterMs, jittered));
  return jittered;
}
