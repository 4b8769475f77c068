/**
 * The Managed Agents API's sessions, session resources and session events (`/v1/sessions…`), as the
 * pinned SDK calls them. The internal event log stays the truth: lists and streams are projections of
 * it (managed/session-event-projection.ts). Sending events dispatches to the SessionManager and stays
 * thin, so queueing, deny messages and custom tools live in the manager and the loop.
 */
import type {
  AgentConfig,
  AgentDirectory,
  AgentOverrides,
  EnvironmentDirectory,
  ManagedSessionFields,
  SessionRecord,
  SessionStore,
} from "@outrig/core";
import {
  applyAgentOverrides,
  assertEnvironmentRunnable,
  InputError,
  MAX_SESSION_RESOURCES,
  stepTimings,
} from "@outrig/core";
import type {
  AgentResource,
  AgentSkill,
  MessageDeltaEvent,
  SessionEvent,
  SessionStatus,
  UserContentPart,
} from "@outrig/protocol";
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { Env } from "../app.js";
import type { BusEvent, EventBus } from "../event-bus.js";
import { notFound } from "../http-error.js";
import { parseInput, parseQuery, readJson } from "../http-input.js";
import {
  CreateSessionParams,
  ListEventsQuery,
  ListResourcesQuery,
  ListSessionsQuery,
  ResourceParams,
  type SendEventParams,
  SendEventsBody,
  StreamEventsQuery,
  UpdateResourceParams,
  UpdateSessionParams,
  type UserMessage,
} from "../managed/managed-session-bodies.js";
import { type ReadMessageFile, toMediaPart } from "../managed/message-content.js";
import {
  type ApiSessionEvent,
  apiEventId,
  type EventPosition,
  parseApiEventId,
  SessionEventProjector,
} from "../managed/session-event-projection.js";
import {
  apiStatusOf,
  recentStateOf,
  renderSession,
  toApiSession,
  toStoredResource,
} from "../managed/session-object.js";
import { decodeCursor, encodeCursor } from "../page-cursor.js";
import { assertBudgetable, updatedBudget } from "../session-budget.js";
import type { Caller, SessionManager } from "../session-manager.js";

const REPLAY_PAGE = 500;
/** Sessions of a list page whose status is read from their log at once. */
const RENDER_CONCURRENCY = 8;
const KEEPALIVE_MS = 15_000;
/** How long a send waits for the log to record the event it caused (to answer with its stable id). */
const RECORD_WAIT_MS = 5_000;
const SESSION_STATUSES = ["rescheduling", "running", "idle", "terminated"] as const;

export interface ManagedSessionRouteDependencies {
  readonly sessions: SessionManager;
  readonly store: SessionStore;
  readonly bus: EventBus;
  /** Tells the other workers a session was deleted, so streams open there end with `session.deleted`. */
  readonly announceDeleted?: (sessionId: string) => Promise<void>;
  /** Resolves `agent` of a new session; without it sessions cannot be created. */
  readonly agents?: AgentDirectory;
  /** Checks `environment_id` of a new session; without it sessions cannot be created. */
  readonly environments?: EnvironmentDirectory;
  /** Checks that an attached resource names something the org has (a memory store, a file): 4xx if not. */
  readonly checkResource?: (
    orgId: string,
    resource: ResourceParams,
  ) => Promise<ResourceOverrides | undefined>;
  /** Reads a Files API file for a `file` source of an image or document block; without it those are a 400. */
  readonly readMessageFile?: ReadMessageFile;
  /**
   * Pins a new session's custom skills: each entry with its `version` (`latest` included) resolved to
   * the version id the session keeps for its life; 404 for a skill or version the org does not have.
   * Without it skills are pinned as the agent names them.
   */
  readonly pinSkills?: (orgId: string, skills: readonly AgentSkill[]) => Promise<AgentSkill[]>;
  /** Checks that `caller` may use these vaults (404 for another org's or user's, 409 for an archived one). */
  readonly checkVaults?: (caller: Caller, vaultIds: readonly string[]) => Promise<void>;
  /**
   * Keeps a GitHub resource's `authorization_token` out of the session row (a vault, the egress
   * credentials). Without it a token is refused: it is never stored in the clear.
   */
  readonly storeResourceToken?: (
    orgId: string,
    sessionId: string,
    resourceId: string,
    token: string,
  ) => Promise<void>;
  /** Forgets a removed resource's token. */
  readonly deleteResourceToken?: (orgId: string, sessionId: string, resourceId: string) => Promise<void>;
}

/** Fields a resource check sets on the stored resource (e.g. `mount_path`). */
export type ResourceOverrides = Readonly<Record<string, unknown>>;

const SessionCursor = z.strictObject({
  c: z.iso.datetime(),
  i: z.string().max(200),
  d: z.enum(["n", "p"]),
});
const EventCursor = z.strictObject({ s: z.number().int().min(0), i: z.number().int().min(-1).max(9999) });
const ResourceCursor = z.strictObject({ o: z.number().int().min(0).max(10_000) });

