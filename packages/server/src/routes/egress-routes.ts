/**
 * The org's egress policy: `GET /v1/egress-policy` (any member), `PUT` and `DELETE` (admins). The
 * body is validated strictly (EgressPolicyBody); every change is a `policy_change` audit entry.
 */
import { InputError } from "@outrig/core";
import { EgressPolicyBody } from "@outrig/protocol";
import type { AuditEntryInput } from "@outrig/storage";
import type { Hono } from "hono";
import { readJson } from "../http-input.js";

export interface EgressPolicyRouteStore {
  get(orgId: string): Promise<EgressPolicyBody | null>;
  put(orgId: string, policy: EgressPolicyBody): Promise<EgressPolicyBody>;
  delete(orgId: string): Promise<boolean>;
}

export interface EgressRoutesDependencies {
  readonly policies: EgressPolicyRouteStore;
  readonly audit: { append(orgId: string, entry: AuditEntryInput): Promise<unknown> };
  /** Called after a change (e.g. to drop this worker's cached copy). */
  readonly onChange?: (orgId: string) => void;
}

interface EgressCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

type EgressEnv = { Variables: { caller: EgressCaller } };

/** Registers the routes on an app whose `/v1/*` middleware sets `caller` (see createApp). */
export function registerEgressRoutes<E extends EgressEnv>(
  app: Hono<E>,
  deps: EgressRoutesDependencies,
): void {
  const routes = app as unknown as Hono<EgressEnv>;

  routes.get("/v1/egress-policy", async (c) => {
    const policy = await deps.policies.get(c.get("caller").orgId);
    return c.json(policy ?? { allowedHosts: [], credentials: [] });
  });

  routes.put("/v1/egress-policy", async (c) => {
    const caller = requireAdmin(c.get("caller"));
    const body = await readJson(c, EgressPolicyBody);
    const stored = await deps.policies.put(caller.orgId, body);
    await deps.audit.append(caller.orgId, {
      kind: "policy_change",
      userId: caller.userId,
      data: {
        policy: "egress",
        action: "put",
        allowedHosts: stored.allowedHosts,
        credentials: stored.credentials,
      },
    });
    deps.onChange?.(caller.orgId);
    return c.json(stored);
  });

  routes.delete("/v1/egress-policy", async (c) => {
    const caller = requireAdmin(c.get("caller"));
    const isDeleted = await deps.policies.delete(caller.orgId);
    if (isDeleted) {
      await deps.audit.append(caller.orgId, {
        kind: "policy_change",
        userId: caller.userId,
        data: { policy: "egress", action: "delete" },
      });
    }
    deps.onChange?.(caller.orgId);
    return c.body(null, 204);
  });
}

function requireAdmin(caller: EgressCaller): EgressCaller {
  if (caller.role !== "admin") {
    throw new InputError("forbidden", "Only org admins can change the egress policy.", 403);
  }
  return caller;
}
