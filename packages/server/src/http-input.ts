/** Request parsing shared by every route: JSON bodies and query strings checked by zod, 4xx on bad input. */
import { InputError } from "@outrig/core";
import type { Context } from "hono";
import type { z } from "zod";

/** Validates a value; the error names each bad field (never echoes input values). */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InputError("invalid_request", describeIssues(parsed.error), 400);
  return parsed.data;
}

/** Reads a JSON body: 415 without application/json, 400 for malformed JSON or a schema mismatch. */
export async function readJson<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
    throw new InputError("unsupported_media_type", "Content-Type must be application/json", 415);
  }
  let value: unknown;
  try {
    value = JSON.parse(await c.req.text());
  } catch {
    throw new InputError("invalid_json", "Request body is not valid JSON", 400);
  }
  return parseInput(schema, value);
}

export function parseQuery<T>(c: Context, schema: z.ZodType<T>): T {
  return parseInput(schema, c.req.query());
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}
