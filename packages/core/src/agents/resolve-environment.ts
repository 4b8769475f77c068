/**
 * Environments: the create and update bodies resolved into what the store keeps (every default
 * filled in), the API object, the EnvironmentConfig sessions read, and the EnvironmentDirectory.
 * Pure mapping; throws InputError.
 */
import {
  type CloudConfigParam,
  type EnvironmentConfigParam,
  type EnvironmentConfigResource,
  type EnvironmentCreateBody,
  type EnvironmentDefinition,
  type EnvironmentResource,
  type EnvironmentUpdateBody,
  MAX_METADATA_KEYS,
  type NetworkingConfig,
  PACKAGE_MANAGERS,
  type PackagesConfig,
} from "@outrig/protocol";
import { InputError } from "../errors/app-error.js";
import type { EnvironmentConfig, EnvironmentDirectory } from "./agent-config.js";
import type { EnvironmentRecord, EnvironmentStore } from "./environment-store.js";

/**
 * Outrig's default networking when a body names none: `limited` with no hosts. The API's own default
 * is more open, but here `unrestricted` needs an org admin's consent, so the default fails closed.
 */
export const DEFAULT_NETWORKING: NetworkingConfig = {
  type: "limited",
  allowed_hosts: [],
  allow_package_managers: false,
  allow_mcp_servers: false,
};

export function resolveEnvironmentDefinition(body: EnvironmentCreateBody): EnvironmentDefinition {
  return {
    name: body.name,
    description: body.description ?? null,
    scope: body.scope ?? "organization",
    config: resolveConfig(body.config ?? { type: "cloud" }, undefined),
    metadata: body.metadata ?? {},
  };
}

/**
 * Applies an update: omitted fields carry over; a cloud config's `networking` and `packages` each
 * replace the stored one when sent. Changing the config's type is a 400 (`invalid_config_type_change`).
 */
export function applyEnvironmentUpdate(
  current: EnvironmentDefinition,
  body: EnvironmentUpdateBody,
): EnvironmentDefinition {
  if (body.config && body.config.type !== current.config.type)
    throw new InputError(
      "invalid_config_type_change",
      `config.type: this environment is ${current.config.type}; its type cannot change to ${body.config.type} (create a new environment)`,
      400,
    );
  const metadata = { ...current.metadata };
  for (const [key, value] of Object.entries(body.metadata ?? {})) {
    if (value === null) delete metadata[key];
    else metadata[key] = value;
  }
  if (Object.keys(metadata).length > MAX_METADATA_KEYS)
    throw new InputError(
      "invalid_request",
      `metadata: at most ${MAX_METADATA_KEYS} keys after the patch`,
      400,
    );
  return {
    name: body.name ?? current.name,
    description: body.description === undefined ? current.description : body.description || null,
    scope: body.scope ?? current.scope,
    config: body.config ? resolveConfig(body.config, current.config) : current.config,
    metadata,
  };
}

function resolveConfig(
  param: EnvironmentConfigParam,
  current: EnvironmentConfigResource | undefined,
): EnvironmentConfigResource {
  if (param.type === "self_hosted") return { type: "self_hosted" };
  const stored = current?.type === "cloud" ? current : undefined;
  return {
    type: "cloud",
    networking:
      param.networking != null
        ? resolveNetworking(param.networking)
        : (stored?.networking ?? DEFAULT_NETWORKING),
    packages:
      param.packages != null ? resolvePackages(param.packages) : (stored?.packages ?? resolvePackages({})),
  };
}

function resolveNetworking(param: NonNullable<CloudConfigParam["networking"]>): NetworkingConfig {
  if (param.type === "unrestricted") return { type: "unrestricted" };
  return {
    type: "limited",
    allowed_hosts: [...new Set(param.allowed_hosts ?? [])],
    allow_package_managers: param.allow_package_managers ?? false,
    allow_mcp_servers: param.allow_mcp_servers ?? false,
  };
}

function resolvePackages(param: NonNullable<CloudConfigParam["packages"]>): PackagesConfig {
  const packages = { type: "packages" } as PackagesConfig;
  for (const manager of PACKAGE_MANAGERS) packages[manager] = [...new Set(param[manager] ?? [])];
  return packages;
}

export function environmentResourceOf(record: EnvironmentRecord): EnvironmentResource {
  return {
    type: "environment",
    id: record.id,
    ...record.definition,
    created_at: record.createdAt.toISOString(),
    updated_at: record.updatedAt.toISOString(),
    archived_at: record.archivedAt?.toISOString() ?? null,
  };
}

/** What sessions read. A self-hosted environment has no networking of its own here: it is empty. */
export function environmentConfigOf(record: EnvironmentRecord): EnvironmentConfig {
  const { config } = record.definition;
  const packages: Record<string, readonly string[]> = {};
  if (config.type === "cloud")
    for (const manager of PACKAGE_MANAGERS)
      if (config.packages[manager].length > 0) packages[manager] = config.packages[manager];
  const networking = config.type === "cloud" ? config.networking : DEFAULT_NETWORKING;
  return {
    id: record.id,
    kind: config.type,
    networking:
      networking.type === "unrestricted"
        ? { type: "unrestricted" }
        : {
            type: "limited",
            allowedHosts: networking.allowed_hosts,
            allowPackageManagers: networking.allow_package_managers,
            allowMcpServers: networking.allow_mcp_servers,
          },
    packages,
    archived: record.archivedAt !== null,
  };
}

/** The directory over `store`; `get` answers null for a missing environment or another org's. */
export function createEnvironmentDirectory(store: EnvironmentStore): EnvironmentDirectory {
  return {
    async get(orgId, id) {
      const record = await store.get(orgId, id);
      return record ? environmentConfigOf(record) : null;
    },
  };
}

/**
 * Throws the 400 a new session in `environment` gets when it cannot run there: archived, or
 * self-hosted (its work queue is the remote-hosts issue's; until then nothing would pick the work up).
 */
export function assertEnvironmentRunnable(environment: EnvironmentConfig): void {
  if (environment.archived)
    throw new InputError(
      "environment_archived",
      `environment ${environment.id} is archived; new sessions cannot use it`,
      400,
    );
  if (environment.kind === "self_hosted")
    throw new InputError(
      "environment_not_runnable",
      `environment ${environment.id} is self_hosted; this server does not run self-hosted sandboxes yet, use a cloud environment`,
      400,
    );
}
