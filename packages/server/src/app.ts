/** The HTTP API (Hono): routes, auth, validation, SSE. Built from ready adapters; reads no environment. */
import type { IncomingMessage } from "node:http";
import { InputError, type SessionStore } from "@outrig/core";
import { ToolPolicy } from "@outrig/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { EventBus } from "./event-bus.js";
import { errorBody, toErrorResponse } from "./http-error.js";
import { parseQuery, readJson } from "./http-input.js";
import type { RateLimits } from "./middleware/rate-limits.js";
import { requestRateLimit } from "./middleware/request-rate-limit.js";
import { streamLimit } from "./middleware/stream-limit.js";
import {
  type ManagedSessionRouteDependencies,
  registerManagedSessionRoutes,
} from "./routes/managed-session-routes.js";
import type { Caller, SessionManager } from "./session-manager.js";
import { isUploadRequest } from "./upload-requests.js";

export const MAX_BODY_BYTES = 1024 * 1024;
/** After a 413, how much more of the body is read and dropped before the connection closes. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_TIMEOUT_MS = 5_000;

export interface AuthenticatedCaller extends Caller {
  readonly keyId: string;
  readonly role: string;
}

export interface Authenticator {
  authenticate(key: string): Promise<AuthenticatedCaller | null>;
}

export interface PolicyStore {
  get(orgId: string): Promise<ToolPolicy>;
  /** `actor` is who changed it, for the audit log. */
  put(orgId: string, policy: ToolPolicy, actor?: { userId: string }): Promise<void>;
}

export interface AppDependencies {
  readonly auth: Authenticator;
  /** Extra route groups (skills and memories, secrets), registered after the built-in routes. */
  readonly extraRoutes?: readonly ((app: Hono<Env>) => void)[];
  readonly policies?: PolicyStore;
  readonly sessions: SessionManager;
  readonly store: SessionStore;
  readonly bus: EventBus;
  readonly log: (message: string) => void;
  /** Requests per second and open event streams per key and per org; omitted: unlimited. */
  readonly rateLimits?: RateLimits;
  /** Runs around every request (after its request id is set): the request log line and HTTP metrics. */
  readonly requestObserver?: MiddlewareHandler<Env>;
  /** Agents, environments and resource hooks of the Managed Agents API's sessions. */
  readonly managed?: Omit<ManagedSessionRouteDependencies, "sessions" | "store" | "bus">;
}

export type Env = { Variables: { caller: AuthenticatedCaller; requestId: string } };

export function createApp(deps: AppDependencies): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((error, c) => {
    // The client went away mid-request (a truncated body, a closed socket): nobody reads the answer,
    // and it is no server failure to log as one.
    // An InputError is the server's own answer, never a client abort; and reading `signal` would wrap
    // the unread body in a web stream that stalls the 413 drain below until its timeout.
    if (!(error instanceof InputError) && isClientAbort(error, c.req.raw.signal)) {
      return c.json(
        errorBody(400, "client_closed_request", "The client closed the request", c.get("requestId")),
        400,
      );
    }
    const { status, body } = toErrorResponse(error, c.get("requestId"));
    if (status >= 500)
      deps.log(`request ${c.get("requestId") ?? "-"} failed: ${error.stack ?? error.message}`);
    if (status === 413) {
      // The unread rest of an over-large body would be parsed as the next request, so the connection
      // closes. Closing it while the client still sends makes the client fail with EPIPE instead of
      // reading the 413: read and drop the rest first (bounded), then answer and close.
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
      return drainRequestBody(incoming).then(() => c.json(body, 413, { connection: "close" }));
    }
    return c.json(body, status as 500);
  });
  app.notFound((c) => c.json(errorBody(404, "not_found", "No such route", c.get("requestId")), 404));

  app.use("*", async (c, next) => {
    const requestId = `req_${crypto.randomUUID().replaceAll("-", "")}`;
    c.set("requestId", requestId);
    c.header("request-id", requestId);
    await next();
  });
  if (deps.requestObserver) app.use("*", deps.requestObserver);
  app.get("/healthz", (c) => c.json({ ok: true }));

  app.use("/v1/*", async (c, next) => {
    const key = apiKeyOf(c.req.header("x-api-key"), c.req.header("authorization"));
    if (!key)
      throw new InputError(
        "unauthorized",
        "Missing API key: send it as the x-api-key header (or Authorization: Bearer <key>)",
        401,
      );
    const caller = await deps.auth.authenticate(key);
    if (!caller) throw new InputError("unauthorized", "Invalid API key", 401);
    c.set("caller", caller);
    // Viewers are read-only everywhere; revoking one's own key is the one write they may make.
    if (caller.role === "viewer" && !isReadOnlyRequest(c.req.method, c.req.path))
      throw new InputError("read_only", "Viewers have read-only access.", 403);
    await next();
  });
  if (deps.rateLimits) {
    app.use("/v1/*", requestRateLimit(deps.rateLimits));
    app.use("/v1/sessions/:id/events/stream", streamLimit(deps.rateLimits));
  }
  const jsonBodyLimit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new InputError("body_too_large", `Request body is larger than ${MAX_BODY_BYTES} bytes`, 413);
    },
  });
  // Uploads (files, skills) have their own limits, set by their routes.
  app.use("/v1/*", (c, next) =>
    isUploadRequest(c.req.method, c.req.path) ? next() : jsonBodyLimit(c, next),
  );

  registerManagedSessionRoutes(app, {
    ...deps.managed,
    sessions: deps.sessions,
    store: deps.store,
    bus: deps.bus,
  });

  app.get("/v1/policy", async (c) => {
    const policies = requirePolicies(deps);
    return c.json(await policies.get(c.get("caller").orgId));
  });

  app.put("/v1/policy", async (c) => {
    const caller = c.get("caller");
    if (caller.role !== "admin")
      throw new InputError("forbidden", "Only org admins can change the tool policy.", 403);
    const body = await readJson(c, ToolPolicy);
    await requirePolicies(deps).put(caller.orgId, body, { userId: caller.userId });
    return c.json(body);
  });

  app.get("/v1/sessions/:id/files", async (c) => {
    const { path } = parseQuery(c, z.strictObject({ path: z.string().min(1).max(4096) }));
    const data = await deps.sessions.readFile(c.get("caller"), c.req.param("id"), path);
    const isText = isUtf8(data);
    return c.body(data as Uint8Array<ArrayBuffer>, 200, {
      "content-type": isText ? "text/plain; charset=utf-8" : "application/octet-stream",
    });
  });

  for (const register of deps.extraRoutes ?? []) register(app);
  return app;
}

