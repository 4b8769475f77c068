/**
 * The Managed Agents API's environments: create, retrieve, update, list, archive and delete, scoped
 * by org. `unrestricted` networking needs the org's egress policy to allow it (403 otherwise); a
 * delete is refused (409) while a session that is not archived uses the environment.
 */
import { isDeepStrictEqual } from "node:util";
import {
  applyEnvironmentUpdate,
  type EnvironmentStore,
  environmentResourceOf,
  InputError,
  resolveEnvironmentDefinition,
} from "@outrig/core";
import {
  type EgressPolicyBody,
  EnvironmentCreateBody,
  type EnvironmentDefinition,
  type EnvironmentResource,
  EnvironmentUpdateBody,
} from "@outrig/protocol";
import type { Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseQuery, readJson } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";

export interface EnvironmentsRoutesDependencies {
  readonly environments: EnvironmentStore;
  /** The org's egress policy: whether it allows `unrestricted` environments. */
  readonly egressPolicies: { get(orgId: string): Promise<EgressPolicyBody | null> };
  /**
   * Whether a session that is not archived uses the environment. Omitted until sessions carry an
   * `environment_id`: then nothing blocks a delete.
   */
  readonly isInUse?: (orgId: string, environmentId: string) => Promise<boolean>;
  /**
   * Fields Outrig adds to the object (the API has no word for them), e.g. `package_layer`: the state
   * of the layer its `packages` are installed into. Omitted: the API's fields only.
   */
  readonly extraFields?: (
    orgId: string,
    environment: EnvironmentResource,
  ) => Promise<Record<string, unknown>>;
}

interface EnvironmentsCaller {
  readonly orgId: string;
  readonly userId: string;
}

type EnvironmentsEnv = { Variables: { caller: EnvironmentsCaller } };

const ENVIRONMENT_ID = /^env_[A-Za-z0-9]{1,64}$/;

const ListQuery = z.strictObject({
  ...pageQueryFields,
  include_archived: z
    .enum(["true", "false"])
    .transform((value) => value === "true")
    .optional(),
});
const ListCursor = z.strictObject({ created_at: z.iso.datetime(), id: z.string().regex(ENVIRONMENT_ID) });

/** Registers the routes on an app whose `/v1/*` middleware sets `caller` (see createApp). */
export function registerEnvironmentsRoutes<E extends EnvironmentsEnv>(
  app: Hono<E>,
  deps: EnvironmentsRoutesDependencies,
): void {
  const routes = app as unknown as Hono<EnvironmentsEnv>;
  const render = async (orgId: string, record: Parameters<typeof environmentResourceOf>[0]) => {
    const resource = environmentResourceOf(record);
    return deps.extraFields ? { ...resource, ...(await deps.extraFields(orgId, resource)) } : resource;
  };

  /** 403 unless the org allows unrestricted environments (checked only when the result is unrestricted). */
  async function checkNetworking(orgId: string, definition: EnvironmentDefinition): Promise<void> {
    const { config } = definition;
    if (config.type !== "cloud" || config.networking.type !== "unrestricted") return;
    const policy = await deps.egressPolicies.get(orgId);
    if (policy?.allowUnrestrictedEnvironments !== true)
      throw new InputError(
        "unrestricted_not_allowed",
        "This org does not allow unrestricted environments; use limited networking with allowed_hosts, or ask an org admin to set allowUnrestrictedEnvironments in the egress policy.",
        403,
      );
  }

  routes.post("/v1/environments", async (c) => {
    const { orgId } = c.get("caller");
    const definition = resolveEnvironmentDefinition(await readJson(c, EnvironmentCreateBody));
    await checkNetworking(orgId, definition);
    return c.json(await render(orgId, await deps.environments.create(orgId, definition)));
  });

  routes.get("/v1/environments", async (c) => {
    const query = parseQuery(c, ListQuery);
    const after = query.page ? decodeCursor(query.page, ListCursor) : undefined;
    const rows = await deps.environments.list(c.get("caller").orgId, {
      includeArchived: query.include_archived ?? false,
      ...(after ? { after: { createdAt: new Date(after.created_at), id: after.id } } : {}),
      limit: query.limit + 1,
    });
    const page = toPage(rows, query.limit, environmentResourceOf, (row) => ({
      created_at: row.createdAt.toISOString(),
      id: row.id,
    }));
    const extraFields = deps.extraFields;
    if (!extraFields) return c.json(page);
    const { orgId } = c.get("caller");
    const data = await Promise.all(
      page.data.map(async (resource) => ({ ...resource, ...(await extraFields(orgId, resource)) })),
    );
    return c.json({ ...page, data });
  });

  routes.get("/v1/environments/:id", async (c) => {
    const { orgId } = c.get("caller");
    const record = await deps.environments.get(orgId, environmentIdOf(c.req.param("id")));
    if (!record) throw notFound("environment");
    return c.json(await render(orgId, record));
  });

  routes.post("/v1/environments/:id", async (c) => {
    const { orgId } = c.get("caller");
    const id = environmentIdOf(c.req.param("id"));
    const body = await readJson(c, EnvironmentUpdateBody);
    // The policy is read before the row is locked (no await inside the store's transaction).
    const policy = await deps.egressPolicies.get(orgId);
    const record = await deps.environments.update(orgId, id, (current) => {
      if (current.archivedAt !== null)
        throw new InputError(
          "environment_archived",
          "This environment is archived; it can no longer be updated.",
          400,
        );
      const next = applyEnvironmentUpdate(current.definition, body);
      const isUnrestricted = next.config.type === "cloud" && next.config.networking.type === "unrestricted";
      const wasUnrestricted =
        current.definition.config.type === "cloud" &&
        current.definition.config.networking.type === "unrestricted";
      // An environment already unrestricted may be renamed; turning one unrestricted needs the org's consent.
      if (isUnrestricted && !wasUnrestricted && policy?.allowUnrestrictedEnvironments !== true)
        throw new InputError(
          "unrestricted_not_allowed",
          "This org does not allow unrestricted environments; ask an org admin to set allowUnrestrictedEnvironments in the egress policy.",
          403,
        );
      return isDeepStrictEqual(next, current.definition) ? null : next;
    });
    if (!record) throw notFound("environment");
    return c.json(await render(orgId, record));
  });

  routes.post("/v1/environments/:id/archive", async (c) => {
    const { orgId } = c.get("caller");
    const record = await deps.environments.archive(orgId, environmentIdOf(c.req.param("id")));
    if (!record) throw notFound("environment");
    return c.json(await render(orgId, record));
  });

  routes.delete("/v1/environments/:id", async (c) => {
    const { orgId } = c.get("caller");
    const id = environmentIdOf(c.req.param("id"));
    const outcome = await deps.environments.delete(orgId, id, () =>
      deps.isInUse ? deps.isInUse(orgId, id) : Promise.resolve(false),
    );
    if (outcome === "not_found") throw notFound("environment");
    if (outcome === "in_use")
      throw new InputError(
        "environment_in_use",
        "A session that is not archived uses this environment; archive or delete its sessions first, or archive the environment instead.",
        409,
      );
    return c.json({ id, type: "environment_deleted" as const });
  });
}

/** A path id that is no environment id is a 404 like an unknown one. */
function environmentIdOf(value: string): string {
  if (!ENVIRONMENT_ID.test(value)) throw notFound("environment");
  return value;
}
