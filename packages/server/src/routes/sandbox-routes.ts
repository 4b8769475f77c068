/**
 * Sandbox lifecycle API: the org's sandbox policy (`GET`/`PUT /v1/sandbox-policy`, PUT for admins)
 * and a session's sandbox state folded from its log (`GET /v1/sessions/:id/sandbox`).
 */
import { InputError } from "@outrig/core";
import type { Hono } from "hono";
import { readJson } from "../http-input.js";
import { type EffectiveSandboxPolicy, mergeSandboxPolicy, SandboxPolicy } from "../sandbox-policy.js";
import type { SandboxStateView } from "../sandbox-state.js";

export interface SandboxRoutesDependencies {
  readonly policies: {
    get(orgId: string): Promise<Record<string, unknown> | null>;
    put(orgId: string, policy: SandboxPolicy): Promise<void>;
  };
  readonly defaults: EffectiveSandboxPolicy;
  readonly sessions: {
    sandboxState(
      caller: { orgId: string; userId: string },
      sessionId: string,
    ): Promise<SandboxStateView & { policy: Record<string, number | undefined> }>;
  };
}

interface SandboxCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

type SandboxEnv = { Variables: { caller: SandboxCaller } };

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Registers the routes on an app whose `/v1/*` middleware has set `caller` (see createApp). */
export function registerSandboxRoutes<E extends SandboxEnv>(
  app: Hono<E>,
  deps: SandboxRoutesDependencies,
): void {
  const routes = app as unknown as Hono<SandboxEnv>;

  routes.get("/v1/sandbox-policy", async (c) => {
    const stored = await deps.policies.get(c.get("caller").orgId);
    const parsed = stored ? SandboxPolicy.safeParse(stored) : undefined;
    const policy = parsed?.success ? parsed.data : {};
    return c.json({ policy, effective: mergeSandboxPolicy(deps.defaults, policy) });
  });

  routes.put("/v1/sandbox-policy", async (c) => {
    const caller = c.get("caller");
    if (caller.role !== "admin")
      throw new InputError("forbidden", "Only org admins can change the sandbox policy.", 403);
    const policy = await readJson(c, SandboxPolicy);
    await deps.policies.put(caller.orgId, policy);
    return c.json({ policy, effective: mergeSandboxPolicy(deps.defaults, policy) });
  });

  routes.get("/v1/sessions/:id/sandbox", async (c) => {
    const sessionId = c.req.param("id");
    if (!SESSION_ID.test(sessionId)) throw new InputError("not_found", "Session not found", 404);
    const view = await deps.sessions.sandboxState(c.get("caller"), sessionId);
    const { policy, lastActivityAt: _lastActivity, lastEndedToolCallId: _lastEnded, ...state } = view;
    return c.json({ ...state, limits: view.limits ?? limitsOf(policy) });
  });
}

function limitsOf(policy: Record<string, number | undefined>): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const key of ["memoryBytes", "pids", "cpus", "diskBytes", "commandTimeoutMs"]) {
    const value = policy[key];
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}
