/**
 * The Managed Agents API's vaults and credentials (`/v1/vaults`, `/v1/vaults/:id/credentials`), in
 * the SDK's shapes. Values (tokens, access and refresh tokens, client secrets, secret values) are
 * write-only: they go into the encrypted store and no response, list, error or log carries them.
 *
 * Scope is Outrig's field `scope` on a vault: `"user"` (the default: the caller's own vault, which
 * no one else sees) or `"org"` (visible to the whole org, changed by admins only).
 */
import { InputError } from "@outrig/core";
import type {
  CredentialAuth,
  CredentialChange,
  CredentialRecord,
  CredentialValues,
  PostgresVaultStore,
  VaultCaller,
  VaultRecord,
} from "@outrig/storage";
import type { Hono } from "hono";
import { z } from "zod";
import { parseQuery, readJson } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";

export type VaultsRouteStore = Pick<
  PostgresVaultStore,
  | "createVault"
  | "getVault"
  | "listVaults"
  | "updateVault"
  | "archiveVault"
  | "deleteVault"
  | "createCredential"
  | "getCredential"
  | "listCredentials"
  | "updateCredential"
  | "archiveCredential"
  | "deleteCredential"
>;

export interface VaultsRoutesDependencies {
  readonly vaults: VaultsRouteStore;
  /** Told after a credential of the org changed (caches of decrypted values drop the org's). */
  readonly onChange?: (orgId: string) => void;
}

type VaultsEnv = { Variables: { caller: VaultCaller } };

const MAX_VALUE_CHARACTERS = 64 * 1024;
const DisplayName = z.string().min(1).max(255);
const MetadataKey = z.string().min(1).max(64);
const Metadata = z
  .record(MetadataKey, z.string().max(512))
  .refine((value) => Object.keys(value).length <= 16, "at most 16 keys");
const MetadataPatch = z
  .record(MetadataKey, z.string().max(512).nullable())
  .refine((value) => Object.keys(value).length <= 16, "at most 16 keys");
const Value = z.string().min(1).max(MAX_VALUE_CHARACTERS);
const Url = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:";
    } catch {
      return false;
    }
  }, "must be an http(s) URL");
const OptionalText = z.string().min(1).max(1024).nullable().optional();
/** A bare hostname, an IPv4 address or `*.` wildcard: no scheme, port, path or IPv6. */
const AllowedHost = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$/,
    "a bare hostname, IPv4 address or *.example.com",
  );
const Networking = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("unrestricted") }),
  z.strictObject({ type: z.literal("limited"), allowed_hosts: z.array(AllowedHost).min(1).max(16) }),
]);
const InjectionLocation = z.strictObject({ header: z.boolean().optional(), body: z.boolean().optional() });
/** Variables the sandbox needs for itself (proxy, CA, locale) or uses as canaries: never a credential's. */
const RESERVED_VARIABLES = new Set([
  "PATH",
  "HOME",
  "LANG",
  "TERM",
  "USER",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "SSL_CERT_FILE",
  "GIT_SSL_CAINFO",
  "NODE_EXTRA_CA_CERTS",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
]);
const SecretName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "1-128 letters, digits or underscores, not starting with a digit")
  .refine((name) => !RESERVED_VARIABLES.has(name.toUpperCase()), "is a variable the sandbox reserves");
const TokenEndpointAuth = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("none") }),
  z.strictObject({ type: z.literal("client_secret_basic"), client_secret: Value }),
  z.strictObject({ type: z.literal("client_secret_post"), client_secret: Value }),
]);
const Refresh = z.strictObject({
  client_id: z.string().min(1).max(1024),
  refresh_token: Value,
  token_endpoint: Url,
  token_endpoint_auth: TokenEndpointAuth,
  resource: OptionalText,
  scope: OptionalText,
});
const ExpiresAt = z.iso.datetime({ offset: true }).nullable().optional();

