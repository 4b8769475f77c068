/** What an org lets its sandboxes reach, and which credentials egress adds on their behalf. */

/** Text the sandbox may hold instead of a credential; egress swaps it for the secret on matching hosts. */
export const SECRET_PLACEHOLDER_PREFIX = "OUTRIG_SECRET_PLACEHOLDER_";

export function secretPlaceholder(name: string): string {
  return `${SECRET_PLACEHOLDER_PREFIX}${name}`;
}

/** Adds secret `secretName` to every HTTPS request to a host matching `host`. */
export interface CredentialRule {
  /** Exact host or `*.suffix`, optionally `:port`; without a port it applies on 443 (and 80) only. */
  readonly host: string;
  readonly secretName: string;
  /**
   * `bearer`: `Authorization: Bearer <secret>`. `basic`: `Authorization: Basic base64(username:secret)`
   * (git over HTTPS). `header`: `<header>: <secret>`. `placeholder` (a vault's environment_variable
   * credential): only where a request header holds the placeholder, which is swapped for the secret;
   * `host` is then matched by name on any port the allowlist admits, and `*` matches every host.
   */
  readonly scheme: "bearer" | "basic" | "header" | "placeholder";
  /** For `basic`. Default `x-access-token` (what GitHub and Gitea accept with a token). */
  readonly username?: string;
  /** For `header`, e.g. `x-api-key`. */
  readonly header?: string;
  /**
   * Request headers only, never to a host that echoes: the response to a request carrying it is read
   * whole (up to 8 MiB, decoded) before any byte reaches the sandbox, and one holding any 12
   * characters in a row of the secret in any known transform is withheld, flagged, and the secret is
   * withdrawn from the session (its later requests are refused). Default false.
   */
  readonly isHeaderOnly?: boolean;
  /**
   * Only for requests whose (normalized) path is this path or lies under it, e.g. `/owner/repo` for
   * one GitHub repository: `/owner/repo`, `/owner/repo.git` and everything under either. Default: any path.
   */
  readonly pathPrefix?: string;
}

export interface EgressPolicy {
  /**
   * Hosts the sandbox may reach: exact names or `*.suffix`, each optionally `:port`; without a port
   * an entry allows ports 443 and 80 only. Everything else is refused.
   */
  readonly allowedHosts: readonly string[];
  readonly credentials: readonly CredentialRule[];
  /**
   * Fake secrets planted in the sandbox; a request carrying one is blocked and flagged. A bare string
   * is reported as `canary #n`; give a label (e.g. the variable it was planted as) to name it.
   */
  readonly canaries: readonly (string | Canary)[];
}

export interface Canary {
  /** Reported as `canary <label>`. Never the value. */
  readonly label: string;
  readonly value: string;
}

/** Which org, user and session a proxy listener serves. */
export interface EgressContext {
  readonly orgId: string;
  readonly userId?: string;
  readonly sessionId?: string;
}

/** Secret access for egress only (backed by PostgresSecretResolver in the server). */
export interface EgressSecrets {
  resolveSecret(context: EgressContext, name: string): Promise<string | null>;
  /** Every secret value the context can see (scanned for in outbound requests). */
  resolveAllSecrets(context: EgressContext): Promise<ReadonlyMap<string, string>>;
}
