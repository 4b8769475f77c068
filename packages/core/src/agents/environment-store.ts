/**
 * The environment store: an org's environments. Implemented on Postgres by @outrig/storage
 * (PostgresEnvironmentStore); the routes and the EnvironmentDirectory use only this interface.
 */
import type { EnvironmentDefinition } from "@outrig/protocol";

export interface EnvironmentRecord {
  readonly id: string;
  readonly orgId: string;
  readonly definition: EnvironmentDefinition;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly archivedAt: Date | null;
}

export interface EnvironmentListOptions {
  readonly includeArchived: boolean;
  /** Newest first; the page starts after this environment. */
  readonly after?: { readonly createdAt: Date; readonly id: string };
  readonly limit: number;
}

export interface EnvironmentStore {
  create(orgId: string, definition: EnvironmentDefinition): Promise<EnvironmentRecord>;
  /** Null when the org has no such environment. */
  get(orgId: string, id: string): Promise<EnvironmentRecord | null>;
  /**
   * Locks the environment, hands it to `change` and stores what it returns (null: nothing changed).
   * `change` may throw; nothing is written then. Null when there is no such environment.
   */
  update(
    orgId: string,
    id: string,
    change: (current: EnvironmentRecord) => EnvironmentDefinition | null,
  ): Promise<EnvironmentRecord | null>;
  /** Sets `archivedAt` once; null when there is no such environment. */
  archive(orgId: string, id: string): Promise<EnvironmentRecord | null>;
  /**
   * Deletes the environment unless `isInUse` (run while the row is locked) says a session still uses
   * it: "deleted", "in_use" or "not_found".
   */
  delete(
    orgId: string,
    id: string,
    isInUse: () => Promise<boolean>,
  ): Promise<"deleted" | "in_use" | "not_found">;
  list(orgId: string, options: EnvironmentListOptions): Promise<EnvironmentRecord[]>;
}
