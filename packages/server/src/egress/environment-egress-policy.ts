/**
 * The egress allowlist a session in an environment gets, from the org's egress policy (the admin's
 * ceiling) and the environment's networking. Pure. An environment can narrow what the org allows,
 * never widen it: a `limited` environment gets the hosts it names (plus the package registries and
 * its MCP servers when it allows them) that the org's allowlist covers; `unrestricted` gets the org's
 * whole allowlist, and only while the org allows unrestricted environments. Credentials stay the
 * org's rules, injected by egress, for the hosts the result allows.
 */
import type { EnvironmentConfig } from "@outrig/core";
import type { EgressPolicyBody, PackageManager } from "@outrig/protocol";
import { isCoveredByAllowlist } from "../routes/egress-routes.js";

/** The registries each package manager fetches from (what `allow_package_managers` opens). */
export const PACKAGE_MANAGER_HOSTS: Readonly<Record<PackageManager, readonly string[]>> = {
  apt: ["deb.debian.org", "security.debian.org", "archive.ubuntu.com", "security.ubuntu.com"],
  cargo: ["crates.io", "index.crates.io", "static.crates.io"],
  gem: ["rubygems.org", "index.rubygems.org"],
  go: ["proxy.golang.org", "sum.golang.org"],
  npm: ["registry.npmjs.org"],
  pip: ["pypi.org", "files.pythonhosted.org"],
};

export interface EnvironmentEgress {
  /** The session's allowlist (host patterns as the egress proxy takes them). */
  readonly allowedHosts: string[];
  /** The org's credential rules whose host the allowlist covers. */
  readonly credentials: EgressPolicyBody["credentials"];
  /** Hosts the environment asks for that the org's allowlist does not cover: refused, and worth telling. */
  readonly withheldHosts: string[];
  /** Why the environment got less than it asks for as a whole (unrestricted no longer allowed), or null. */
  readonly notice: string | null;
}

/**
 * `environment` null (a session in no environment) keeps today's behaviour: the org's policy as is.
 * No org policy means no host at all, whatever the environment asks for.
 */
export function environmentEgressPolicy(
  orgPolicy: EgressPolicyBody | null,
  environment: EnvironmentConfig | null,
  options: { readonly mcpServerHosts?: readonly string[] } = {},
): EnvironmentEgress {
  const orgHosts = orgPolicy?.allowedHosts ?? [];
  const orgCredentials = orgPolicy?.credentials ?? [];
  if (environment === null)
    return { allowedHosts: [...orgHosts], credentials: [...orgCredentials], withheldHosts: [], notice: null };
  const { networking } = environment;
  if (networking.type === "unrestricted") {
    if (orgPolicy?.allowUnrestrictedEnvironments === true)
      return {
        allowedHosts: [...orgHosts],
        credentials: [...orgCredentials],
        withheldHosts: [],
        notice: null,
      };
    return {
      allowedHosts: [],
      credentials: [],
      withheldHosts: [],
      notice: `environment ${environment.id} is unrestricted, but this org no longer allows unrestricted environments: no host is reachable`,
    };
  }
  const requested = new Set(networking.allowedHosts);
  if (networking.allowPackageManagers)
    for (const hosts of Object.values(PACKAGE_MANAGER_HOSTS)) for (const host of hosts) requested.add(host);
  if (networking.allowMcpServers)
    for (const host of options.mcpServerHosts ?? []) requested.add(host.toLowerCase());
  const allowedHosts: string[] = [];
  const withheldHosts: string[] = [];
  for (const host of requested)
    (isCoveredByAllowlist(orgHosts, host) ? allowedHosts : withheldHosts).push(host);
  return {
    allowedHosts,
    credentials: orgCredentials.filter((rule) => isCoveredByAllowlist(allowedHosts, rule.host)),
    withheldHosts,
    notice: null,
  };
}
