/**
 * A session's side of its environment's packages: before the session's first step that may start a
 * sandbox, the layer of the environment's packages is found or built (one build per layer on this
 * host, however many sessions wait), with `package_layer.*` events in the session's log; a failed
 * build ends the turn with `turn.error environment_build_failed` carrying the installer's tail.
 */
import type { SessionRecord } from "@outrig/core";
import type { NewSessionEvent } from "@outrig/protocol";
import { PackageBuildError, type PackageLayers } from "./package-layers.js";

export interface SessionPackageLayers {
  readonly layers: PackageLayers;
  /** The packages of the session's environment; null when it has none (or no environment). */
  packagesOf(session: SessionRecord): Promise<Readonly<Record<string, readonly string[]>> | null>;
}

/** The mounts and environment a session's sandboxes get from its layer. */
export interface PackageLayerSetup {
  readonly readOnlyMounts: readonly { readonly hostPath: string; readonly sandboxPath: string }[];
  readonly env: Readonly<Record<string, string>>;
}

/** What preparing a session's layer came to: its sandbox setup (none without packages), or a failed build. */
export type SessionPackageOutcome =
  | { readonly type: "ready"; readonly setup: PackageLayerSetup | undefined }
  | { readonly type: "failed"; readonly message: string };

/**
 * Finds or builds the session's layer, appending `package_layer.build_start` (when it waits for a
 * build), then `package_layer.ready` or `package_layer.error` and `turn.error`. Other failures (the
 * database, the environment's read) reject, and the step is retried like any other.
 */
export async function prepareSessionPackageLayer(
  packageLayers: SessionPackageLayers,
  session: SessionRecord,
  turn: number,
  append: (events: NewSessionEvent[]) => Promise<void>,
): Promise<SessionPackageOutcome> {
  const packages = await packageLayers.packagesOf(session);
  if (!packages) return { type: "ready", setup: undefined };
  try {
    const found = await packageLayers.layers.ensure(
      { orgId: session.orgId, userId: session.userId, packages },
      (digest) => append([{ type: "package_layer.build_start", digest }]),
    );
    if (!found) return { type: "ready", setup: undefined };
    await append([
      {
        type: "package_layer.ready",
        digest: found.layer.digest,
        source: found.source,
        durationMs: found.durationMs,
      },
    ]);
    return { type: "ready", setup: packageLayers.layers.sandboxSetup(found.layer) };
  } catch (error) {
    if (!(error instanceof PackageBuildError)) throw error;
    await append([
      { type: "package_layer.error", digest: error.digest, message: error.message },
      {
        type: "turn.error",
        turn,
        code: error.code,
        message: `The environment's packages could not be installed. ${error.message}`,
      },
    ]);
    return { type: "failed", message: error.message };
  }
}