export function registerManagedSessionRoutes(app: Hono<Env>, deps: ManagedSessionRouteDependencies): void {
  const { sessions, store, bus } = deps;

  app.post("/v1/sessions", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, CreateSessionParams);
    if ((body.initial_events?.length ?? 0) > 1)
      throw new InputError(
        "unsupported_field",
        "initial_events: send at most one user.message; send later messages with events.send",
        400,
      );
    const initial = body.initial_events?.[0]
      ? await messageOf(deps, caller, body.initial_events[0], "initial_events[0]")
      : null;
    const managed = await resolveNewSession(deps, caller, body);
    const session = await sessions.create(caller, {
      model: managed.agentConfig.model,
      ...(managed.agentConfig.system !== null ? { system: managed.agentConfig.system } : {}),
      managed,
    });
    await storeResourceTokens(deps, caller.orgId, session.id, body.resources ?? [], managed.resources);
    if (initial !== null) await sessions.sendMessage(caller, session.id, initial.text, initial.content);
    const started = initial === null ? session : await sessions.get(caller, session.id);
    return c.json(await renderSession(store, started), 200);
  });

  app.get("/v1/sessions", async (c) => {
    const caller = c.get("caller");
    const query = parseQuery(c, ListSessionsQuery);
    const statuses = c.req.queries("statuses[]") ?? [];
    for (const status of statuses) parseInput(z.enum(SESSION_STATUSES), status);
    const cursor = query.page ? decodeCursor(query.page, SessionCursor) : undefined;
    const position = cursor ? { createdAt: new Date(cursor.c), id: cursor.i } : undefined;
    // Rescheduling and awaiting sessions are running inside; a terminated one failed its last turn.
    const internalStatuses = statuses.flatMap((status): SessionStatus[] =>
      status === "running" || status === "rescheduling"
        ? ["running"]
        : status === "idle"
          ? ["idle", "error", "running"]
          : status === "terminated"
            ? ["error"]
            : [],
    );
    if (statuses.length > 0 && internalStatuses.length === 0)
      return c.json({ data: [], next_page: null, prev_page: null });
    // Outrig has no deployments: no session belongs to one.
    if (query.deployment_id !== undefined) return c.json({ data: [], next_page: null, prev_page: null });
    const rows = await store.listSessions(caller.orgId, {
      limit: query.limit + 1,
      order: query.order,
      ...(caller.role === "admin" ? {} : { visibleTo: caller.userId }),
      ...(cursor?.d === "p" ? { before: position } : position ? { after: position } : {}),
      excludeArchived: query.include_archived !== true,
      ...(query.agent_id !== undefined ? { agentId: query.agent_id } : {}),
      ...(query.agent_version !== undefined ? { agentVersion: query.agent_version } : {}),
      ...(query.memory_store_id !== undefined ? { memoryStoreId: query.memory_store_id } : {}),
      ...(internalStatuses.length > 0 ? { statuses: internalStatuses } : {}),
      createdAt: {
        ...(query["created_at[gt]"] ? { gt: query["created_at[gt]"] } : {}),
        ...(query["created_at[gte]"] ? { gte: query["created_at[gte]"] } : {}),
        ...(query["created_at[lt]"] ? { lt: query["created_at[lt]"] } : {}),
        ...(query["created_at[lte]"] ? { lte: query["created_at[lte]"] } : {}),
      },
    });
    const isBackwards = cursor?.d === "p";
    const hasMore = rows.length > query.limit;
    const data = isBackwards ? rows.slice(-query.limit) : rows.slice(0, query.limit);
    const first = data[0];
    const last = data.at(-1);
    const at = (row: SessionRecord, d: "n" | "p") =>
      encodeCursor({ c: row.createdAt.toISOString(), i: row.id, d });
    // The page's cursors follow the rows read; the API status (read from each log's end) filters them.
    // A few at a time: a page of up to 1,000 sessions must not take every pooled connection at once.
    const rendered: { status: string; session: Record<string, unknown> }[] = [];
    for (let index = 0; index < data.length; index += RENDER_CONCURRENCY) {
      const batch = data.slice(index, index + RENDER_CONCURRENCY);
      rendered.push(
        ...(await Promise.all(
          batch.map(async (row) => {
            const recent = await recentStateOf(store, row);
            return { status: apiStatusOf(row, recent), session: toApiSession(row, recent) };
          }),
        )),
      );
    }
    return c.json({
      data: rendered
        .filter((item) => statuses.length === 0 || statuses.includes(item.status))
        .map((item) => item.session),
      next_page: last && (isBackwards || hasMore) ? at(last, "n") : null,
      prev_page: first && (isBackwards ? hasMore : cursor !== undefined) ? at(first, "p") : null,
    });
  });

  app.get("/v1/sessions/:id", async (c) => {
    const session = await sessions.get(c.get("caller"), c.req.param("id"));
    return c.json(await renderSession(store, session));
  });

  app.post("/v1/sessions/:id", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, UpdateSessionParams);
    if (body.agent !== undefined)
      throw new InputError(
        "unsupported_field",
        "agent: changing it on a session is not supported by this server",
        400,
      );
    const session = await writable(sessions, caller, c.req.param("id"));
    const budget = body.budget === undefined ? undefined : updatedBudget(session, body.budget);
    const metadata = { ...(session.managed?.metadata ?? {}) };
    for (const [key, value] of Object.entries(body.metadata ?? {})) {
      if (value === null) delete metadata[key];
      else metadata[key] = value;
    }
    if (Object.keys(metadata).length > 16)
      throw new InputError("invalid_request", "metadata: at most 16 keys", 400);
    if (body.vault_ids) await deps.checkVaults?.(caller, body.vault_ids);
    const updated = await store.updateManagedSession(caller.orgId, session.id, {
      ...(body.title !== undefined ? { title: body.title } : {}),
      ...(body.metadata ? { metadata } : {}),
      ...(body.vault_ids ? { vaultIds: body.vault_ids } : {}),
      ...(budget !== undefined ? { budget } : {}),
    });
    if (!updated) throw notFound("Session");
    return c.json(await renderSession(store, updated));
  });

  app.post("/v1/sessions/:id/archive", async (c) => {
    const caller = c.get("caller");
    const session = await writable(sessions, caller, c.req.param("id"));
    if (session.status === "running")
      throw new InputError(
        "session_running",
        "A turn is running in this session: interrupt it (user.interrupt) before archiving.",
        409,
      );
    const updated = await store.updateManagedSession(caller.orgId, session.id, { archivedAt: new Date() });
    if (!updated) throw notFound("Session");
    return c.json(await renderSession(store, updated));
  });

  app.delete("/v1/sessions/:id", async (c) => {
    const caller = c.get("caller");
    const id = c.req.param("id");
    await sessions.delete(caller, id);
    bus.publish(id, { type: "session.gone", at: new Date().toISOString() });
    await deps.announceDeleted?.(id).catch(() => undefined);
    return c.json({ id, type: "session_deleted" });
  });

  // ---- Resources

  app.get("/v1/sessions/:id/resources", async (c) => {
    const session = await sessions.get(c.get("caller"), c.req.param("id"));
    const query = parseQuery(c, ListResourcesQuery);
    const offset = query.page ? decodeCursor(query.page, ResourceCursor).o : 0;
    const resources = session.managed?.resources ?? [];
    const data = resources.slice(offset, offset + query.limit);
    const end = offset + data.length;
    return c.json({ data, next_page: end < resources.length ? encodeCursor({ o: end }) : null });
  });

  app.post("/v1/sessions/:id/resources", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, ResourceParams);
    const session = await writable(sessions, caller, c.req.param("id"));
    const tooMany = () =>
      new InputError("too_many_resources", `A session has at most ${MAX_SESSION_RESOURCES} resources.`, 400);
    if ((session.managed?.resources.length ?? 0) >= MAX_SESSION_RESOURCES) throw tooMany();
    const [resource] = await storedResources(deps, caller.orgId, [body]);
    if (!resource) throw new InputError("invalid_request", "No resource given", 400);
    await storeResourceTokens(deps, caller.orgId, session.id, [body], [resource]);
    // Appended atomically: concurrent adds all land.
    const updated = await store.updateManagedSession(caller.orgId, session.id, { addResource: resource });
    if (!updated) throw (await store.getSession(caller.orgId, session.id)) ? tooMany() : notFound("Session");
    return c.json(resource);
  });

  app.get("/v1/sessions/:id/resources/:resourceId", async (c) => {
    const session = await sessions.get(c.get("caller"), c.req.param("id"));
    return c.json(findResource(session, c.req.param("resourceId")));
  });

  app.post("/v1/sessions/:id/resources/:resourceId", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, UpdateResourceParams);
    const session = await writable(sessions, caller, c.req.param("id"));
    const resource = findResource(session, c.req.param("resourceId"));
    if (resource.type !== "github_repository")
      throw new InputError(
        "invalid_request",
        "Only a github_repository resource has an authorization_token.",
        400,
      );
    if (!deps.storeResourceToken)
      throw new InputError("unsupported_field", "authorization_token: not supported by this server yet", 400);
    await deps.storeResourceToken(caller.orgId, session.id, String(resource.id), body.authorization_token);
    const updated = await store.updateManagedSession(caller.orgId, session.id, {
      resources: (session.managed?.resources ?? []).map((item) =>
        item.id === resource.id ? { ...item, updated_at: new Date().toISOString() } : item,
      ),
    });
    if (!updated) throw notFound("Session");
    return c.json(findResource(updated, String(resource.id)));
  });

  app.delete("/v1/sessions/:id/resources/:resourceId", async (c) => {
    const caller = c.get("caller");
    const session = await writable(sessions, caller, c.req.param("id"));
    const resource = findResource(session, c.req.param("resourceId"));
    const updated = await store.updateManagedSession(caller.orgId, session.id, {
      removeResourceId: String(resource.id),
    });
    if (!updated) throw notFound("Session");
    if (resource.type === "github_repository")
      await deps.deleteResourceToken?.(caller.orgId, session.id, String(resource.id));
    return c.json({ id: resource.id, type: "session_resource_deleted" });
  });

  // ---- Events

  app.get("/v1/sessions/:id/events", async (c) => {
    const session = await sessions.get(c.get("caller"), c.req.param("id"));
    const query = parseQuery(c, ListEventsQuery);
    const types = new Set(c.req.queries("types[]") ?? []);
    for (const type of types)
      parseInput(
        z
          .string()
          .regex(/^[a-z_]+\.[a-z_]+$/)
          .max(100),
        type,
      );
    const cursor = query.page ? decodeCursor(query.page, EventCursor) : undefined;
    const matches = (event: ApiSessionEvent) => {
      if (types.size > 0 && !types.has(event.type)) return false;
      const at = new Date(String(event.processed_at));
      if (query["created_at[gt]"] && !(at > query["created_at[gt]"])) return false;
      if (query["created_at[gte]"] && !(at >= query["created_at[gte]"])) return false;
      if (query["created_at[lt]"] && !(at < query["created_at[lt]"])) return false;
      if (query["created_at[lte]"] && !(at <= query["created_at[lte]"])) return false;
      return true;
    };
    const want = query.limit + 1;
    const collected: { event: ApiSessionEvent; position: EventPosition }[] = [];
    if (query.order === "asc") {
      await projectForward(
        store,
        session.id,
        cursor ? { seq: cursor.s, index: cursor.i } : { seq: 0, index: -1 },
        (event, position) => {
          if (matches(event)) collected.push({ event, position });
          return collected.length < want;
        },
      );
    } else {
      await projectBackward(
        store,
        session.id,
        cursor ? { seq: cursor.s, index: cursor.i } : null,
        session.lastSeq,
        (event, position) => {
          if (matches(event)) collected.push({ event, position });
          return collected.length < want;
        },
      );
    }
    const page = collected.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({
      data: page.map((item) => item.event),
      next_page:
        collected.length > query.limit && last
          ? encodeCursor({ s: last.position.seq, i: last.position.index })
          : null,
    });
  });

  app.get("/v1/sessions/:id/events/stream", async (c) => {
    const caller = c.get("caller");
    const session = await sessions.get(caller, c.req.param("id"));
    parseQuery(c, StreamEventsQuery);
    const previews = new Set(
      (c.req.queries("event_deltas[]") ?? []).map((type) =>
        parseInput(z.enum(["agent.message", "agent.thinking"]), type),
      ),
    );
    const resume = resumePosition(session.id, c.req.header("last-event-id"));
    // Subscribe before reading where the log ends: an event written in between is in the log or the queue.
    const queue: BusEvent[] = [];
    const feed = { queue, wake: undefined as (() => void) | undefined };
    const unsubscribe = deps.bus.subscribe(session.id, (event) => {
      queue.push(event);
      feed.wake?.();
    });
    try {
      const start = resume
        ? { seq: resume.seq, skipThrough: resume.index }
        : {
            seq: ((await deps.store.getSession(session.orgId, session.id))?.lastSeq ?? session.lastSeq) + 1,
            skipThrough: -1,
          };
      return streamEvents(c, deps, session, { ...start, previews }, feed, unsubscribe);
    } catch (error) {
      unsubscribe();
      throw error;
    }
  });

  app.post("/v1/sessions/:id/events", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, SendEventsBody);
    // Validate every event before acting on any.
    const messages: (SentMessage | null)[] = [];
    for (const [index, event] of body.events.entries())
      messages.push(
        event.type === "user.message" ? await messageOf(deps, caller, event, `events[${index}]`) : null,
      );
    const session = await writable(sessions, caller, c.req.param("id"));
    if ((await recentStateOf(store, session)) === "terminated")
      throw new InputError(
        "session_terminated",
        "This session is terminated (its last turn failed with an error no later turn can avoid, see its session.error event) and accepts no new events; start a new session.",
        409,
      );
    const data: ApiSessionEvent[] = [];
    for (const [index, event] of body.events.entries()) {
      const created = await dispatch(deps, caller, session, event, messages[index] ?? null);
      if (created) data.push(created);
    }
    return c.json({ data });
  });
}

