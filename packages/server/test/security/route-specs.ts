/**
 * One entry per HTTP route the server registers: who may call it, a valid example request, what
 * another org must see, and which parts the fuzzer varies. The suite fails for a registered route
 * without an entry here (and for an entry whose route is gone), so a new route must come with its spec.
 *
 * To add a route: append an entry with its method and Hono path exactly as registered.
 */

/**
 * `public`: no key needed. `member`: any member or admin key of the org (viewers too for reads; every
 * non-GET route refuses viewers with 403, except revoking their own key). `admin`: org admins only
 * (members get 403). Routes under `/v1/sessions/:id` also answer 404 to a member of the same org the
 * session is not shared with; the fixture session belongs to the `member` key.
 */
export type AuthClass = "public" | "member" | "admin";

/**
 * What a key of another org gets: `not_found` (404, or 403) for another org's resource by id or path;
 * `own` for routes scoped to the caller's own org (lists, creates, its own policy): a 2xx of its own
 * data is fine there. Either way the response must contain nothing of the first org.
 */
export type CrossOrgExpectation = "not_found" | "own";

/** Ids and names of the first org's data, created by the suite before the specs run. */
export interface SpecFixture {
  readonly sessionId: string;
  /** Sessions of the member that the archive and delete examples act on (not the one above). */
  readonly archivableSessionId: string;
  readonly deletableSessionId: string;
  /** A resource of `sessionId` that stays, and one the DELETE example removes. */
  readonly resourceId: string;
  readonly deletableResourceId: string;
  /** The agent and environment the sessions run with; others the update, archive and delete examples change. */
  readonly agentId: string;
  readonly updatableAgentId: string;
  readonly archivableAgentId: string;
  readonly environmentId: string;
  readonly archivableEnvironmentId: string;
  readonly deletableEnvironmentId: string;
  readonly memoryPath: string;
  /** A second memory of the first org, which the DELETE example removes. */
  readonly scratchPath: string;
  /** An org vault of the first org (display name holds the marker) with credential `credentialId`. */
  readonly vaultId: string;
  readonly credentialId: string;
  /** Org vaults the archive and delete examples take. */
  readonly archiveVaultId: string;
  readonly deleteVaultId: string;
  /** Credentials of `vaultId` the archive and delete examples take. */
  readonly archiveCredentialId: string;
  readonly deleteCredentialId: string;
  /** A credential of the first org that no example deletes: the egress policy's credential rule names it. */
  readonly egressSecretName: string;
  readonly model: string;
  /** The admin's user id (the share examples share the member's session with the admin). */
  readonly adminUserId: string;
  /** A key of the member's that the DELETE /v1/keys/:id example revokes. */
  readonly revocableKeyId: string;
  /** A memory store of the first org with one memory and an older version of it (memory stores API). */
  readonly memoryStore?: {
    readonly storeId: string;
    readonly memoryId: string;
    readonly oldVersionId: string;
    /** A second memory and a second store, which the DELETE examples remove. */
    readonly scratchMemoryId: string;
    readonly scratchStoreId: string;
  };
  /** A Files API file of the first org, and one the DELETE example removes. */
  readonly fileId: string;
  readonly deletableFileId: string;
  /** A skill of the first org (`orga-skill`) with two versions: the first, and one the DELETE example removes. */
  readonly skillId: string;
  readonly skillVersionId: string;
  readonly deletableSkillVersionId: string;
  /** A skill the DELETE /v1/skills/:id example removes. */
  readonly deletableSkillId: string;
}

/** A multipart skill upload: `<name>/SKILL.md` whose description carries `text`. */
export function skillForm(name: string, text: string): FormData {
  const form = new FormData();
  form.append(
    "files[]",
    new File([`---\nname: ${name}\ndescription: ${text}. Use never.\n---\nNothing.\n`], `${name}/SKILL.md`),
  );
  return form;
}

