/**
 * The Managed Agents API's Environment resource on the wire, as the pinned SDK
 * (`resources/beta/environments`) sends and reads it: strict create and update bodies and the
 * resolved Environment object. `allowed_hosts` take the egress allowlist's host patterns.
 */
import { z } from "zod";
import { MetadataParam, MetadataPatchParam } from "./agents.js";
import { EgressHostPattern, MAX_EGRESS_HOSTS } from "./egress-policy.js";

/** The package managers an environment installs with, in the order they run. */
export const PACKAGE_MANAGERS = ["apt", "cargo", "gem", "go", "npm", "pip"] as const;
export type PackageManager = (typeof PACKAGE_MANAGERS)[number];
export const MAX_PACKAGES_PER_MANAGER = 200;

/**
 * A package name with an optional version pin (`pandas==2.2.0`, `express@4`, `github.com/x/y@v1`).
 * No spaces, quotes or shell metacharacters: the installer passes each as one argument.
 */
const PackageSpec = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9@_][A-Za-z0-9@/._+:=<>~^!,*-]*$/, {
    message: "a package name with an optional version pin: letters, digits and @/._+:=<>~^!,*- only",
  });
const PackageList = z.array(PackageSpec).max(MAX_PACKAGES_PER_MANAGER).nullish();

export const PackagesParam = z.strictObject({
  type: z.literal("packages").optional(),
  apt: PackageList,
  cargo: PackageList,
  gem: PackageList,
  go: PackageList,
  npm: PackageList,
  pip: PackageList,
});

export const UnrestrictedNetwork = z.strictObject({ type: z.literal("unrestricted") });
export const LimitedNetworkParam = z.strictObject({
  type: z.literal("limited"),
  allowed_hosts: z.array(EgressHostPattern).max(MAX_EGRESS_HOSTS).nullish(),
  allow_package_managers: z.boolean().nullish(),
  allow_mcp_servers: z.boolean().nullish(),
});
export const NetworkingParam = z.discriminatedUnion("type", [UnrestrictedNetwork, LimitedNetworkParam]);
export type NetworkingParam = z.infer<typeof NetworkingParam>;

export const CloudConfigParam = z.strictObject({
  type: z.literal("cloud"),
  networking: NetworkingParam.nullish(),
  packages: PackagesParam.nullish(),
});
export type CloudConfigParam = z.infer<typeof CloudConfigParam>;
export const SelfHostedConfigParam = z.strictObject({ type: z.literal("self_hosted") });
export const EnvironmentConfigParam = z.discriminatedUnion("type", [CloudConfigParam, SelfHostedConfigParam]);
export type EnvironmentConfigParam = z.infer<typeof EnvironmentConfigParam>;

const Scope = z.enum(["organization", "account"]);

/** `POST /v1/environments`. */
export const EnvironmentCreateBody = z.strictObject({
  name: z.string().min(1).max(256),
  config: EnvironmentConfigParam.nullish(),
  description: z.string().max(2048).nullish(),
  metadata: MetadataParam.optional(),
  scope: Scope.nullish(),
});
export type EnvironmentCreateBody = z.infer<typeof EnvironmentCreateBody>;

/** `POST /v1/environments/{id}`: omitted fields keep their value; `metadata` is a patch. */
export const EnvironmentUpdateBody = z.strictObject({
  name: z.string().min(1).max(256).nullish(),
  config: EnvironmentConfigParam.nullish(),
  description: z.string().max(2048).nullish(),
  metadata: MetadataPatchParam.optional(),
  scope: Scope.nullish(),
});
export type EnvironmentUpdateBody = z.infer<typeof EnvironmentUpdateBody>;

// ---- The resolved Environment object, every field present.

export type NetworkingConfig =
  | { type: "unrestricted" }
  | { type: "limited"; allowed_hosts: string[]; allow_package_managers: boolean; allow_mcp_servers: boolean };

export type PackagesConfig = { type: "packages" } & Record<PackageManager, string[]>;

export type EnvironmentConfigResource =
  | { type: "cloud"; networking: NetworkingConfig; packages: PackagesConfig }
  | { type: "self_hosted" };

/** What an environment row holds besides its identity and times. */
export interface EnvironmentDefinition {
  name: string;
  description: string | null;
  scope: "organization" | "account";
  config: EnvironmentConfigResource;
  metadata: Record<string, string>;
}

/** The API's Environment object. */
export interface EnvironmentResource extends EnvironmentDefinition {
  type: "environment";
  id: string;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}
