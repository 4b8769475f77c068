/**
 * A session's `github_repository` resources, cloned into its sandbox by `git` in the sandbox itself,
 * so every byte goes through the session's egress: the repository's host must be on the session's
 * allowlist, and the resource's token (if any) is added by egress to requests to that repository
 * only (egress/repository-egress.ts). The sandbox never holds the token: `.git/config` names the
 * plain URL, so later `git fetch` and `git push` from bash authenticate the same way.
 *
 * Each resource is tried once per version (its `updated_at`: rotating the token tries again) on a
 * worker; a clone already in place (a restored workspace, another worker) is kept. A failure becomes
 * one `repository.clone` event with the API's repository error type; the session goes on without it.
 */
import type { ExecRequest, ExecResult } from "@outrig/core";
import type { NewSessionEvent } from "@outrig/protocol";

/** How long one clone may take before it is stopped and reported. */
export const CLONE_TIMEOUT_MS = 10 * 60_000;
const MESSAGE_DETAIL_CHARS = 600;
const EXIT_NOT_EMPTY = 3;
const EXIT_CHECKOUT = 4;

export type RepositoryErrorType =
  | "repository_authentication_error"
  | "repository_forbidden_error"
  | "repository_not_found_error"
  | "repository_checkout_error"
  | "repository_clone_error";

/** What each error means for the client, ahead of git's own words. */
const REASONS: Record<RepositoryErrorType, string> = {
  repository_authentication_error:
    "the host did not accept the credentials; set a valid authorization_token (sessions.resources.update)",
  repository_forbidden_error: "the host refused access to the repository with this authorization_token",
  repository_not_found_error: "the host has no such repository, or hides it from this authorization_token",
  repository_checkout_error: "the branch or commit to check out is not in the repository",
  repository_clone_error: "the repository could not be cloned",
};

export interface RepositoryResource {
  readonly id: string;
  readonly url: string;
  readonly checkout:
    | { readonly type: "branch"; readonly name: string }
    | { readonly type: "commit"; readonly sha: string }
    | null;
  readonly mountPath: string;
  /** Changes when the resource does (a rotated token): the clone is then tried again if it failed. */
  readonly version: string;
}

/** The session's github_repository resources, as stored (see managed/session-object.ts). */
export function repositoryResourcesOf(resources: readonly Record<string, unknown>[]): RepositoryResource[] {
  return resources.flatMap((resource): RepositoryResource[] => {
    if (resource.type !== "github_repository") return [];
    const { id, url, mount_path: mountPath, updated_at: updatedAt } = resource;
    if (typeof id !== "string" || typeof url !== "string" || typeof mountPath !== "string") return [];
    const checkout = resource.checkout as RepositoryResource["checkout"] | undefined;
    return [{ id, url, checkout: checkout ?? null, mountPath, version: `${id}@${String(updatedAt)}` }];
  });
}

/**
 * What the model is told about the session's repositories (null when it has none): where each is,
 * and that git needs no credentials for it.
 */
export function repositoriesPrompt(resources: readonly RepositoryResource[]): string | null {
  if (resources.length === 0) return null;
  const lines = resources.map((resource) => {
    const at = resource.checkout
      ? resource.checkout.type === "branch"
        ? ` (branch ${resource.checkout.name})`
        : ` (commit ${resource.checkout.sha})`
      : "";
    return `- ${resource.mountPath}: a clone of ${resource.url}${at}`;
  });
  return [
    "# Repositories",
    "These git repositories are cloned for this session:",
    ...lines,
    "`git fetch`, `git pull` and `git push` to them work as they are: the session's network access adds the credentials. Do not look for or set a token.",
  ].join("\n");
}

/** Single-quoted for sh. */
function quote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The sh script that clones one repository at its checkout and prints the commit it is at; it keeps
 * an existing clone, refuses a non-empty directory, and leaves nothing behind when the checkout fails.
 */