/** The session, when `caller` may change it and it is not archived (archived sessions are read-only: 409). */
async function writable(sessions: SessionManager, caller: Caller, sessionId: string): Promise<SessionRecord> {
  const session = await sessions.get(caller, sessionId);
  if (session.archivedAt)
    throw new InputError("session_archived", "This session is archived and read-only.", 409);
  return session;
}

async function resolveNewSession(
  deps: ManagedSessionRouteDependencies,
  caller: Caller,
  body: CreateSessionParams,
): Promise<ManagedSessionFields> {
  if (caller.role === "viewer") throw new InputError("read_only", "Viewers have read-only access.", 403);
  if (!deps.agents || !deps.environments)
    throw new InputError("unsupported", "Agents and environments are not available on this server.", 400);
  const reference = typeof body.agent === "string" ? { id: body.agent } : body.agent;
  const resolved = await deps.agents.resolve(caller.orgId, {
    id: reference.id,
    ...("version" in reference && reference.version !== undefined ? { version: reference.version } : {}),
  });
  if (!resolved) throw new InputError("not_found", "agent: no such agent (or version)", 404);
  if (resolved.archived)
    throw new InputError("agent_archived", "agent: this agent is archived; new sessions cannot use it", 400);
  const environment = await deps.environments.get(caller.orgId, body.environment_id);
  if (!environment) throw new InputError("not_found", "environment_id: no such environment", 404);
  assertEnvironmentRunnable(environment);
  const { config, agent } = await pinnedAgent(deps, caller.orgId, resolved, body.agent);
  if (body.budget !== undefined) assertBudgetable(config.model);
  const params = body.resources ?? [];

  for (const resource of params) {
    if (
      resource.type === "github_repository" &&
      resource.authorization_token !== undefined &&
      !deps.storeResourceToken
    )
      throw new InputError(
        "unsupported_field",
        "resources: a github_repository authorization_token is not supported by this server yet",
        400,
      );
  }
  if (body.vault_ids) await deps.checkVaults?.(caller, body.vault_ids);
  return {
    agent,
    agentConfig: config,
    environmentId: environment.id,
    title: body.title ?? null,
    metadata: body.metadata ?? {},
    vaultIds: body.vault_ids ?? [],
    resources: await storedResources(deps, caller.orgId, params),
    ...(body.budget !== undefined ? { budget: body.budget } : {}),
  };
}

