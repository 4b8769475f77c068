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
  /** A memory store of the first org with one memory and an older version of it (memory stores API). */
  readonly memoryStore?: {
    readonly storeId: string;
    readonly memoryId: string;
    readonly oldVersionId: string;
    /** A second memory and a second store, which the DELETE examples remove. */
    readonly scratchMemoryId: string;
    readonly scratchStoreId: string;
  };
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
    crossOrg: "own",
    example: (f) => ({ body: { model: f.model, prompt: "hello" } }),
    fuzz: { body: true },
  },
  {
    method: "GET",
    path: "/v1/sessions",
    auth: "member",
    crossOrg: "own",
    example: () => ({ query: { limit: "10" } }),
    fuzz: { query: true },
    queryKeys: ["limit"],
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
    path: "/v1/sessions/:id/messages",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, body: { text: "again" } }),
    fuzz: { params: ["id"], body: true },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/cancel",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId } }),
    exampleStatus: 409,
    fuzz: { params: ["id"] },
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/approvals/:toolCallId",
    auth: "member",
    crossOrg: "not_found",
    // No approval is pending: the owner gets a 4xx, another org must get the same 404 as for no session.
    example: (f) => ({ params: { id: f.sessionId, toolCallId: "toolu_none" }, body: { decision: "allow" } }),
    exampleStatus: 404,
    fuzz: { params: ["id", "toolCallId"], body: true },
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
    path: "/v1/sessions/:id/events",
    auth: "member",
    crossOrg: "not_found",
    example: (f) => ({ params: { id: f.sessionId }, query: { after: "0" } }),
    fuzz: { params: ["id"], query: true },
    queryKeys: ["after"],
    isStream: true,
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
