/** The fake LLM script: an ordered list of turns, one answered per model request, shared across protocols. */
import { readFile } from "node:fs/promises";
import { ConfigError } from "@outrig/core";
import { z } from "zod";

export const FakeLlmToolCall = z.strictObject({
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()).default({}),
  /** Optional fixed id; otherwise one is generated in the vendor's shape. */
  id: z.string().min(1).optional(),
});
export type FakeLlmToolCall = z.infer<typeof FakeLlmToolCall>;

export const FakeLlmErrorSpec = z.strictObject({
  status: z.number().int().min(400).max(599),
  /** Seconds, sent as `retry-after`. */
  retryAfter: z.number().nonnegative().optional(),
  /** Milliseconds, sent as `retry-after-ms`. */
  retryAfterMs: z.number().int().nonnegative().optional(),
  message: z.string().optional(),
});
export type FakeLlmErrorSpec = z.infer<typeof FakeLlmErrorSpec>;

export const FakeLlmRawResponse = z.strictObject({
  status: z.number().int().min(100).max(599).default(200),
  contentType: z.string().default("text/event-stream"),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.string(),
});
export type FakeLlmRawResponse = z.infer<typeof FakeLlmRawResponse>;

export const FakeLlmTurn = z
  .strictObject({
    text: z.string().optional(),
    toolCalls: z.array(FakeLlmToolCall).optional(),
    /** Overrides the stop reason derived from the content (e.g. hitting the token limit). */
    stopReason: z.enum(["end_turn", "tool_use", "max_tokens"]).optional(),
    error: FakeLlmErrorSpec.optional(),
    /** Destroy the socket after this many SSE events. */
    cut: z.number().int().nonnegative().optional(),
    delayMs: z.number().int().nonnegative().optional(),
    raw: FakeLlmRawResponse.optional(),
  })
  .superRefine((turn, context) => {
    const hasContent = turn.text !== undefined || (turn.toolCalls?.length ?? 0) > 0;
    if (!hasContent && turn.error === undefined && turn.raw === undefined && turn.cut === undefined) {
      context.addIssue({
        code: "custom",
        message: "a turn needs text, toolCalls, error, raw or cut",
      });
    }
    if (turn.error !== undefined && (hasContent || turn.raw !== undefined)) {
      context.addIssue({
        code: "custom",
        path: ["error"],
        message: "an error turn cannot also hold content",
      });
    }
    if (turn.raw !== undefined && hasContent) {
      context.addIssue({
        code: "custom",
        path: ["raw"],
        message: "a raw turn cannot also hold text or toolCalls",
      });
    }
  });
export type FakeLlmTurn = z.infer<typeof FakeLlmTurn>;

export const FakeLlmScript = z.strictObject({ turns: z.array(FakeLlmTurn) });
export type FakeLlmScript = z.infer<typeof FakeLlmScript>;
export type FakeLlmScriptInput = z.input<typeof FakeLlmScript>;

/** Formats zod issues as `turns[2].toolCalls[0].name: message` lines. */
export function formatScriptIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path
        .map((segment, index) =>
          typeof segment === "number" ? `[${segment}]` : `${index === 0 ? "" : "."}${String(segment)}`,
        )
        .join("");
      return `${path || "(root)"}: ${issue.message}`;
    })
    .join("; ");
}

/** Validates a script value. Throws ConfigError naming the bad field. */
export function parseFakeLlmScript(value: unknown, source = "script"): FakeLlmScript {
  const result = FakeLlmScript.safeParse(value);
  if (!result.success) {
    throw new ConfigError(
      "invalid_fake_llm_script",
      `invalid fake-llm ${source}: ${formatScriptIssues(result.error)}`,
    );
  }
  return result.data;
}

/** Reads and validates a JSON script file. Throws ConfigError for unreadable files, bad JSON or a bad field. */
export async function loadFakeLlmScript(path: string): Promise<FakeLlmScript> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError("invalid_fake_llm_script", `cannot read fake-llm script ${path}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("invalid_fake_llm_script", `fake-llm script ${path} is not valid JSON`, {
      cause: error,
    });
  }
  return parseFakeLlmScript(value, `script ${path}`);
}