/**
 * The agent a new session pins: the resolved version with the session's overrides applied (each one
 * checked as an agent update of that field would be), its custom skills' versions pinned (`latest`
 * becomes the newest version now), as the loop's config and as `session.agent` shows it.
 */
async function pinnedAgent(
  deps: ManagedSessionRouteDependencies,
  orgId: string,
  resolved: { readonly config: AgentConfig; readonly resource: Record<string, unknown> },
  reference: CreateSessionParams["agent"],
): Promise<{ config: AgentConfig; agent: Record<string, unknown> }> {
  let config = resolved.config;
  // Invariant: the AgentDirectory answers the API's Agent object as `resource`.
  let agent = resolved.resource as unknown as AgentResource;
  if (typeof reference !== "string" && reference.type === "agent_with_overrides") {
    const { type: _type, id: _id, version: _version, ...fields } = reference;
    ({ config, resource: agent } = applyAgentOverrides(agent, fields satisfies AgentOverrides));
  }
  if (deps.pinSkills && agent.skills.some((skill) => skill.type === "custom")) {
    const skills = await deps.pinSkills(orgId, agent.skills);
    ({ config, resource: agent } = applyAgentOverrides(agent, { skills }));
  }
  return { config, agent: agent as unknown as Record<string, unknown> };
}

