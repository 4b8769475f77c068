/**
 * The API's Session object (`BetaManagedAgentsSession`) and session resources, rendered from a
 * SessionRecord. Sessions created before the API (no pinned agent) show an agent built from their model.
 */
import { type SessionRecord, type SessionStore, toMonetaryAmount } from "@outrig/core";
import { createId } from "@outrig/storage";
import { sessionListCostNanos } from "../session-budget.js";
import type { ResourceParams } from "./managed-session-bodies.js";
import { TERMINAL_ERROR_CODES } from "./session-event-projection.js";

export type ApiSessionStatus = "rescheduling" | "running" | "idle" | "terminated";

/** What the end of a session's log says about its status beyond the record's own. */
export type RecentState = "none" | "awaiting_action" | "rescheduling" | "terminated";

/**
 * Outrig's status as the API's: a failed turn leaves the session idle (its `session.error` says why),
 * unless the error was terminal (`terminated`); a running turn that waits for a confirmation is idle
 * too (`requires_action`), and one whose model call failed and is retried is `rescheduling`.
 */
export function apiStatusOf(record: SessionRecord, recent: RecentState | boolean = "none"): ApiSessionStatus {
  const state = recent === true ? "awaiting_action" : recent === false ? "none" : recent;
  if (state === "terminated") return "terminated";
  if (record.status !== "running" || state === "awaiting_action") return "idle";
  return state === "rescheduling" ? "rescheduling" : "running";
}

/**
 * How far back from the end of the log a pending request is looked for (sandbox events may follow it,
 * and one model answer may ask for many confirmations).
 */
const RECENT_EVENTS = 100;

/**
 * Reads the end of the log of a running session (a pending confirmation, a model retry) or of one whose
 * last turn failed (a terminal error); other sessions need no read.
 */
export async function recentStateOf(store: SessionStore, record: SessionRecord): Promise<RecentState> {
  if (record.status !== "running" && record.status !== "error") return "none";
  const recent = await store.readEvents(record.id, {
    afterSeq: Math.max(0, record.lastSeq - RECENT_EVENTS),
    limit: RECENT_EVENTS,
  });
  const meaningful = recent
    .reverse()
    .filter((event) => !event.type.startsWith("sandbox.") && event.type !== "message.queue");
  const latest = meaningful[0];
  if (record.status === "error")
    return latest?.type === "turn.error" && TERMINAL_ERROR_CODES.has(latest.code) ? "terminated" : "none";
  if (latest?.type === "model.retry") return "rescheduling";
  // Waiting: a request of the latest model answer (they follow its message.end) has no answer yet.
  const answered = new Set<string>();
  for (const event of meaningful) {
    if (event.type === "message.end" || event.type === "turn.start") break;
    if (event.type === "approval.response" || event.type === "custom_tool.result")
      answered.add(event.toolCallId);
    if (
      (event.type === "approval.request" || event.type === "custom_tool.request") &&
      !answered.has(event.toolCallId)
    )
      return "awaiting_action";
  }
  return "none";
}

/** Whether the running turn waits for a person: its latest non-sandbox entry is an `approval.request`. */
export async function isAwaitingAction(store: SessionStore, record: SessionRecord): Promise<boolean> {
  return (await recentStateOf(store, record)) === "awaiting_action";
}

/** The API's Session object, with the status read from the end of its log. */
export async function renderSession(
  store: SessionStore,
  record: SessionRecord,
): Promise<Record<string, unknown>> {
  return toApiSession(record, await recentStateOf(store, record));
}

export function toApiSession(
  record: SessionRecord,
  recent: RecentState | boolean = "none",
): Record<string, unknown> {
  const managed = record.managed;
  const usage = record.usage ?? { inputTokens: 0, outputTokens: 0 };
  const listCost = sessionListCostNanos(record);
  return {
    type: "session",
    id: record.id,
    agent: managed?.agent ?? legacyAgent(record),
    archived_at: record.archivedAt ? record.archivedAt.toISOString() : null,
    budget: managed?.budget ?? null,
    created_at: record.createdAt.toISOString(),
    updated_at: record.updatedAt.toISOString(),
    environment_id: managed?.environmentId ?? "",
    metadata: managed?.metadata ?? {},
    outcome_evaluations: [],
    resources: managed?.resources ?? [],
    stats: {
      duration_seconds: Math.max(0, (record.updatedAt.getTime() - record.createdAt.getTime()) / 1000),
    },
    status: apiStatusOf(record, recent),
    title: managed?.title ?? null,
    usage: {
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: 0 },
      // At the model's public list price; null for a model without one (another provider's).
      list_cost: listCost === null ? null : toMonetaryAmount(listCost),
    },
    vault_ids: managed?.vaultIds ?? [],
  };
}

/** What `session.agent` shows for a session that pinned no agent: its model and system prompt. */
function legacyAgent(record: SessionRecord): Record<string, unknown> {
  return {
    type: "agent",
    id: "",
    version: 0,
    name: "",
    description: null,
    model: { id: record.model },
    system: record.system,
    tools: [],
    skills: [],
    mcp_servers: [],
    multiagent: null,
  };
}

/** The stored resource (the API's session resource object) for what a client attached. */
export function toStoredResource(params: ResourceParams, now: Date): Record<string, unknown> {
  const stamps = { id: createId("sesrsc"), created_at: now.toISOString(), updated_at: now.toISOString() };
  switch (params.type) {
    case "memory_store":
      return {
        ...stamps,
        type: "memory_store",
        memory_store_id: params.memory_store_id,
        access: params.access ?? "read_write",
        instructions: params.instructions ?? null,
        mount_path: `/mnt/memory/${params.memory_store_id}/`,
      };
    case "file":
      return {
        ...stamps,
        type: "file",
        file_id: params.file_id,
        mount_path: params.mount_path ?? `/mnt/session/uploads/${params.file_id}`,
      };
    case "github_repository": {
      const repository =
        params.url
          .replace(/\/$/, "")
          .replace(/\.git$/, "")
          .split("/")
          .at(-1) ?? "repository";
      return {
        ...stamps,
        type: "github_repository",
        url: params.url,
        checkout: params.checkout ?? null,
        mount_path: params.mount_path ?? `/workspace/${repository}`,
      };
    }
  }
}
