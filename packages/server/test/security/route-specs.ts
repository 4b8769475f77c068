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
  readonly secretName: string;
  /** A secret of the first org that no example deletes: the egress policy's credential rule names it. */
  readonly egressSecretName: string;
  readonly model: string;
  /** The admin's user id (the share examples share the member's session with the admin). */
  readonly adminUserId: string;
  /** A key of the member's that the DELETE /v1/keys/:id example revokes. */
  readonly revocableKeyId: string;
  /** An agent of the first org (its archive example runs after the others). */
  readonly agentId: string;
  /** An environment of the first org, and a second one that the DELETE example removes. */
  readonly environmentId: string;
  readonly scratchEnvironmentId: string;
}

export interface ExampleRequest {
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
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
    example: (f) => ({ params: { id: f.sessionId }, body: { type: "file", file_id: "file_spec" } }),
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
    path: "/v1/files/list",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { path: "/memories/org", recursive: "true" } }),
    fuzz: { query: true },
    queryKeys: ["path", "recursive"],
  },
  {
    method: "GET",
    path: "/v1/files/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path", "version"],
  },
  {
    method: "PUT",
    path: "/v1/files/content",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { path: "/memories/me/notes.md", content: "notes" } }),
    fuzz: { body: true },
  },
  {
    method: "DELETE",
    path: "/v1/files/content",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.scratchPath } }),
    fuzz: { query: true },
    queryKeys: ["path", "expectedVersion"],
  },
  {
    method: "GET",
    path: "/v1/files/history",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path"],
  },
  {
    method: "GET",
    path: "/v1/files/blame",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ query: { path: f.memoryPath } }),
    fuzz: { query: true },
    queryKeys: ["path"],
  },
  {
    method: "POST",
    path: "/v1/skills",
    auth: "admin",
    crossOrg: "own",
    example: () => ({
      body: {
        files: [
          {
            path: "SKILL.md",
            content: "---\nname: probe\ndescription: A probe. Use never.\n---\nNothing.\n",
          },
        ],
      },
    }),
    fuzz: { body: true },
  },
  {
    method: "PUT",
    path: "/v1/secrets/:name",
    // Members may set their own (scope user); org scope needs an admin, as in the example.
    auth: "admin",
    crossOrg: "own",
    example: (f) => ({ params: { name: f.secretName }, body: { value: "rotated-value", scope: "org" } }),
    fuzz: { params: ["name"], body: true },
  },
  {
    method: "GET",
    path: "/v1/secrets",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { scope: "org" } }),
    fuzz: { query: true },
    queryKeys: ["scope"],
  },
  {
    method: "DELETE",
    path: "/v1/secrets/:name",
    auth: "admin",
    crossOrg: "not_found",
    example: (f) => ({ params: { name: f.secretName }, query: { scope: "org" } }),
    fuzz: { params: ["name"], query: true },
    queryKeys: ["scope"],
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
  // Managed Agents API: agents and environments (archive and delete last: later examples need the resource).
  {
    method: "POST",
    path: "/v1/agents",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "probe", model: "claude-sonnet-4-5" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/agents",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { include_archived: "true" } }),
    fuzz: { query: true },
    queryKeys: ["limit", "page", "include_archived", "created_at[gte]", "created_at[lte]"],
  },
  {
    method: "GET",
    path: "/v1/agents/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.agentId }, query: { version: "1" } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["version"],
  },
  {
    method: "POST",
    path: "/v1/agents/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.agentId }, body: { description: "probed" } }),
    fuzz: { params: ["id"], body: true },
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
    path: "/v1/agents/:id/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.agentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/environments",
    auth: "member",
    crossOrg: "own",
    example: () => ({ body: { name: "probe" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/environments",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { include_archived: "true" } }),
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
    example: (f) => ({ params: { id: f.environmentId }, body: { description: "probed" } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "POST",
    path: "/v1/environments/:id/archive",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.environmentId } }),
    fuzz: { params: ["id"] },
  },
  {
    method: "DELETE",
    path: "/v1/environments/:id",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.scratchEnvironmentId } }),
    fuzz: { params: ["id"] },
  },
];
