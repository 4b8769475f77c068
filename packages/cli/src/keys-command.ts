/**
 * `outrig keys create`: an operator command that talks to the database directly (it needs no key to make
 * one). `outrig keys ls | new | revoke` and `outrig whoami` are clients of the HTTP API.
 */
import { parseArgs } from "node:util";
import { resolveDatabase, USER_ROLES, type UserRole } from "@outrig/storage";
import { type ApiSettings, apiCall } from "./api-call.js";

export interface KeysCreateOptions {
  readonly home: string;
  readonly databaseUrl: string | undefined;
  readonly org: string;
  readonly user: string;
  readonly name: string;
  /** The role of a new user; default `member`, or `admin` when the org has no admin yet. */
  readonly role?: UserRole;
}

export const KEYS_USAGE =
  "usage: outrig keys create [--org NAME] [--user NAME] [--role admin|member|viewer] [--name NAME]\n" +
  "                                (operator: straight in the database, creates the org and user)\n" +
  "       outrig keys ls [--user USER_ID]\n" +
  "       outrig keys new [--user NAME] [--role admin|member|viewer] [--name NAME]\n" +
  "       outrig keys revoke KEY_ID";

/** Parses `--role`; throws a usage error for anything but admin, member or viewer. */
export function parseRole(value: string | undefined): UserRole | undefined {
  if (value === undefined) return undefined;
  if (!(USER_ROLES as readonly string[]).includes(value))
    throw new Error(`--role must be one of ${USER_ROLES.join(", ")}, not "${value}"`);
  return value as UserRole;
}

/**
 * Creates the org and user when missing and returns a new plaintext API key for that user and the
 * user's role. An existing user keeps their role unless `role` names another (then it changes).
 */
export async function keysCreateCommand(
  options: KeysCreateOptions,
): Promise<{ key: string; role: UserRole }> {
  const database = await resolveDatabase({
    databaseUrl: options.databaseUrl,
    outrigHome: options.home,
    keepAdoptedPostgres: true,
  });
  try {
    const org = await database.auth.ensureOrg(options.org);
    const hasAdmin = (await database.auth.listUsers(org.id)).some((user) => user.role === "admin");
    const defaultRole: UserRole = hasAdmin ? "member" : "admin";
    let user = await database.auth.ensureUser(org.id, {
      name: options.user,
      role: options.role ?? defaultRole,
    });
    if (options.role !== undefined && user.role !== options.role)
      user = (await database.auth.setUserRole(org.id, user.id, options.role)) ?? user;
    const created = await database.auth.createApiKey(org.id, user.id, options.name);
    return { key: created.key, role: user.role };
  } finally {
    await database.close();
  }
}

interface KeyRow {
  id: string;
  userId: string;
  userName: string;
  role: string;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `outrig keys ls | new | revoke` over the API. Writes lines to `out`; throws on errors. */
export async function keysApiCommand(
  argv: readonly string[],
  options: ApiSettings & { readonly out: (text: string) => void },
): Promise<void> {
  const [subcommand, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { user: { type: "string" }, role: { type: "string" }, name: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  switch (subcommand) {
    case "ls": {
      if (positionals.length !== 0 || values.role || values.name) throw new Error(KEYS_USAGE);
      const query = values.user ? `?userId=${encodeURIComponent(values.user)}` : "";
      const { keys } = (await (await apiCall(options, "GET", `/v1/keys${query}`)).json()) as {
        keys: KeyRow[];
      };
      for (const key of keys) {
        const state = key.revokedAt ? `revoked ${key.revokedAt}` : `last used ${key.lastUsedAt ?? "never"}`;
        options.out(`${key.id}\t${key.prefix}…\t${key.userName}\t${key.role}\t${key.name}\t${state}\n`);
      }
      return;
    }
    case "new": {
      if (positionals.length !== 0) throw new Error(KEYS_USAGE);
      const role = parseRole(values.role);
      const response = await apiCall(options, "POST", "/v1/keys", {
        ...(values.user ? { userName: values.user } : {}),
        ...(role ? { role } : {}),
        ...(values.name ? { name: values.name } : {}),
      });
      const created = (await response.json()) as KeyRow & { key: string };
      options.out(`${created.key}\n`);
      options.out(`# key ${created.id} for ${created.userName} (${created.role}); shown once\n`);
      return;
    }
    case "revoke": {
      const [keyId] = positionals;
      if (!keyId || positionals.length !== 1) throw new Error(KEYS_USAGE);
      await apiCall(options, "DELETE", `/v1/keys/${encodeURIComponent(keyId)}`);
      options.out(`revoked ${keyId}\n`);
      return;
    }
    default:
      throw new Error(KEYS_USAGE);
  }
}

/** `outrig whoami`: the org, user and role of the key in use. */
export async function whoamiCommand(options: ApiSettings & { readonly out: (text: string) => void }) {
  const me = (await (await apiCall(options, "GET", "/v1/me")).json()) as {
    orgId: string;
    userId: string;
    userName: string;
    role: string;
    keyId: string;
  };
  options.out(`${me.userName} (${me.userId}), ${me.role} in org ${me.orgId}, key ${me.keyId}\n`);
}