/**
 * The resources as the session stores them, each checked first (4xx when it names nothing the org
 * has); what the check learns (a memory store's mount path, from its name) overrides the defaults.
 */
async function storedResources(
  deps: ManagedSessionRouteDependencies,
  orgId: string,
  params: readonly ResourceParams[],
): Promise<Record<string, unknown>[]> {
  const overrides: (ResourceOverrides | undefined)[] = [];
  for (const resource of params) overrides.push(await deps.checkResource?.(orgId, resource));
  const now = new Date();
  return params.map((resource, index) => ({ ...toStoredResource(resource, now), ...overrides[index] }));
}

async function storeResourceTokens(
  deps: ManagedSessionRouteDependencies,
  orgId: string,
  sessionId: string,
  params: readonly ResourceParams[],
  stored: readonly Record<string, unknown>[],
): Promise<void> {
  for (const [index, resource] of params.entries()) {
    if (resource.type !== "github_repository" || resource.authorization_token === undefined) continue;
    await deps.storeResourceToken?.(
      orgId,
      sessionId,
      String(stored[index]?.id),
      resource.authorization_token,
    );
  }
}

function findResource(session: SessionRecord, resourceId: string): Record<string, unknown> {
  const resource = session.managed?.resources.find((item) => item.id === resourceId);
  if (!resource) throw notFound("Session resource");
  return resource;
}

