/**
 * The org's audit log over HTTP, for admins only: `GET /v1/audit` pages entries (filters: kind,
 * session) and `GET /v1/audit/verify` walks the hash chain, checking it against the checkpoints kept
 * outside the database. Never another org's entries.
 */
import { InputError } from "@outrig/core";
import { AUDIT_KIND_NAMES, type AuditEntryResource, type AuditList } from "@outrig/protocol";
import type { AuditChainReport, AuditEntry, AuditListOptions, PostgresAuditLog } from "@outrig/storage";
import type { Hono } from "hono";
import { z } from "zod";
import { parseQuery } from "../http-input.js";

/** The part of PostgresAuditLog the routes use. */
export type AuditRoutesLog = Pick<PostgresAuditLog, "list" | "verifyAuditChain">;

export interface AuditRoutesDependencies {
  readonly audit: AuditRoutesLog;
  /** Verifies against the checkpoints kept outside the database (AuditCheckpoints) when given. */
  readonly checkpoints?: { verify(orgId: string): Promise<AuditChainReport> };
}

interface AuditCaller {
  readonly orgId: string;
  readonly role: string;
}

type AuditEnv = { Variables: { caller: AuditCaller } };

export const MAX_AUDIT_PAGE = 1000;

// Plain decimal digits only: no signs, exponents, hex or whitespace that z.coerce would accept.
const Digits = z.string().regex(/^[0-9]{1,15}$/, "must be a non-negative integer");
const ListQuery = z.strictObject({
  after: Digits.transform(Number).optional(),
  limit: Digits.transform(Number)
    .refine((value) => value >= 1 && value <= MAX_AUDIT_PAGE, `must be between 1 and ${MAX_AUDIT_PAGE}`)
    .optional(),
  kind: z.enum(AUDIT_KIND_NAMES).optional(),
  sessionId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a session id (letters, digits, _ and -)")
    .optional(),
});

/** Adds the audit routes to an app whose `/v1/*` middleware has set `caller` (see createApp). */
export function registerAuditRoutes<E extends AuditEnv>(app: Hono<E>, deps: AuditRoutesDependencies): void {
  const routes = app as unknown as Hono<AuditEnv>;

  routes.get("/v1/audit", async (c) => {
    const caller = requireAdmin(c.get("caller"));
    const query = parseQuery(c, ListQuery);
    const limit = query.limit ?? 100;
    const options: AuditListOptions = {
      afterSeq: query.after ?? 0,
      limit,
      ...(query.kind ? { kind: query.kind } : {}),
      ...(query.sessionId ? { sessionId: query.sessionId } : {}),
    };
    const entries = await deps.audit.list(caller.orgId, options);
    const body: AuditList = {
      entries: entries.map(toResource),
      nextAfter: entries.length === limit ? (entries.at(-1)?.seq ?? null) : null,
    };
    return c.json(body);
  });

  routes.get("/v1/audit/verify", async (c) => {
    const caller = requireAdmin(c.get("caller"));
    parseQuery(c, z.strictObject({}));
    const report = deps.checkpoints
      ? await deps.checkpoints.verify(caller.orgId)
      : await deps.audit.verifyAuditChain(caller.orgId);
    return c.json(report);
  });
}

function requireAdmin(caller: AuditCaller): AuditCaller {
  if (caller.role !== "admin")
    throw new InputError("forbidden", "Only org admins can read the audit log.", 403);
  return caller;
}

function toResource(entry: AuditEntry): AuditEntryResource {
  return {
    seq: entry.seq,
    kind: entry.kind,
    at: entry.at.toISOString(),
    sessionId: entry.sessionId,
    userId: entry.userId,
    data: entry.data,
    prevHash: entry.prevHash,
    hash: entry.hash,
  };
}
