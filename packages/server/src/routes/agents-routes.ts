/**
 * The Managed Agents API's agents: create, retrieve (any version), update (a new immutable version,
 * optimistic on `version`), list, archive and the versions list, scoped by org. Another org's agent
 * is a 404, like one that does not exist.
 */
import { isDeepStrictEqual } from "node:util";
import {
  type AgentStore,
  agentResourceOf,
  applyAgentUpdate,
  InputError,
  resolveAgentDefinition,
} from "@outrig/core";
import { AgentCreateBody, AgentUpdateBody } from "@outrig/protocol";
import type { Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseQuery, readJson } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";

export interface AgentsRoutesDependencies {
  readonly agents: AgentStore;
}

interface AgentsCaller {
  readonly orgId: string;
  readonly userId: string;
}

type AgentsEnv = { Variables: { caller: AgentsCaller } };

const AGENT_ID = /^agent_[A-Za-z0-9]{1,64}$/;
const MAX_VERSION = 2 ** 31 - 1;

const Timestamp = z
  .string()
  .max(64)
  .refine((value) => !Number.isNaN(Date.parse(value)), { message: "an RFC 3339 timestamp" })
  .transform((value) => new Date(value));
const BooleanQuery = z.enum(["true", "false"]).transform((value) => value === "true");

const ListQuery = z.strictObject({
  ...pageQueryFields,
  include_archived: BooleanQuery.optional(),
  "created_at[gte]": Timestamp.optional(),
  "created_at[lte]": Timestamp.optional(),
});
const RetrieveQuery = z.strictObject({
  version: z.coerce.number().int().min(1).max(MAX_VERSION).optional(),
});
const VersionsQuery = z.strictObject(pageQueryFields);
const ListCursor = z.strictObject({ created_at: z.iso.datetime(), id: z.string().regex(AGENT_ID) });
const VersionsCursor = z.strictObject({ version: z.number().int().min(1).max(MAX_VERSION) });

/** Registers the routes on an app whose `/v1/*` middleware sets `caller` (see createApp). */
export function registerAgentsRoutes<E extends AgentsEnv>(
  app: Hono<E>,
  deps: AgentsRoutesDependencies,
): void {
  const routes = app as unknown as Hono<AgentsEnv>;

  routes.post("/v1/agents", async (c) => {
    const body = await readJson(c, AgentCreateBody);
    const record = await deps.agents.create(c.get("caller").orgId, resolveAgentDefinition(body));
    return c.json(agentResourceOf(record));
  });

  routes.get("/v1/agents", async (c) => {
    const query = parseQuery(c, ListQuery);
    const after = query.page ? decodeCursor(query.page, ListCursor) : undefined;
    const rows = await deps.agents.list(c.get("caller").orgId, {
      includeArchived: query.include_archived ?? false,
      ...(query["created_at[gte]"] ? { createdAtGte: query["created_at[gte]"] } : {}),
      ...(query["created_at[lte]"] ? { createdAtLte: query["created_at[lte]"] } : {}),
      ...(after ? { after: { createdAt: new Date(after.created_at), id: after.id } } : {}),
      limit: query.limit + 1,
    });
    return c.json(
      toPage(rows, query.limit, agentResourceOf, (row) => ({
        created_at: row.createdAt.toISOString(),
        id: row.id,
      })),
    );
  });

  routes.get("/v1/agents/:id", async (c) => {
    const id = agentIdOf(c.req.param("id"));
    const query = parseQuery(c, RetrieveQuery);
    const record = await deps.agents.get(c.get("caller").orgId, id, query.version);
    if (!record) throw query.version ? notFound(`agent ${id} version ${query.version}`) : notFound("agent");
    return c.json(agentResourceOf(record));
  });

  routes.post("/v1/agents/:id", async (c) => {
    const id = agentIdOf(c.req.param("id"));
    const body = await readJson(c, AgentUpdateBody);
    const record = await deps.agents.update(c.get("caller").orgId, id, (current) => {
      if (current.archivedAt !== null)
        throw new InputError("agent_archived", "This agent is archived; it can no longer be updated.", 400);
      if (body.version !== undefined && body.version !== current.version)
        throw new InputError(
          "version_conflict",
          `version ${body.version} is not the agent's current version (${current.version}); retrieve the agent and apply the change again`,
          409,
        );
      const next = applyAgentUpdate(current.definition, body);
      // An update that changes nothing makes no new version.
      return isDeepStrictEqual(next, current.definition) ? null : next;
    });
    if (!record) throw notFound("agent");
    return c.json(agentResourceOf(record));
  });

  routes.post("/v1/agents/:id/archive", async (c) => {
    const id = agentIdOf(c.req.param("id"));
    const record = await deps.agents.archive(c.get("caller").orgId, id);
    if (!record) throw notFound("agent");
    return c.json(agentResourceOf(record));
  });

  routes.get("/v1/agents/:id/versions", async (c) => {
    const id = agentIdOf(c.req.param("id"));
    const query = parseQuery(c, VersionsQuery);
    const before = query.page ? decodeCursor(query.page, VersionsCursor) : undefined;
    const rows = await deps.agents.listVersions(c.get("caller").orgId, id, {
      ...(before ? { beforeVersion: before.version } : {}),
      limit: query.limit + 1,
    });
    if (!rows) throw notFound("agent");
    return c.json(toPage(rows, query.limit, agentResourceOf, (row) => ({ version: row.version })));
  });
}

/** A path id that is no agent id is a 404 like an unknown one (never a 400 that tells ids apart). */
function agentIdOf(value: string): string {
  if (!AGENT_ID.test(value)) throw notFound("agent");
  return value;
}