/** A checked `user.message`: its text blocks joined, and all its blocks when it has images or documents. */
interface SentMessage {
  readonly text: string;
  readonly content?: UserContentPart[];
}

/**
 * Checks a `user.message` before anything is done: text must not be empty unless an image or document
 * comes with it; media blocks are checked and capped, and a `file` source is read in the caller's org
 * (another org's file is a 404), see message-content.ts.
 */
async function messageOf(
  deps: ManagedSessionRouteDependencies,
  caller: Caller,
  event: UserMessage,
  at: string,
): Promise<SentMessage> {
  const texts: string[] = [];
  const content: UserContentPart[] = [];
  const budget = { used: 0 };
  for (const [index, block] of event.content.entries()) {
    if (block.type === "text") {
      texts.push(block.text);
      content.push({ type: "text", text: block.text });
    } else {
      content.push(
        await toMediaPart(block, `${at}.content[${index}]`, caller.orgId, deps.readMessageFile, budget),
      );
    }
  }
  const text = texts.join("\n");
  const hasMedia = content.some((part) => part.type !== "text");
  if (text.trim() === "" && !hasMedia)
    throw new InputError("invalid_request", `${at}.content: the message is empty`, 400);
  return hasMedia ? { text, content } : { text };
}

/** Performs one sent event and answers the API event the log recorded for it (null when it recorded none). */
async function dispatch(
  deps: ManagedSessionRouteDependencies,
  caller: Caller,
  session: SessionRecord,
  event: SendEventParams,
  message: SentMessage | null,
): Promise<ApiSessionEvent | null> {
  const { sessions, store } = deps;
  const before = (await store.getSession(session.orgId, session.id))?.lastSeq ?? session.lastSeq;
  switch (event.type) {
    case "user.message": {
      // While a turn runs the message is queued (in order) and starts its own turn after the ones before it.
      const submitted = await sessions.sendMessage(caller, session.id, message?.text ?? "", message?.content);
      return new SessionEventProjector(session.id).project(submitted.event)[0] ?? null;
    }
    case "user.interrupt": {
      // Interrupting an idle session changes nothing.
      if (!(await sessions.interrupt(caller, session.id))) return null;
      return recorded(deps, session.id, before, (logged) => logged.type === "interrupt.request");
    }
    case "user.tool_confirmation": {
      const request = await approvalRequestOf(store, session.id, event.tool_use_id);
      await sessions.approve(caller, session.id, request.toolCallId, event.result, request.inputDigest, {
        ...(event.deny_message ? { denyMessage: event.deny_message } : {}),
      });
      const answer = await recorded(
        deps,
        session.id,
        before,
        (logged) => logged.type === "approval.response" && logged.toolCallId === request.toolCallId,
      );
      return answer ? { ...answer, tool_use_id: event.tool_use_id } : null;
    }
    case "user.custom_tool_result": {
      const toolCallId = await customToolCallOf(store, session.id, event.custom_tool_use_id);
      await sessions.submitCustomToolResult(caller, session.id, toolCallId, {
        content: event.content ?? [],
        isError: event.is_error ?? false,
      });
      const answer = await recorded(
        deps,
        session.id,
        before,
        (logged) => logged.type === "custom_tool.result" && logged.toolCallId === toolCallId,
      );
      return answer ? { ...answer, custom_tool_use_id: event.custom_tool_use_id } : null;
    }
  }
}

/** The custom tool call an `agent.custom_tool_use` event id names (404 when it names none of this session). */
async function customToolCallOf(
  store: SessionStore,
  sessionId: string,
  customToolUseId: string,
): Promise<string> {
  const position = parseApiEventId(sessionId, customToolUseId);
  const [event] = position ? await store.readEvents(sessionId, { afterSeq: position.seq - 1, limit: 1 }) : [];
  if (
    !position ||
    !event ||
    event.seq !== position.seq ||
    event.type !== "custom_tool.request" ||
    position.index !== 0
  )
    throw new InputError(
      "not_found",
      "custom_tool_use_id: no custom tool use of this session waits for a result",
      404,
    );
  return event.toolCallId;
}

/** The approval request an `agent.tool_use` event id names (404 when it names none of this session). */
async function approvalRequestOf(
  store: SessionStore,
  sessionId: string,
  toolUseId: string,
): Promise<{ toolCallId: string; inputDigest?: string }> {
  const position = parseApiEventId(sessionId, toolUseId);
  const [event] = position ? await store.readEvents(sessionId, { afterSeq: position.seq - 1, limit: 1 }) : [];
  if (
    !position ||
    !event ||
    event.seq !== position.seq ||
    event.type !== "approval.request" ||
    position.index !== 0
  )
    throw new InputError(
      "not_found",
      "tool_use_id: no tool use of this session waits for a confirmation",
      404,
    );
  return { toolCallId: event.toolCallId, ...(event.inputDigest ? { inputDigest: event.inputDigest } : {}) };
}

