/**
 * Write-only secrets API: set, list names, delete. No route returns or logs a value; org-wide
 * secrets need the admin role, a user's own secrets do not.
 */
import { InputError } from "@outrig/core";
import type { SecretActor, SecretMetadata, SecretScope } from "@outrig/storage";
import type { Hono } from "hono";
import { z } from "zod";
import { parseQuery, readJson } from "../http-input.js";

/** The part of PostgresSecretStore the routes use (no way to read a value). */
export interface SecretsRouteStore {
  /** `actor` is who made the change, for the audit log. */
  setSecret(scope: SecretScope, name: string, value: string, actor?: SecretActor): Promise<SecretMetadata>;
  listSecrets(scope: SecretScope): Promise<SecretMetadata[]>;
  deleteSecret(scope: SecretScope, name: string, actor?: SecretActor): Promise<boolean>;
}

export interface SecretsRoutesDependencies {
  readonly secrets: SecretsRouteStore;
  /** Told after an org's secret was set or deleted (caches of decrypted secrets drop the org's). */
  readonly onChange?: (orgId: string) => void;
}

interface SecretsCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

type SecretsEnv = { Variables: { caller: SecretsCaller } };

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_SECRET_CHARACTERS = 64 * 1024;
const Scope = z.enum(["org", "user"]);
const PutSecretBody = z.strictObject({
  value: z.string().min(1).max(MAX_SECRET_CHARACTERS),
  scope: Scope,
});

export interface SecretResource {
  readonly name: string;
  readonly scope: "org" | "user";
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * Adds `PUT /v1/secrets/:name` `{value, scope}`, `GET /v1/secrets` and `DELETE /v1/secrets/:name?scope=`
 * to an app whose `/v1/*` middleware has set `caller` (see createApp). Errors are InputErrors.
 */
export function registerSecretsRoutes<E extends SecretsEnv>(
  app: Hono<E>,
  deps: SecretsRoutesDependencies,
): void {
  const routes = app as unknown as Hono<SecretsEnv>;

  routes.put("/v1/secrets/:name", async (c) => {
    const name = secretName(c.req.param("name"));
    const body = await readJson(c, PutSecretBody);
    const caller = c.get("caller");
    const metadata = await deps.secrets.setSecret(scopeFor(caller, body.scope), name, body.value, {
      userId: caller.userId,
    });
    deps.onChange?.(caller.orgId);
    return c.json(toResource(metadata), metadata.version === 1 ? 201 : 200);
  });

  routes.get("/v1/secrets", async (c) => {
    const { scope } = parseQuery(c, z.strictObject({ scope: Scope.optional() }));
    const caller = c.get("caller");
    const scopes: ("org" | "user")[] = scope ? [scope] : ["org", "user"];
    const lists = await Promise.all(
      scopes.map((each) =>
        deps.secrets.listSecrets(
          each === "org"
            ? { kind: "org", orgId: caller.orgId }
            : { kind: "user", orgId: caller.orgId, userId: caller.userId },
        ),
      ),
    );
    return c.json({ secrets: lists.flat().map(toResource) });
  });

  routes.delete("/v1/secrets/:name", async (c) => {
    const name = secretName(c.req.param("name"));
    const { scope } = parseQuery(c, z.strictObject({ scope: Scope }));
    const caller = c.get("caller");
    const isDeleted = await deps.secrets.deleteSecret(scopeFor(caller, scope), name, {
      userId: caller.userId,
    });
    if (!isDeleted) throw new InputError("not_found", `${scope} secret ${name} not found`, 404);
    deps.onChange?.(caller.orgId);
    return c.body(null, 204);
  });
}

function scopeFor(caller: SecretsCaller, scope: "org" | "user"): SecretScope {
  if (scope === "user") return { kind: "user", orgId: caller.orgId, userId: caller.userId };
  if (caller.role !== "admin") {
    throw new InputError("forbidden", 'Only an org admin may change org secrets; use scope "user"', 403);
  }
  return { kind: "org", orgId: caller.orgId };
}

function secretName(name: string): string {
  if (!SECRET_NAME.test(name)) {
    throw new InputError(
      "invalid_secret_name",
      "A secret name is 1-128 letters, digits or underscores and does not start with a digit",
      400,
    );
  }
  return name;
}

function toResource(metadata: SecretMetadata): SecretResource {
  return {
    name: metadata.name,
    scope: metadata.scope,
    version: metadata.version,
    createdAt: metadata.createdAt.toISOString(),
    updatedAt: metadata.updatedAt.toISOString(),
  };
}
