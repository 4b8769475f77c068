/**
 * A session's github_repository tokens as its egress uses them: one `basic` credential rule per
 * resource with a token, for the repository's host and path only (`/owner/repo`, `.git` and below),
 * so `git clone`, `git fetch` and `git push` in the sandbox authenticate while the sandbox never
 * holds the token, and no other repository or host receives it. The rule names the resource
 * (`session_resource:<id>`, never an org secret's name); the value is resolved at injection time.
 */
import type { CredentialRule } from "@outrig/egress";

export const REPOSITORY_SECRET_PREFIX = "session_resource:";

export interface RepositoryEgress {
  readonly rules: readonly CredentialRule[];
  /** Secret name (`session_resource:<id>`) → token. */
  readonly values: ReadonlyMap<string, string>;
}

export const NO_REPOSITORY_EGRESS: RepositoryEgress = { rules: [], values: new Map() };

/** The parts of a github_repository resource egress needs. */
export interface RepositoryResource {
  readonly id: string;
  readonly url: string;
}

/** Host and path of a repository URL (`https://github.com/o/r.git` → github.com, `/o/r`); null if not one. */
export function repositoryLocation(url: string): { host: string; path: string } | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== "https:" || parsed.username || parsed.password) return null;
  const path = parsed.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
  if (!/^\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(path)) return null;
  return { host: parsed.hostname.toLowerCase(), path };
}

/** The github_repository resources among a session's stored resources. */
export function repositoryResourcesOf(resources: readonly Record<string, unknown>[]): RepositoryResource[] {
  return resources.flatMap((resource) =>
    resource.type === "github_repository" &&
    typeof resource.id === "string" &&
    typeof resource.url === "string"
      ? [{ id: resource.id, url: resource.url }]
      : [],
  );
}

/**
 * The rules and values for the session's repository resources that have a token in `tokens`. One
 * rule per repository: egress cannot tell which resource a request is for, so when two resources of
 * the same repository hold different tokens, the one set last (last in `tokens`) is the one sent.
 */
export function toRepositoryEgress(
  resources: readonly RepositoryResource[],
  tokens: ReadonlyMap<string, string>,
): RepositoryEgress {
  const byId = new Map(resources.map((resource) => [resource.id, resource]));
  const rules = new Map<string, CredentialRule>();
  const values = new Map<string, string>();
  for (const [resourceId, token] of tokens) {
    const resource = byId.get(resourceId);
    const location = resource ? repositoryLocation(resource.url) : null;
    if (!location) continue;
    const secretName = `${REPOSITORY_SECRET_PREFIX}${resourceId}`;
    const key = `${location.host}${location.path}`;
    rules.delete(key);
    rules.set(key, {
      host: location.host,
      secretName,
      scheme: "basic",
      username: "x-access-token",
      pathPrefix: location.path,
    });
    values.set(secretName, token);
  }
  return { rules: [...rules.values()], values };
}