/**
 * The first log event after `afterSeq` that `matches`, projected (its first API event), waiting up to
 * RECORD_WAIT_MS for it to be written (an approval is recorded by the turn's worker).
 */
async function recorded(
  deps: ManagedSessionRouteDependencies,
  sessionId: string,
  afterSeq: number,
  matches: (event: SessionEvent) => boolean,
): Promise<ApiSessionEvent | null> {
  const deadline = Date.now() + RECORD_WAIT_MS;
  let wake: (() => void) | undefined;
  const unsubscribe = deps.bus.subscribe(sessionId, () => wake?.());
  try {
    let cursor = afterSeq;
    for (;;) {
      const events = await deps.store.readEvents(sessionId, { afterSeq: cursor, limit: REPLAY_PAGE });
      const found = events.find(matches);
      if (found) return new SessionEventProjector(sessionId).project(found)[0] ?? null;
      cursor = events.at(-1)?.seq ?? cursor;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 100));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    unsubscribe();
  }
}

function resumePosition(sessionId: string, header: string | undefined): EventPosition | null {
  if (header === undefined) return null;
  const position = parseApiEventId(sessionId, header.trim());
  if (!position)
    throw new InputError("invalid_request", "Last-Event-ID: not an event id of this session", 400);
  return position;
}

/**
 * Projects the log forward from just after `from` (an API event position), calling `visit` for every
 * later API event in order until it answers false.
 */
async function projectForward(
  store: SessionStore,
  sessionId: string,
  from: EventPosition,
  visit: (event: ApiSessionEvent, position: EventPosition) => boolean,
): Promise<void> {
  const projector = new SessionEventProjector(sessionId);
  const firstSeq = Math.max(1, from.seq);
  await projector.warmUp(store, firstSeq);
  let after = firstSeq - 1;
  for (;;) {
    const events = await store.readEvents(sessionId, { afterSeq: after, limit: REPLAY_PAGE });
    for (const event of events) {
      for (const [index, projected] of projector.project(event).entries()) {
        if (event.seq === from.seq && index <= from.index) continue;
        if (!visit(projected, { seq: event.seq, index })) return;
      }
      after = event.seq;
    }
    if (events.length < REPLAY_PAGE) return;
  }
}

/** Projects the log backwards from just before `before` (or from the end), newest first. */
async function projectBackward(
  store: SessionStore,
  sessionId: string,
  before: EventPosition | null,
  lastSeq: number,
  visit: (event: ApiSessionEvent, position: EventPosition) => boolean,
): Promise<void> {
  let end = before ? before.seq : lastSeq;
  const chunk = 200;
  while (end >= 1) {
    const start = Math.max(1, end - chunk + 1);
    const projector = new SessionEventProjector(sessionId);
    await projector.warmUp(store, start);
    const events = await store.readEvents(sessionId, { afterSeq: start - 1, limit: end - start + 1 });
    const window: { event: ApiSessionEvent; position: EventPosition }[] = [];
    for (const event of events) {
      for (const [index, projected] of projector.project(event).entries()) {
        if (before && event.seq === before.seq && index >= before.index) continue;
        window.push({ event: projected, position: { seq: event.seq, index } });
      }
    }
    for (const item of window.reverse()) if (!visit(item.event, item.position)) return;
    end = start - 1;
  }
}

/**
 * The SSE stream of a session's API events. With `Last-Event-ID` it replays every event after that
 * one, then goes live; without it, it starts live (at the end of the log when the stream opened). The
 * bus feeds it; any gap the bus shows (another worker wrote, a poke) is filled from the log, so every
 * event is sent exactly once and in order.
 */
