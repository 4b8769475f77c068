/**
 * The `package_layer` field Outrig adds to the API's Environment object (the API has no word for it):
 * the state on this host of the layer the environment's `packages` are installed into. `null` when
 * there is nothing to install. `pending`: not built yet (the first session builds it).
 */
import type { EnvironmentResource } from "@outrig/protocol";
import type { PackageLayers } from "./package-layers.js";

export interface PackageLayerField {
  readonly type: "package_layer";
  readonly status: "pending" | "building" | "ready" | "failed";
  /** sha256 of (base image, normalized packages): environments asking for the same packages share it. */
  readonly digest: string;
  readonly built_at: string | null;
  readonly error: { readonly type: "environment_build_failed"; readonly message: string } | null;
}

export async function packageLayerFieldOf(
  layers: PackageLayers,
  orgId: string,
  environment: EnvironmentResource,
): Promise<{ package_layer: PackageLayerField | null }> {
  if (environment.config.type !== "cloud") return { package_layer: null };
  const { type: _type, ...packages } = environment.config.packages;
  const state = await layers.state(orgId, packages);
  if (state.status === "none") return { package_layer: null };
  return {
    package_layer: {
      type: "package_layer",
      status: state.status,
      digest: state.digest,
      built_at: state.status === "ready" ? state.builtAt : null,
      error: state.status === "failed" ? { type: "environment_build_failed", message: state.message } : null,
    },
  };
}