const CreateAuth = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("static_bearer"), token: Value, mcp_server_url: Url }),
  z.strictObject({
    type: z.literal("mcp_oauth"),
    access_token: Value,
    mcp_server_url: Url,
    expires_at: ExpiresAt,
    refresh: Refresh.nullable().optional(),
  }),
  z.strictObject({
    type: z.literal("environment_variable"),
    secret_name: SecretName,
    secret_value: Value,
    networking: Networking,
    injection_location: InjectionLocation.optional(),
  }),
]);
const UpdateAuth = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("static_bearer"), token: Value.nullable().optional() }),
  z.strictObject({
    type: z.literal("mcp_oauth"),
    access_token: Value.nullable().optional(),
    expires_at: ExpiresAt,
    refresh: z
      .strictObject({
        refresh_token: Value.nullable().optional(),
        scope: OptionalText,
        token_endpoint_auth: z
          .discriminatedUnion("type", [
            z.strictObject({
              type: z.literal("client_secret_basic"),
              client_secret: Value.nullable().optional(),
            }),
            z.strictObject({
              type: z.literal("client_secret_post"),
              client_secret: Value.nullable().optional(),
            }),
          ])
          .optional(),
      })
      .nullable()
      .optional(),
  }),
  z.strictObject({
    type: z.literal("environment_variable"),
    secret_value: Value.nullable().optional(),
    networking: Networking.nullable().optional(),
    injection_location: InjectionLocation.optional(),
  }),
]);

const CreateVaultBody = z.strictObject({
  display_name: DisplayName,
  metadata: Metadata.optional(),
  scope: z.enum(["org", "user"]).optional(),
});
const UpdateVaultBody = z.strictObject({
  display_name: DisplayName.nullable().optional(),
  metadata: MetadataPatch.nullable().optional(),
});
const CreateCredentialBody = z.strictObject({
  auth: CreateAuth,
  display_name: DisplayName.nullable().optional(),
  metadata: Metadata.optional(),
});
const UpdateCredentialBody = z.strictObject({
  auth: UpdateAuth.optional(),
  display_name: DisplayName.nullable().optional(),
  metadata: MetadataPatch.nullable().optional(),
});
const ListQuery = z.strictObject({
  ...pageQueryFields,
  include_archived: z.enum(["true", "false"]).optional(),
});
const Position = z.strictObject({ createdAt: z.iso.datetime({ offset: true }), id: z.string().max(100) });
const ID = /^[A-Za-z0-9_-]{1,100}$/;