function streamEvents(
  c: Context<Env>,
  deps: ManagedSessionRouteDependencies,
  session: SessionRecord,
  start: { readonly seq: number; readonly skipThrough: number; readonly previews: ReadonlySet<string> },
  feed: { readonly queue: BusEvent[]; wake: (() => void) | undefined },
  unsubscribe: () => void,
): Response {
  const { store } = deps;
  const { queue } = feed;
  return streamSSE(c, async (stream) => {
    let isClosed = false;
    stream.onAbort(() => {
      isClosed = true;
      unsubscribe();
      feed.wake?.();
    });
    const projector = new SessionEventProjector(session.id);
    const preview = new MessagePreview(session.id, projector, start.previews.has("agent.message"));
    try {
      let cursor = start.seq - 1;
      await projector.warmUp(store, start.seq);
      const write = async (event: SessionEvent) => {
        const startedAt = performance.now();
        for (const [index, projected] of projector.project(event).entries()) {
          if (event.seq === start.seq && index <= start.skipThrough) continue;
          await stream.writeSSE({ id: projected.id, event: projected.type, data: JSON.stringify(projected) });
        }
        cursor = event.seq;
        for (const item of preview.after(event))
          await stream.writeSSE({ event: item.type, data: JSON.stringify(item) });
        stepTimings.add("stream.write", performance.now() - startedAt);
      };
      const replay = async () => {
        for (;;) {
          const page = await store.readEvents(session.id, { afterSeq: cursor, limit: REPLAY_PAGE });
          for (const event of page) await write(event);
          if (page.length < REPLAY_PAGE) return;
        }
      };
      await replay();
      while (!isClosed) {
        const event = queue.shift();
        if (!event) {
          const timedOut = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), KEEPALIVE_MS);
            feed.wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          feed.wake = undefined;
          if (timedOut && !isClosed) await stream.writeSSE({ event: "ping", data: '{"type":"ping"}' });
          continue;
        }
        if (event.type === "session.gone") {
          const deleted = {
            id: apiEventId(session.id, { seq: cursor + 1, index: 0 }),
            type: "session.deleted",
            processed_at: event.at,
          };
          await stream.writeSSE({ id: deleted.id, event: deleted.type, data: JSON.stringify(deleted) });
          return;
        }
        if (event.type === "poke") {
          if (event.seq > cursor) await replay();
        } else if (event.type === "message.delta") {
          for (const item of preview.delta(event, cursor))
            await stream.writeSSE({ event: item.type, data: JSON.stringify(item) });
        } else if (event.seq === cursor + 1) {
          await write(event);
        } else if (event.seq > cursor + 1) {
          await replay();
        }
      }
    } finally {
      unsubscribe();
    }
  });
}

/**
 * The `agent.message` preview of one stream that opted in (`event_deltas`): `event_start`, then one
 * `event_delta` per text fragment the model streams. Previews carry no SSE id, so they never move a
 * client's `Last-Event-ID`, and they are never stored or listed.
 *
 * The preview names the id the stored `agent.message` will carry: the position after the last log
 * event this stream has written (the `message.end` the model call appends next). When another event is
 * appended while the model streams (a queued message, a sandbox event), the stream writes it first and
 * the preview reopens under the new guess with the text so far; the old one is closed as the API
 * closes any preview no stored event reconciled, by the call's `span.model_request_end`. Only an event
 * another worker appends in the last moment before the answer can still leave a preview unreconciled.
 */
class MessagePreview {
  readonly #sessionId: string;
  readonly #projector: SessionEventProjector;
  readonly #isWanted: boolean;
  #open: { id: string; turn: number; step: number; text: string } | undefined;

  constructor(sessionId: string, projector: SessionEventProjector, isWanted: boolean) {
    this.#sessionId = sessionId;
    this.#projector = projector;
    this.#isWanted = isWanted;
  }

  /** The preview events for one streamed fragment, given the last log seq the stream has written. */
  delta(event: MessageDeltaEvent, cursor: number): PreviewEvent[] {
    if (!this.#isWanted || event.text === "") return [];
    const id = apiEventId(this.#sessionId, { seq: cursor + 1, index: this.#projector.nextMessageIndex() });
    const out: PreviewEvent[] = [];
    const open = this.#open;
    const isSameCall = open !== undefined && open.turn === event.turn && open.step === event.step;
    const sofar = isSameCall ? open.text : "";
    if (!isSameCall || open.id !== id) {
      out.push({ type: "event_start", event: { type: "agent.message", id } });
      if (sofar !== "") out.push(contentDelta(id, sofar));
    }
    out.push(contentDelta(id, event.text));
    this.#open = { id, turn: event.turn, step: event.step, text: sofar + event.text };
    return out;
  }

  /**
   * After a stored event was written: the model call's answer, a retry or the end of the turn closes
   * the preview; any other event (appended while the model streams) moves the guessed id, so the
   * preview reopens under the new one with the text so far.
   */
  after(event: SessionEvent): PreviewEvent[] {
    const open = this.#open;
    if (open === undefined) return [];
    if (
      event.type === "message.end" ||
      event.type === "model.retry" ||
      event.type === "turn.error" ||
      event.type === "turn.end"
    ) {
      this.#open = undefined;
      return [];
    }
    const id = apiEventId(this.#sessionId, { seq: event.seq + 1, index: this.#projector.nextMessageIndex() });
    if (id === open.id) return [];
    this.#open = { ...open, id };
    return [{ type: "event_start", event: { type: "agent.message", id } }, contentDelta(id, open.text)];
  }
}

type PreviewEvent = Record<string, unknown> & { readonly type: "event_start" | "event_delta" };

function contentDelta(eventId: string, text: string): PreviewEvent {
  return {
    type: "event_delta",
    event_id: eventId,
    delta: { type: "content_delta", content: { type: "text", text }, index: 0 },
  };
}
