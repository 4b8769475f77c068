/**
 * The snapshot side every provider shares: one WorkspaceSnapshotter per sandbox, keyed
 * `<prefix>/<orgId>/<sessionId>/…` in the provider's BlobStore, and restores that make a sandbox
 * created on the restored directory snapshot incrementally on top of what it was restored from.
 */
import { resolve } from "node:path";
import { type BlobStore, type CreateSandboxOptions, SandboxError, type SnapshotRef } from "@outrig/core";
import { restoreWorkspace, WorkspaceSnapshotter } from "./workspace-snapshotter.js";

export class ProviderSnapshots {
  readonly #store: BlobStore | undefined;
  readonly #keyPrefix: string;
  readonly #restoredFrom = new Map<string, SnapshotRef>();

  constructor(store: BlobStore | undefined, keyPrefix = "snapshots") {
    this.#store = store;
    this.#keyPrefix = keyPrefix;
  }

  /** Unpacks `ref` into `directory`; rejects with `sandbox_unsupported` without a BlobStore. */
  async restore(ref: SnapshotRef, directory: string): Promise<void> {
    if (!this.#store)
      throw new SandboxError("sandbox_unsupported", "restoring needs a blobStore in the provider options");
    await restoreWorkspace(this.#store, ref, directory);
    this.#restoredFrom.set(resolve(directory), ref);
  }

  /** The snapshotter of a sandbox on `workspaceDir`; undefined without a BlobStore. */
  snapshotterFor(
    options: Pick<CreateSandboxOptions, "sessionId" | "orgId">,
    workspaceDir: string,
  ): WorkspaceSnapshotter | undefined {
    if (!this.#store) return undefined;
    return new WorkspaceSnapshotter({
      store: this.#store,
      workspaceDir,
      keyPrefix: [this.#keyPrefix, options.orgId, options.sessionId].map(toKeySegment).join("/"),
      parent: this.#restoredFrom.get(workspaceDir),
    });
  }
}

function toKeySegment(value: string): string {
  const segment = value.replace(/[^A-Za-z0-9._-]/g, "_");
  return segment === "." || segment === ".." || segment === "" ? "_" : segment;
}