/** Adds the vault routes to an app whose `/v1/*` middleware has set `caller` (see createApp). */
export function registerVaultsRoutes<E extends VaultsEnv>(
  app: Hono<E>,
  deps: VaultsRoutesDependencies,
): void {
  const routes = app as unknown as Hono<VaultsEnv>;

  routes.post("/v1/vaults", async (c) => {
    const body = await readJson(c, CreateVaultBody);
    const vault = await deps.vaults.createVault(c.get("caller"), {
      displayName: body.display_name,
      metadata: body.metadata ?? {},
      scope: body.scope ?? "user",
    });
    return c.json(toVaultResource(vault));
  });

  routes.get("/v1/vaults", async (c) => {
    const query = parseQuery(c, ListQuery);
    const rows = await deps.vaults.listVaults(c.get("caller"), {
      includeArchived: query.include_archived === "true",
      limit: query.limit + 1,
      ...(query.page ? { after: decodeCursor(query.page, Position) } : {}),
    });
    return c.json(toPage(rows, query.limit, toVaultResource, positionOf));
  });

  routes.get("/v1/vaults/:vaultId", async (c) => {
    const vault = await deps.vaults.getVault(c.get("caller"), vaultIdOf(c.req.param("vaultId")));
    return c.json(toVaultResource(vault ?? vaultNotFound(c.req.param("vaultId"))));
  });

  routes.post("/v1/vaults/:vaultId", async (c) => {
    const vaultId = vaultIdOf(c.req.param("vaultId"));
    const body = await readJson(c, UpdateVaultBody);
    const vault = await deps.vaults.updateVault(c.get("caller"), vaultId, {
      ...(body.display_name ? { displayName: body.display_name } : {}),
      ...(body.metadata ? { metadata: body.metadata } : {}),
    });
    return c.json(toVaultResource(vault ?? vaultNotFound(vaultId)));
  });

  routes.post("/v1/vaults/:vaultId/archive", async (c) => {
    const vaultId = vaultIdOf(c.req.param("vaultId"));
    const vault = await deps.vaults.archiveVault(c.get("caller"), vaultId);
    return c.json(toVaultResource(vault ?? vaultNotFound(vaultId)));
  });

  routes.delete("/v1/vaults/:vaultId", async (c) => {
    const vaultId = vaultIdOf(c.req.param("vaultId"));
    const caller = c.get("caller");
    if (!(await deps.vaults.deleteVault(caller, vaultId))) vaultNotFound(vaultId);
    deps.onChange?.(caller.orgId);
    return c.json({ id: vaultId, type: "vault_deleted" });
  });

  routes.post("/v1/vaults/:vaultId/credentials", async (c) => {
    const vaultId = vaultIdOf(c.req.param("vaultId"));
    const body = await readJson(c, CreateCredentialBody);
    const caller = c.get("caller");
    const { auth, values } = authOnCreate(body.auth);
    const credential = await deps.vaults.createCredential(caller, vaultId, {
      displayName: body.display_name ?? null,
      metadata: body.metadata ?? {},
      auth,
      values,
    });
    deps.onChange?.(caller.orgId);
    return c.json(toCredentialResource(credential ?? vaultNotFound(vaultId)));
  });

  routes.get("/v1/vaults/:vaultId/credentials", async (c) => {
    const vaultId = vaultIdOf(c.req.param("vaultId"));
    const query = parseQuery(c, ListQuery);
    const rows = await deps.vaults.listCredentials(c.get("caller"), vaultId, {
      includeArchived: query.include_archived === "true",
      limit: query.limit + 1,
      ...(query.page ? { after: decodeCursor(query.page, Position) } : {}),
    });
    return c.json(toPage(rows ?? vaultNotFound(vaultId), query.limit, toCredentialResource, positionOf));
  });

  routes.get("/v1/vaults/:vaultId/credentials/:credentialId", async (c) => {
    const { vaultId, credentialId } = credentialPath(c.req.param("vaultId"), c.req.param("credentialId"));
    const credential = await deps.vaults.getCredential(c.get("caller"), vaultId, credentialId);
    return c.json(toCredentialResource(credential ?? credentialNotFound(credentialId)));
  });

  routes.post("/v1/vaults/:vaultId/credentials/:credentialId", async (c) => {
    const { vaultId, credentialId } = credentialPath(c.req.param("vaultId"), c.req.param("credentialId"));
    const body = await readJson(c, UpdateCredentialBody);
    const caller = c.get("caller");
    const credential = await deps.vaults.updateCredential(caller, vaultId, credentialId, {
      ...(body.display_name === undefined ? {} : { displayName: body.display_name }),
      ...(body.metadata ? { metadata: body.metadata } : {}),
      change: (current) => authOnUpdate(current, body.auth),
    });
    deps.onChange?.(caller.orgId);
    return c.json(toCredentialResource(credential ?? credentialNotFound(credentialId)));
  });

  routes.post("/v1/vaults/:vaultId/credentials/:credentialId/archive", async (c) => {
    const { vaultId, credentialId } = credentialPath(c.req.param("vaultId"), c.req.param("credentialId"));
    const caller = c.get("caller");
    const credential = await deps.vaults.archiveCredential(caller, vaultId, credentialId);
    deps.onChange?.(caller.orgId);
    return c.json(toCredentialResource(credential ?? credentialNotFound(credentialId)));
  });

  routes.delete("/v1/vaults/:vaultId/credentials/:credentialId", async (c) => {
    const { vaultId, credentialId } = credentialPath(c.req.param("vaultId"), c.req.param("credentialId"));
    const caller = c.get("caller");
    if (!(await deps.vaults.deleteCredential(caller, vaultId, credentialId)))
      credentialNotFound(credentialId);
    deps.onChange?.(caller.orgId);
    return c.json({ id: credentialId, type: "vault_credential_deleted" });
  });
}

type CreateAuth = z.infer<typeof CreateAuth>;
type UpdateAuth = z.infer<typeof UpdateAuth>;

/** Splits a create body's `auth` into what may be shown and the values to seal. */
function authOnCreate(auth: CreateAuth): { auth: CredentialAuth; values: CredentialValues } {
  switch (auth.type) {
    case "static_bearer":
      return { auth: { type: auth.type, mcp_server_url: auth.mcp_server_url }, values: { main: auth.token } };
    case "mcp_oauth": {
      const refresh = auth.refresh ?? null;
      return {
        auth: {
          type: auth.type,
          mcp_server_url: auth.mcp_server_url,
          expires_at: auth.expires_at ?? null,
          refresh: refresh
            ? {
                client_id: refresh.client_id,
                token_endpoint: refresh.token_endpoint,
                token_endpoint_auth: { type: refresh.token_endpoint_auth.type },
                resource: refresh.resource ?? null,
                scope: refresh.scope ?? null,
              }
            : null,
        },
        values: {
          main: auth.access_token,
          ...(refresh ? { refresh_token: refresh.refresh_token } : {}),
          ...(refresh && refresh.token_endpoint_auth.type !== "none"
            ? { client_secret: refresh.token_endpoint_auth.client_secret }
            : {}),
        },
      };
    }
    case "environment_variable": {
      const location = {
        header: auth.injection_location?.header ?? true,
        body: auth.injection_location?.body ?? false,
      };
      assertInjectionLocation(location);
      return {
        auth: {
          type: auth.type,
          secret_name: auth.secret_name,
          networking: auth.networking,
          injection_location: location,
        },
        values: { main: auth.secret_value },
      };
    }
  }
}

