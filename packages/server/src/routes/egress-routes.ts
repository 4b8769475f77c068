/**
 * The org's egress policy: `GET /v1/egress-policy` (any member), `PUT` and `DELETE` (admins). The
 * body is validated strictly (EgressPolicyBody), and each credential rule must name a host on the
 * allowlist and a secret that exists; every change is a `policy_change` audit entry.
 */
import { InputError } from "@outrig/core";
import { DEFAULT_ALLOWED_PORTS, isHostAllowed, splitHostPattern } from "@outrig/egress";
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
  /** Which of these secret names the org has (as an org secret or some user's); PostgresSecretStore. */
  readonly secrets: { existingNames(orgId: string, names: readonly string[]): Promise<ReadonlySet<string>> };
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
    await checkCredentialRules(caller.orgId, body, deps.secrets);
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

/**
 * Throws InputError 400 naming each credential rule whose host is off the allowlist (the proxy would
 * refuse the host before injecting, so the rule could never apply) or whose secret does not exist.
 */
async function checkCredentialRules(
  orgId: string,
  policy: EgressPolicyBody,
  secrets: EgressRoutesDependencies["secrets"],
): Promise<void> {
  if (policy.credentials.length === 0) return;
  const existing = await secrets.existingNames(orgId, [
    ...new Set(policy.credentials.map((rule) => rule.secretName)),
  ]);
  const problems: string[] = [];
  policy.credentials.forEach((rule, index) => {
    if (!isCoveredByAllowlist(policy.allowedHosts, rule.host)) {
      problems.push(
        `credentials.${index}.host: ${rule.host} is not on allowedHosts; add it there or drop the rule`,
      );
    }
    if (!existing.has(rule.secretName)) {
      problems.push(
        `credentials.${index}.secretName: this org has no secret named ${rule.secretName}; set it first (outrig secrets set ${rule.secretName})`,
      );
    }
  });
  if (problems.length > 0) throw new InputError("invalid_request", problems.slice(0, 5).join("; "), 400);
}

/**
 * True when every host and port the rule's pattern matches is allowed: an exact host on each of its
 * ports (443 and 80 when it names none), or a wildcard under an allowed wildcard on the same ports.
 */
export function isCoveredByAllowlist(allowedHosts: readonly string[], ruleHost: string): boolean {
  const { name, port } = splitHostPattern(ruleHost);
  const ports = port === null ? DEFAULT_ALLOWED_PORTS : [port];
  if (!name.startsWith("*.")) return ports.every((each) => isHostAllowed(allowedHosts, name, each));
  const suffix = name.slice(1);
  return ports.every((each) =>
    allowedHosts.some((pattern) => {
      const allowed = splitHostPattern(pattern);
      const allowedPorts = allowed.port === null ? DEFAULT_ALLOWED_PORTS : [allowed.port];
      return (
        allowed.name.startsWith("*.") && suffix.endsWith(allowed.name.slice(1)) && allowedPorts.includes(each)
      );
    }),
  );
}

function requireAdmin(caller: EgressCaller): EgressCaller {
  if (caller.role !== "admin") {
    throw new InputError("forbidden", "Only org admins can change the egress policy.", 403);
  }
  return caller;
}
