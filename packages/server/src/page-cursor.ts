/**
 * Cursor pagination as the API's SDKs iterate it (`PageCursor`): a list answers
 * `{ data: [...], next_page: string | null }` and the SDK asks for the next page with `?page=<next_page>`
 * until `next_page` is null. The cursor is opaque to clients: base64url JSON of where the page ended.
 */
import { InputError } from "@outrig/core";
import { z } from "zod";

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 1000;
const MAX_CURSOR_LENGTH = 1024;

/** The query fields every list takes; spread into a route's strict query schema. */
export const pageQueryFields = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
  page: z.string().min(1).max(MAX_CURSOR_LENGTH).optional(),
};

export interface Page<T> {
  readonly data: T[];
  readonly next_page: string | null;
  /** Set by bidirectional lists (sessions): the cursor of the page before this one. */
  readonly prev_page?: string | null;
}

export function encodeCursor(position: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(position), "utf8").toString("base64url");
}

/** Decodes a cursor this server issued; anything else is a 400 (never a 500, never a silent first page). */
export function decodeCursor<T>(page: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(page, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidCursor();
  return parsed.data;
}

/**
 * Builds a page from `limit + 1` rows read after the cursor: the extra row only says that a next page
 * exists, and the cursor points after the last row returned.
 */
export function toPage<Row, T>(
  rows: readonly Row[],
  limit: number,
  render: (row: Row) => T,
  positionOf: (row: Row) => Record<string, unknown>,
): Page<T> {
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  return {
    data: data.map(render),
    next_page: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}

function invalidCursor(): InputError {
  return new InputError("invalid_request", "page: not a cursor this server issued", 400);
}