export interface ExampleRequest {
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** A multipart body (file and skill uploads), built afresh for each request. */
  readonly form?: () => FormData;
}

export interface RouteSpec {
  readonly method: string;
  readonly path: string;
  readonly auth: AuthClass;
  readonly crossOrg: CrossOrgExpectation;
  /** A valid request (a 2xx for the owner with the right role). */
  readonly example: (fixture: SpecFixture) => ExampleRequest;
  /** What the fuzzer varies: path parameter names, the query, the JSON body. */
  readonly fuzz: { readonly params?: readonly string[]; readonly query?: boolean; readonly body?: boolean };
  /** Query keys the route knows (the fuzzer mixes them with random ones). */
  readonly queryKeys?: readonly string[];
  /** The owner's answer to `example` when it is not a 2xx by design (e.g. 409: no turn to cancel). */
  readonly exampleStatus?: number;
  /** A server-sent event stream: the client stops reading after the status line. */
  readonly isStream?: boolean;
}

const validPolicy = {
  rules: [{ tool: "Bash", match: "rm -rf *", action: "deny" }],
  approvalTimeoutMs: 60_000,
};

export const ROUTE_SPECS: readonly RouteSpec[] = [
  {
    method: "GET",
    path: "/healthz",
    auth: "public",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "GET",
    path: "/readyz",
    auth: "public",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "POST",
    path: "/v1/sessions",
    auth: "member",
    // Another org's key names an agent and environment it does not have: 404.
    crossOrg: "not_found",
    example: (f) => ({ body: { agent: f.agentId, environment_id: f.environmentId, title: "spec" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "10", order: "asc" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "order", "agent_id", "include_archived", "statuses[]", "created_at[gt]"],
  },
  {
    method: "GET",
    path: "/v1/sessions/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, body: { title: "renamed", metadata: { k: "v" } } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.archivableSessionId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "DELETE",
    path: "/v1/sessions/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.deletableSessionId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/events",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { id: f.sessionId },
      body: { events: [{ type: "user.message", content: [{ type: "text", text: "again" }] }] },
    }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/events",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, query: { limit: "5", order: "desc" } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["limit", "page", "order", "types[]", "created_at[gte]"],
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/events/stream",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["event_deltas[]"],
    isStream: true,
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/resources",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, query: { limit: "2" } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["limit", "page"],
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/resources",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, body: { type: "file", file_id: f.fileId } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/resources/:resourceId",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId, resourceId: f.resourceId } }),
    fuzz: { params: ["id", "resourceId"] },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/resources/:resourceId",
    auth: "member",
    crossOrg: "not_found",
    // The resource is a memory store: it has no token to set (the owner gets a 400).
    example: (f) => ({
      params: { id: f.sessionId, resourceId: f.resourceId },
      body: { authorization_token: "ghp_spec" },
    }),
    exampleStatus: 400,
    fuzz: { params: ["id", "resourceId"], body: true },
  },
  {
    method: "DELETE",
    path: "/v1/sessions/:id/resources/:resourceId",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId, resourceId: f.deletableResourceId } }),
    fuzz: { params: ["id", "resourceId"] },
  },
  {
    method: "POST",
    path: "/v1/agents",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "spec agent", model: "claude-sonnet-4-5" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/agents",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "include_archived"],
  },
  {
    method: "GET",
    path: "/v1/agents/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.agentId } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["version"],
  },
  {
    method: "POST",
    path: "/v1/agents/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.updatableAgentId }, body: { version: 1, description: "updated" } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "POST",
    path: "/v1/agents/:id/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.archivableAgentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "GET",
    path: "/v1/agents/:id/versions",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.agentId } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["limit", "page"],
  },
  {
    method: "POST",
    path: "/v1/environments",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "spec environment" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/environments",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "include_archived"],
  },
  {
    method: "GET",
    path: "/v1/environments/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.environmentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/environments/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.environmentId }, body: { description: "updated" } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "POST",
    path: "/v1/environments/:id/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.archivableEnvironmentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "DELETE",
    path: "/v1/environments/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.deletableEnvironmentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "GET",
    path: "/v1/policy",
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "PUT",
    path: "/v1/policy",
    auth: "admin",
    crossOrg: "own",
    example: () => ({ body: validPolicy }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/files",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, query: { path: "/workspace/owned.txt" } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["path"],
  },
  {
    method: "GET",
    path: "/v1/file_store/list",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { path: "/memories/org", recursive: "true" } }),
    fuzz: { query: true },
    queryKeys: ["path", "recursive"],
  },
  {
    method: "GET",
    path: "/v1/file_store/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path", "version"],
  },
  {
    method: "PUT",
    path: "/v1/file_store/content",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { path: "/memories/me/notes.md", content: "notes" } }),
    fuzz: { body: true },
  },
  {
    method: "DELETE",
    path: "/v1/file_store/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.scratchPath } }),
    fuzz: { query: true },
    queryKeys: ["path", "expectedVersion"],
  },
  {
    method: "GET",
    path: "/v1/file_store/history",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path"],
  },
  {
    method: "GET",
    path: "/v1/file_store/blame",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path"],
  },
  {
    method: "POST",
    path: "/v1/files",
    auth: "member",
    crossOrg: "own",
    example: () => ({
      form: () => {
        const form = new FormData();
        form.append("file", new File(["probe"], "probe.txt", { type: "text/plain" }));
        return form;
      },
    }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/files",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "scope_id", "ids[]"],
  },
  {
    method: "GET",
    path: "/v1/files/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.fileId } }),
    fuzz: { params: ["id"], query: true },
  },
  {
    method: "GET",
    path: "/v1/files/:id/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.fileId } }),
    fuzz: { params: ["id"], query: true },
  },
  {
    method: "DELETE",
    path: "/v1/files/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.deletableFileId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/skills",
    auth: "admin",
    crossOrg: "own",
    example: () => ({ form: () => skillForm("probe", "A probe") }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/skills",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "source"],
  },
  {
    method: "GET",
    path: "/v1/skills/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId } }),
    fuzz: { params: ["id"], query: true },
  },
  {
    method: "DELETE",
    path: "/v1/skills/:id",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.deletableSkillId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/skills/:id/versions",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId }, form: () => skillForm("orga-skill", "A new version") }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "GET",
    path: "/v1/skills/:id/versions",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["limit", "page"],
  },
  {
    method: "GET",
    path: "/v1/skills/:id/versions/:version",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId, version: f.skillVersionId } }),
    fuzz: { params: ["id", "version"], query: true },
  },
  {
    method: "DELETE",
    path: "/v1/skills/:id/versions/:version",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId, version: f.deletableSkillVersionId } }),
    fuzz: { params: ["id", "version"] },
  },
  {
    method: "GET",
    path: "/v1/skills/:id/versions/:version/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.skillId, version: f.skillVersionId } }),
    fuzz: { params: ["id", "version"], query: true },
  },
  {
    method: "POST",
    path: "/v1/vaults",
    // Members may create their own (scope user); an org vault needs an admin, as in the example.
    auth: "admin",
    crossOrg: "own",
    example: () => ({ body: { display_name: "Deploy keys", metadata: { team: "infra" }, scope: "org" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/vaults",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5", include_archived: "true" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "include_archived"],
  },
  {
    method: "GET",
    path: "/v1/vaults/:vaultId",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId } }),
    fuzz: { params: ["vaultId"] },
  },
  {
    method: "POST",
    path: "/v1/vaults/:vaultId",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId }, body: { metadata: { rotated: "yes" } } }),
    fuzz: { params: ["vaultId"], body: true },
  },
  {
    method: "DELETE",
    path: "/v1/vaults/:vaultId",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.deleteVaultId } }),
    fuzz: { params: ["vaultId"] },
  },
  {
    method: "POST",
    path: "/v1/vaults/:vaultId/archive",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.archiveVaultId } }),
    fuzz: { params: ["vaultId"] },
  },
  {
    method: "POST",
    path: "/v1/vaults/:vaultId/credentials",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({
      params: { vaultId: f.vaultId },
      body: {
        display_name: "npm",
        auth: {
          type: "environment_variable",
          secret_name: "NPM_TOKEN",
          secret_value: "npm-token-value",
          networking: { type: "limited", allowed_hosts: ["registry.npmjs.org"] },
        },
      },
    }),
    fuzz: { params: ["vaultId"], body: true },
  },
  {
    method: "GET",
    path: "/v1/vaults/:vaultId/credentials",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId }, query: { limit: "5" } }),
    fuzz: { params: ["vaultId"], query: true },
    queryKeys: ["limit", "page", "include_archived"],
  },
  {
    method: "GET",
    path: "/v1/vaults/:vaultId/credentials/:credentialId",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId, credentialId: f.credentialId } }),
    fuzz: { params: ["vaultId", "credentialId"] },
  },
  {
    method: "POST",
    path: "/v1/vaults/:vaultId/credentials/:credentialId",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({
      params: { vaultId: f.vaultId, credentialId: f.credentialId },
      body: { auth: { type: "static_bearer", token: "rotated-token" }, metadata: { rotated: "yes" } },
    }),
    fuzz: { params: ["vaultId", "credentialId"], body: true },
  },
  {
    method: "DELETE",
    path: "/v1/vaults/:vaultId/credentials/:credentialId",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId, credentialId: f.deleteCredentialId } }),
    fuzz: { params: ["vaultId", "credentialId"] },
  },
  {
    method: "POST",
    path: "/v1/vaults/:vaultId/credentials/:credentialId/archive",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { vaultId: f.vaultId, credentialId: f.archiveCredentialId } }),
    fuzz: { params: ["vaultId", "credentialId"] },
  },
  {
    method: "GET",
    path: "/v1/audit",
    auth: "admin",
    crossOrg: "own",
    example: () => ({ query: { limit: "10", kind: "tool_call" } }),
    fuzz: { query: true },
    queryKeys: ["after", "limit", "kind", "sessionId"],
  },
  {
    method: "GET",
    path: "/v1/audit/verify",
    auth: "admin",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "GET",
    path: "/v1/egress-policy",
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "PUT",
    path: "/v1/egress-policy",
    auth: "admin",
    crossOrg: "own",
    example: (f) => ({
      body: {
        allowedHosts: ["github.com", "*.npmjs.org"],
        credentials: [{ host: "github.com", secretName: f.egressSecretName, scheme: "basic" }],
      },
    }),
    fuzz: { body: true },
  },
  {
    method: "DELETE",
    path: "/v1/egress-policy",
    auth: "admin",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "GET",
    path: "/v1/sandbox-policy",
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "PUT",
    path: "/v1/sandbox-policy",
    auth: "admin",
    crossOrg: "own",
    example: () => ({
      body: { memoryBytes: 512 * 1024 * 1024, pids: 256, commandTimeoutMs: 60_000, coldAfterMs: 900_000 },
    }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/sandbox",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId } }),
    fuzz: { params: ["id"], query: true },
  },
  {
    method: "GET",
    path: "/v1/sessions/:id/shares",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId } }),
    fuzz: { params: ["id"], query: true },
  },
  {
    method: "PUT",
    path: "/v1/sessions/:id/shares/:userId",
    // The owner (or an admin) shares; the example shares the member's session with the admin, read-only.
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId, userId: f.adminUserId }, body: { role: "viewer" } }),
    fuzz: { params: ["id", "userId"], body: true },
  },
  {
    method: "DELETE",
    path: "/v1/sessions/:id/shares/:userId",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId, userId: f.adminUserId } }),
    fuzz: { params: ["id", "userId"] },
  },
  {
    method: "GET",
    path: "/v1/me",
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "GET",
    path: "/v1/users",
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
  },
  {
    method: "GET",
    path: "/v1/keys",
    // Everyone lists their own keys; `userId` of someone else is for admins.
    auth: "member",
    crossOrg: "own",
    example: () => ({}),
    fuzz: { query: true },
    queryKeys: ["userId"],
  },
  {
    method: "POST",
    path: "/v1/keys",
    // A key for oneself; keys for other users and roles are for admins.
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "probe" } }),
    fuzz: { body: true },
  },
  {
    method: "DELETE",
    path: "/v1/keys/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.revocableKeyId } }),
    fuzz: { params: ["id"] },
  },
  // ---- memory stores (the Managed Agents API)
  {
    method: "POST",
    path: "/v1/memory_stores",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "probe store", description: "d", metadata: { k: "v" } } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/memory_stores",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "5" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "include_archived", "created_at[gte]", "created_at[lte]"],
  },
  {
    method: "GET",
    path: "/v1/memory_stores/:store",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.storeId ?? "" } }),
    fuzz: { params: ["store"] },
  },
  {
    method: "POST",
    path: "/v1/memory_stores/:store",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.storeId ?? "" }, body: { description: "updated" } }),
    fuzz: { params: ["store"], body: true },
  },
  {
    method: "POST",
    path: "/v1/memory_stores/:store/memories",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "" },
      body: { path: `/probe/${Date.now()}-${Math.random()}.md`, content: "probe" },
    }),
    fuzz: { params: ["store"], body: true },
    queryKeys: ["view"],
  },
  {
    method: "GET",
    path: "/v1/memory_stores/:store/memories",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.storeId ?? "" }, query: { view: "full" } }),
    fuzz: { params: ["store"], query: true },
    queryKeys: ["limit", "page", "depth", "path_prefix", "view"],
  },
  {
    method: "GET",
    path: "/v1/memory_stores/:store/memories/:memory",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "", memory: f.memoryStore?.memoryId ?? "" },
    }),
    fuzz: { params: ["store", "memory"], query: true },
    queryKeys: ["view"],
  },
  {
    method: "POST",
    path: "/v1/memory_stores/:store/memories/:memory",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "", memory: f.memoryStore?.memoryId ?? "" },
      body: { content: `notes ${Date.now()}` },
    }),
    fuzz: { params: ["store", "memory"], body: true },
    queryKeys: ["view"],
  },
  {
    method: "DELETE",
    path: "/v1/memory_stores/:store/memories/:memory",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "", memory: f.memoryStore?.scratchMemoryId ?? "" },
    }),
    fuzz: { params: ["store", "memory"], query: true },
    queryKeys: ["expected_content_sha256"],
  },
  {
    method: "GET",
    path: "/v1/memory_stores/:store/memory_versions",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.storeId ?? "" } }),
    fuzz: { params: ["store"], query: true },
    queryKeys: ["limit", "page", "memory_id", "operation", "session_id", "api_key_id", "view"],
  },
  {
    method: "GET",
    path: "/v1/memory_stores/:store/memory_versions/:version",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "", version: f.memoryStore?.oldVersionId ?? "" },
    }),
    fuzz: { params: ["store", "version"], query: true },
    queryKeys: ["view"],
  },
  {
    method: "POST",
    path: "/v1/memory_stores/:store/memory_versions/:version/redact",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({
      params: { store: f.memoryStore?.storeId ?? "", version: f.memoryStore?.oldVersionId ?? "" },
    }),
    fuzz: { params: ["store", "version"] },
  },
  {
    method: "POST",
    path: "/v1/memory_stores/:store/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.scratchStoreId ?? "" } }),
    fuzz: { params: ["store"] },
  },
  {
    method: "DELETE",
    path: "/v1/memory_stores/:store",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { store: f.memoryStore?.scratchStoreId ?? "" } }),
    fuzz: { params: ["store"] },
  },
];
