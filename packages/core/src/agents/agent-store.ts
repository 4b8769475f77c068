/**
 * The agent store: agents of an org, each a chain of immutable versions. Implemented on Postgres by
 * @outrig/storage (PostgresAgentStore); the routes and the AgentDirectory use only this interface.
 */
import type { AgentDefinition } from "@outrig/protocol";

/** One version of an agent, with the agent's own times. */
export interface AgentRecord {
  readonly id: string;
  readonly orgId: string;
  readonly version: number;
  readonly definition: AgentDefinition;
  /** When the agent (version 1) was created. */
  readonly createdAt: Date;
  /** When this version was created. */
  readonly updatedAt: Date;
  readonly archivedAt: Date | null;
}

export interface AgentListOptions {
  readonly includeArchived: boolean;
  readonly createdAtGte?: Date;
  readonly createdAtLte?: Date;
  /** Newest first; the page starts after this agent. */
  readonly after?: { readonly createdAt: Date; readonly id: string };
  readonly limit: number;
}

export interface AgentStore {
  /** Creates the agent at version 1. */
  create(orgId: string, definition: AgentDefinition): Promise<AgentRecord>;
  /** The agent at `version` (the current one when omitted); null when the org has no such agent or version. */
  get(orgId: string, id: string, version?: number): Promise<AgentRecord | null>;
  /**
   * Locks the agent, hands its current version to `change` and stores what it returns as the next
   * version; `change` returns null for "nothing changed" (no new version) and may throw (nothing is
   * written). Null when the org has no such agent.
   */
  update(
    orgId: string,
    id: string,
    change: (current: AgentRecord) => AgentDefinition | null,
  ): Promise<AgentRecord | null>;
  /** Sets `archivedAt` once (archiving twice keeps the first time); null when there is no such agent. */
  archive(orgId: string, id: string): Promise<AgentRecord | null>;
  /** Newest first, at most `limit` rows. */
  list(orgId: string, options: AgentListOptions): Promise<AgentRecord[]>;
  /** The agent's versions, newest first, below `beforeVersion`; null when there is no such agent. */
  listVersions(
    orgId: string,
    id: string,
    options: { readonly beforeVersion?: number; readonly limit: number },
  ): Promise<AgentRecord[] | null>;
}
