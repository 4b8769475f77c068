/**
 * A LanguageModel whose answers a test queues in advance. It records every request and fails
 * loudly when called with an empty queue; `assertDone()` fails if steps were left unused.
 */
import type { LanguageModel, ModelEvent, ModelRequest } from "@outrig/core";
import type { AssistantMessage, StopReason, Usage } from "@outrig/protocol";

export type ScriptedStep =
  | {
      readonly text?: string;
      readonly toolCalls?: readonly {
        readonly name: string;
        readonly input: unknown;
        readonly id?: string;
      }[];
      readonly stopReason?: StopReason;
    }
  | { readonly error: { readonly code: string; readonly retryable: boolean; readonly retryAfterMs?: number } }
  /** Waits until the signal aborts, then ends with a cancelled error. */
  | { readonly hang: true };

export class ScriptedModel implements LanguageModel {
  readonly provider = "scripted";
  readonly modelId = "scripted-model";
  readonly requests: ModelRequest[] = [];
  readonly #steps: ScriptedStep[];
  #callCount = 0;

  constructor(steps: readonly ScriptedStep[]) {
    this.#steps = [...steps];
  }

  enqueue(...steps: ScriptedStep[]): void {
    this.#steps.push(...steps);
  }

  get remaining(): number {
    return this.#steps.length;
  }

  assertDone(): void {
    if (this.#steps.length > 0)
      throw new Error(`ScriptedModel: ${this.#steps.length} scripted steps were not used`);
  }

  async *stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
    this.requests.push(structuredClone(request));
    const step = this.#steps.shift();
    this.#callCount += 1;
    if (!step) throw new Error(`ScriptedModel: called (call ${this.#callCount}) with no scripted step left`);
    if ("error" in step) {
      yield { type: "error", message: `scripted ${step.error.code}`, ...step.error };
      return;
    }
    if ("hang" in step) {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      yield { type: "error", code: "cancelled", message: "aborted", retryable: false };
      return;
    }
    const content: AssistantMessage["content"] = [];
    if (step.text) {
      for (const piece of step.text.match(/.{1,8}/gs) ?? []) yield { type: "text.delta", text: piece };
      content.push({ type: "text", text: step.text });
    }
    for (const [index, call] of (step.toolCalls ?? []).entries()) {
      content.push({
        type: "tool_call",
        toolCallId: call.id ?? `call_${this.#callCount}_${index}`,
        name: call.name,
        input: call.input,
      });
    }
    const usage: Usage = { inputTokens: 10, outputTokens: 5 };
    const stopReason = step.stopReason ?? ((step.toolCalls?.length ?? 0) > 0 ? "tool_use" : "end_turn");
    yield { type: "end", message: { role: "assistant", content }, stopReason, usage };
  }
}