/** The new `auth` and the values to rotate, from the current `auth` and an update body's. */
function authOnUpdate(current: CredentialAuth, update: UpdateAuth | undefined): CredentialChange {
  if (!update) return { auth: current, values: {} };
  if (update.type !== current.type) {
    throw new InputError(
      "invalid_request",
      `auth.type: this credential is ${current.type}; its type cannot change`,
      400,
    );
  }
  if (current.type === "static_bearer" && update.type === "static_bearer") {
    return { auth: current, values: update.token ? { main: update.token } : {} };
  }
  if (current.type === "environment_variable" && update.type === "environment_variable") {
    const location = { ...current.injection_location, ...update.injection_location };
    assertInjectionLocation(location);
    return {
      auth: { ...current, networking: update.networking ?? current.networking, injection_location: location },
      values: update.secret_value ? { main: update.secret_value } : {},
    };
  }
  if (current.type === "mcp_oauth" && update.type === "mcp_oauth") {
    const values: { main?: string; refresh_token?: string | null; client_secret?: string | null } = {};
    if (update.access_token) values.main = update.access_token;
    let refresh = current.refresh;
    if (update.refresh === null) {
      refresh = null;
      values.refresh_token = null;
      values.client_secret = null;
    } else if (update.refresh) {
      if (!refresh) {
        throw new InputError(
          "invalid_request",
          "auth.refresh: this credential has no refresh configuration",
          400,
        );
      }
      if (update.refresh.refresh_token) values.refresh_token = update.refresh.refresh_token;
      const endpointAuth = update.refresh.token_endpoint_auth;
      if (endpointAuth) {
        if (endpointAuth.type !== refresh.token_endpoint_auth.type) {
          throw new InputError(
            "invalid_request",
            `auth.refresh.token_endpoint_auth.type: this credential uses ${refresh.token_endpoint_auth.type}`,
            400,
          );
        }
        if (endpointAuth.client_secret) values.client_secret = endpointAuth.client_secret;
      }
      refresh = {
        ...refresh,
        ...(update.refresh.scope === undefined ? {} : { scope: update.refresh.scope }),
      };
    }
    return {
      auth: {
        ...current,
        ...(update.expires_at === undefined ? {} : { expires_at: update.expires_at }),
        refresh,
      },
      values,
    };
  }
  throw new InputError("invalid_request", "auth: does not match the credential", 400);
}

function assertInjectionLocation(location: { header: boolean; body: boolean }): void {
  if (!location.header && !location.body) {
    throw new InputError("invalid_request", "auth.injection_location: enable header or body", 400);
  }
  if (location.body) {
    throw new InputError(
      "injection_location_unsupported",
      "auth.injection_location.body: Outrig's egress substitutes placeholders in request headers only",
      400,
    );
  }
}

function vaultIdOf(id: string): string {
  if (!ID.test(id)) vaultNotFound(id);
  return id;
}

function credentialPath(vaultId: string, credentialId: string): { vaultId: string; credentialId: string } {
  if (!ID.test(credentialId)) credentialNotFound(credentialId);
  return { vaultId: vaultIdOf(vaultId), credentialId };
}

function vaultNotFound(id: string): never {
  throw new InputError("not_found", `vault ${ID.test(id) ? id : "(malformed id)"} not found`, 404);
}

function credentialNotFound(id: string): never {
  throw new InputError("not_found", `credential ${ID.test(id) ? id : "(malformed id)"} not found`, 404);
}

function positionOf(row: { createdAt: Date; id: string }): Record<string, unknown> {
  return { createdAt: row.createdAt.toISOString(), id: row.id };
}

export function toVaultResource(vault: VaultRecord) {
  return {
    type: "vault" as const,
    id: vault.id,
    display_name: vault.displayName,
    metadata: vault.metadata,
    scope: vault.scope,
    archived_at: vault.archivedAt?.toISOString() ?? null,
    created_at: vault.createdAt.toISOString(),
    updated_at: vault.updatedAt.toISOString(),
  };
}

export function toCredentialResource(credential: CredentialRecord) {
  return {
    type: "vault_credential" as const,
    id: credential.id,
    vault_id: credential.vaultId,
    display_name: credential.displayName,
    metadata: credential.metadata,
    auth: credential.auth,
    archived_at: credential.archivedAt?.toISOString() ?? null,
    created_at: credential.createdAt.toISOString(),
    updated_at: credential.updatedAt.toISOString(),
  };
}