/**
 * The API key of a request: `x-api-key` (what the official SDKs send) or `Authorization: Bearer`.
 * `anthropic-version` and `anthropic-beta` headers are accepted and need no checking: this server
 * speaks one version of the API, and a beta it does not know changes nothing.
 */
export function apiKeyOf(xApiKey: string | undefined, authorization: string | undefined): string | undefined {
  const direct = xApiKey?.trim();
  if (direct && /^\S+$/.test(direct)) return direct;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  return match?.[1];
}

function isReadOnlyRequest(method: string, path: string): boolean {
  return method === "GET" || method === "HEAD" || (method === "DELETE" && path.startsWith("/v1/keys/"));
}

function isClientAbort(error: Error, signal: AbortSignal | undefined): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (
    signal?.aborted === true ||
    code === "ECONNRESET" ||
    code === "ERR_STREAM_PREMATURE_CLOSE" ||
    (error.message === "aborted" && error.name === "Error")
  );
}

/** One HTTP route the server answers: a method and a Hono path pattern (e.g. `/v1/sessions/:id`). */
export interface RouteInfo {
  readonly method: string;
  readonly path: string;
}

/**
 * Every route registered on `app` (built-in and extra route groups), read from Hono's own route table
 * so a new route appears here without anyone listing it; middleware (`app.use`) is left out.
 */
export function listRoutes(app: Hono<Env>): RouteInfo[] {
  const seen = new Set<string>();
  const routes: RouteInfo[] = [];
  for (const route of app.routes) {
    if (route.method === "ALL") continue;
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    routes.push({ method: route.method, path: route.path });
  }
  return routes;
}

function requirePolicies(deps: AppDependencies): PolicyStore {
  if (!deps.policies)
    throw new InputError("not_found", "Tool policies are not available on this server.", 404);
  return deps.policies;
}

function isUtf8(data: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and drops what is left of a request body, up to DRAIN_MAX_BYTES or DRAIN_TIMEOUT_MS (a
 * client sending more or slower gets its connection closed mid-send). Resolves at once without a
 * Node request (app.request() in tests) or when the body was read already.
 */
export function drainRequestBody(
  incoming: IncomingMessage | undefined,
  limits: { maxBytes: number; timeoutMs: number } = {
    maxBytes: DRAIN_MAX_BYTES,
    timeoutMs: DRAIN_TIMEOUT_MS,
  },
): Promise<void> {
  if (!incoming || incoming.complete || incoming.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let bytes = 0;
    const done = () => {
      clearTimeout(timer);
      incoming.off("data", onData);
      incoming.off("end", done);
      incoming.off("close", done);
      incoming.off("error", done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) done();
    };
    const timer = setTimeout(done, limits.timeoutMs);
    timer.unref();
    incoming.on("data", onData);
    incoming.once("end", done);
    incoming.once("close", done);
    incoming.once("error", done);
    incoming.resume();
  });
}
