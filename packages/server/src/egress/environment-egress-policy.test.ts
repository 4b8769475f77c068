import type { EnvironmentConfig } from "@outrig/core";
import type { EgressPolicyBody } from "@outrig/protocol";
import { describe, expect, it } from "vitest";
import { environmentEgressPolicy, PACKAGE_MANAGER_HOSTS } from "./environment-egress-policy.js";

const token = { host: "api.github.com", secretName: "GITHUB_TOKEN", scheme: "bearer" as const };
const npmToken = { host: "registry.npmjs.org", secretName: "NPM_TOKEN", scheme: "bearer" as const };
const orgPolicy: EgressPolicyBody = {
  allowedHosts: ["api.github.com", "*.example.com", "registry.npmjs.org", "pypi.org", "git.corp:8443"],
  credentials: [token, npmToken],
};

function limited(
  allowedHosts: string[],
  flags: { allowPackageManagers?: boolean; allowMcpServers?: boolean } = {},
): EnvironmentConfig {
  return {
    id: "env_test",
    kind: "cloud",
    networking: {
      type: "limited",
      allowedHosts,
      allowPackageManagers: flags.allowPackageManagers ?? false,
      allowMcpServers: flags.allowMcpServers ?? false,
    },
    packages: {},
    archived: false,
  };
}

const unrestricted: EnvironmentConfig = {
  id: "env_open",
  kind: "cloud",
  networking: { type: "unrestricted" },
  packages: {},
  archived: false,
};

describe("environmentEgressPolicy", () => {
  it("keeps the org's policy as is for a session in no environment", () => {
    expect(environmentEgressPolicy(orgPolicy, null)).toEqual({
      allowedHosts: orgPolicy.allowedHosts,
      credentials: orgPolicy.credentials,
      withheldHosts: [],
      notice: null,
    });
  });

  it("gives a limited environment only the hosts it names that the org allows, with their credentials", () => {
    const result = environmentEgressPolicy(
      orgPolicy,
      limited(["api.github.com", "docs.example.com", "evil.test", "git.corp:8443", "git.corp"]),
    );
    expect(result.allowedHosts).toEqual(["api.github.com", "docs.example.com", "git.corp:8443"]);
    expect(result.withheldHosts).toEqual(["evil.test", "git.corp"]);
    // The npm credential's host is not on this session's allowlist, so egress never injects it here.
    expect(result.credentials).toEqual([token]);
    expect(result.notice).toBeNull();
  });

  it("never widens a wildcard the org only allows one host of", () => {
    const result = environmentEgressPolicy(orgPolicy, limited(["*.github.com"]));
    expect(result.allowedHosts).toEqual([]);
    expect(result.withheldHosts).toEqual(["*.github.com"]);
    expect(result.credentials).toEqual([]);
  });

  it("adds the package registries the org allows when the environment allows package managers", () => {
    const result = environmentEgressPolicy(orgPolicy, limited([], { allowPackageManagers: true }));
    expect(result.allowedHosts).toEqual(["registry.npmjs.org", "pypi.org"]);
    const every = Object.values(PACKAGE_MANAGER_HOSTS).flat();
    expect(result.withheldHosts).toEqual(every.filter((host) => !result.allowedHosts.includes(host)));
    expect(result.credentials).toEqual([npmToken]);
    expect(environmentEgressPolicy(orgPolicy, limited([])).allowedHosts).toEqual([]);
  });

  it("adds the agent's MCP server hosts only when the environment allows MCP servers", () => {
    const mcpServerHosts = ["mcp.example.com", "mcp.elsewhere.test"];
    expect(environmentEgressPolicy(orgPolicy, limited([]), { mcpServerHosts }).allowedHosts).toEqual([]);
    const result = environmentEgressPolicy(orgPolicy, limited([], { allowMcpServers: true }), {
      mcpServerHosts,
    });
    expect(result.allowedHosts).toEqual(["mcp.example.com"]);
    expect(result.withheldHosts).toEqual(["mcp.elsewhere.test"]);
  });

  it("gives an unrestricted environment the org's whole allowlist only while the org allows it", () => {
    expect(
      environmentEgressPolicy({ ...orgPolicy, allowUnrestrictedEnvironments: true }, unrestricted),
    ).toEqual({
      allowedHosts: orgPolicy.allowedHosts,
      credentials: orgPolicy.credentials,
      withheldHosts: [],
      notice: null,
    });
    const refused = environmentEgressPolicy(orgPolicy, unrestricted);
    expect(refused.allowedHosts).toEqual([]);
    expect(refused.credentials).toEqual([]);
    expect(refused.notice).toMatch(/no longer allows unrestricted/);
  });

  it("reaches nothing when the org has no egress policy, whatever the environment asks for", () => {
    for (const environment of [limited(["api.github.com"], { allowPackageManagers: true }), unrestricted]) {
      const result = environmentEgressPolicy(null, environment);
      expect(result.allowedHosts).toEqual([]);
      expect(result.credentials).toEqual([]);
    }
  });
});