export function cloneScript(resource: RepositoryResource): string {
  const branch = resource.checkout?.type === "branch" ? ` --branch=${quote(resource.checkout.name)}` : "";
  const commit = resource.checkout?.type === "commit" ? resource.checkout.sha : null;
  return [
    `dir=${quote(resource.mountPath.replace(/\/+$/, "") || "/")}`,
    `if [ -e "$dir/.git" ]; then exec git -C "$dir" rev-parse HEAD; fi`,
    `if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then echo "$dir exists and is not empty" >&2; exit ${EXIT_NOT_EMPTY}; fi`,
    `mkdir -p "$dir" || exit ${EXIT_NOT_EMPTY}`,
    `git clone --quiet${commit ? " --no-checkout" : ""}${branch} -- ${quote(resource.url)} "$dir" || exit $?`,
    ...(commit
      ? [
          `if ! git -C "$dir" -c advice.detachedHead=false checkout --quiet --detach ${quote(commit)} --; then`,
          `  rm -rf "$dir"; echo "commit ${commit} is not in the repository" >&2; exit ${EXIT_CHECKOUT}`,
          "fi",
        ]
      : []),
    `git -C "$dir" rev-parse HEAD`,
  ].join("\n");
}

/** The API's error type for a failed clone, from git's (and egress's) stderr and the exit code. */
export function classifyCloneFailure(exitCode: number | null, stderr: string): RepositoryErrorType {
  // Egress refused (not on the allowlist, a secret in the request): the host never answered.
  if (/^outrig egress refused /m.test(stderr)) return "repository_clone_error";
  if (exitCode === EXIT_CHECKOUT || /Remote branch .* not found in upstream/.test(stderr))
    return "repository_checkout_error";
  if (/Authentication failed|could not read (Username|Password)|returned error: 401/.test(stderr))
    return "repository_authentication_error";
  if (/returned error: 403/.test(stderr)) return "repository_forbidden_error";
  if (/returned error: 404|[Rr]epository (.* )?not found|does not appear to be a git repository/.test(stderr))
    return "repository_not_found_error";
  return "repository_clone_error";
}

export interface CloneRepositoriesOptions {
  readonly resources: readonly RepositoryResource[];
  /** Versions already tried on this worker; updated as each is tried. */
  readonly attempted: Set<string>;
  /** Runs a command in the session's sandbox (with egress refusals appended to its stderr). */
  readonly exec: (request: ExecRequest) => Promise<ExecResult>;
  readonly emit: (event: NewSessionEvent) => Promise<void>;
}

/** Clones every resource not tried yet, one after another, and records each outcome. */
export async function cloneRepositories(options: CloneRepositoriesOptions): Promise<void> {
  for (const resource of options.resources) {
    if (options.attempted.has(resource.version)) continue;
    const result = await options.exec({
      command: cloneScript(resource),
      cwd: "/",
      timeoutMs: CLONE_TIMEOUT_MS,
      // Never prompt for a password: a missing or wrong token must fail, not wait.
      env: { GIT_TERMINAL_PROMPT: "0" },
      maxOutputBytes: 64 * 1024,
    });
    options.attempted.add(resource.version);
    const base = {
      type: "repository.clone" as const,
      resourceId: resource.id,
      url: resource.url,
      mountPath: resource.mountPath,
    };
    const commit = result.stdout.trim().split("\n").at(-1) ?? "";
    if (result.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(commit)) {
      await options.emit({ ...base, commit });
      continue;
    }
    const detail = result.isTimedOut
      ? `it took longer than ${CLONE_TIMEOUT_MS / 60_000} minutes`
      : result.stderr.trim().slice(-MESSAGE_DETAIL_CHARS) ||
        `git exited with ${result.exitCode ?? result.signal}`;
    const type = result.isTimedOut
      ? "repository_clone_error"
      : classifyCloneFailure(result.exitCode, result.stderr);
    await options.emit({
      ...base,
      error: {
        type,
        message: `Cloning ${resource.url} into ${resource.mountPath} failed: ${REASONS[type]} (${detail})`,
      },
    });
  }
}
