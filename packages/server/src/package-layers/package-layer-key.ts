/**
 * What identifies a package layer: the base image it was installed on and the environment's
 * packages, normalized (each manager's specs sorted and deduplicated, empty managers dropped), so
 * two environments asking for the same packages in another order share one layer.
 */
import { createHash } from "node:crypto";
import { PACKAGE_MANAGERS } from "@outrig/protocol";

/** Each manager's specs, sorted and unique; managers with none are absent. */
export type NormalizedPackages = Readonly<
  Partial<Record<(typeof PACKAGE_MANAGERS)[number], readonly string[]>>
>;

export function normalizePackages(packages: Readonly<Record<string, readonly string[]>>): NormalizedPackages {
  const normalized: Partial<Record<(typeof PACKAGE_MANAGERS)[number], string[]>> = {};
  for (const manager of PACKAGE_MANAGERS) {
    const specs = [...new Set(packages[manager] ?? [])].sort();
    if (specs.length > 0) normalized[manager] = specs;
  }
  return normalized;
}

export function hasPackages(packages: NormalizedPackages): boolean {
  return Object.keys(packages).length > 0;
}

/** sha256 hex of (format, base image id, normalized packages): the layer's name on disk and on the wire. */
export function packageLayerDigest(baseImageId: string, packages: NormalizedPackages): string {
  return createHash("sha256")
    .update(JSON.stringify(["outrig-package-layer/1", baseImageId, packages]))
    .digest("hex");
}
