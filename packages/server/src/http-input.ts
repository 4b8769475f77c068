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
  // Postgres cannot store U+0000 in text or JSON: refuse it here instead of failing later as a 500.
  const nulAt = findNul(value, "");
  if (nulAt !== undefined) {
    throw new InputError(
      "invalid_request",
      `${nulAt || "body"}: NUL characters (\\u0000) are not allowed; send binary content base64-encoded`,
      400,
    );
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

/** The path of the first string (or key) holding U+0000, or undefined. Iterative: bodies may nest deeply. */
function findNul(value: unknown, root: string): string | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [current, at] = stack.pop() as [unknown, string];
    if (typeof current === "string") {
      if (current.includes("\u0000")) return at;
    } else if (Array.isArray(current)) {
      current.forEach((item, index) => {
        stack.push([item, `${at}[${index}]`]);
      });
    } else if (current !== null && typeof current === "object") {
      for (const [key, item] of Object.entries(current)) {
        const path = at ? `${at}.${key.slice(0, 50)}` : key.slice(0, 50);
        if (key.includes("\u0000")) return at || "body";
        stack.push([item, path]);
      }
    }
  }
  return undefined;
}
