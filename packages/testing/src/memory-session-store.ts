/** An in-memory SessionStore with the same contract as the Postgres one, for loop tests. */
import {
  type AppendOptions,
  type CreateSessionInput,
  InputError,
  type ListSessionsOptions,
  MAX_SESSION_RESOURCES,
  type ManagedSessionPatch,
  type MessageOptions,
  type SessionRecord,
  type SessionStore,
  StorageError,
  type SubmittedMessage,
  terminalSessionStatus,
} from "@outrig/core";
import { type NewSessionEvent, SessionEvent, type SessionStatus } from "@outrig/protocol";

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #events = new Map<string, SessionEvent[]>();
  /** Seqs of each session's queued `message.queue` events, oldest first. */
  readonly #queues = new Map<string, number[]>();
  #nextId = 1;
  /** Number of appendEvents calls, for crash-injection tests. */
  appendCount = 0;

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const now = new Date();
    const record: SessionRecord = {
      id: `sesn_${this.#nextId++}`,
      ...input,
      status: "idle",
      turns: 0,
      lastSeq: 0,
      createdAt: now,
      updatedAt: now,
      archivedAt: null,
      usage: { inputTokens: 0, outputTokens: 0 },
    };
    this.#sessions.set(record.id, record);
    this.#events.set(record.id, []);
    return record;
  }

  async getSession(orgId: string, sessionId: string): Promise<SessionRecord | null> {
    const record = this.#sessions.get(sessionId);
    return record && record.orgId === orgId ? record : null;
  }

  /** Knows no shares: `visibleTo` keeps that user's own sessions. */
  async listSessions(orgId: string, options: ListSessionsOptions): Promise<SessionRecord[]> {
    const sign = options.order === "asc" ? 1 : -1;
    const compare = (a: { createdAt: Date; id: string }, b: { createdAt: Date; id: string }) =>
      sign *
      (a.createdAt.getTime() - b.createdAt.getTime() ||
        a.id.localeCompare(b.id, "en", { numeric: true }) ||
        0);
    const range = options.createdAt ?? {};
    const rows = [...this.#sessions.values()]
      .filter(
        (record) =>
          record.orgId === orgId &&
          (options.visibleTo === undefined || record.userId === options.visibleTo) &&
          !(options.excludeArchived && record.archivedAt) &&
          (options.agentId === undefined || record.managed?.agent.id === options.agentId) &&
          (options.agentVersion === undefined || record.managed?.agent.version === options.agentVersion) &&
          (!options.statuses?.length || options.statuses.includes(record.status)) &&
          (options.memoryStoreId === undefined ||
            record.managed?.resources.some(
              (resource) => resource.memory_store_id === options.memoryStoreId,
            ) === true) &&
          !(range.gt && record.createdAt <= range.gt) &&
          !(range.gte && record.createdAt < range.gte) &&
          !(range.lt && record.createdAt >= range.lt) &&
          !(range.lte && record.createdAt > range.lte) &&
          !(options.after && compare(record, options.after) <= 0) &&
          !(options.before && compare(record, options.before) >= 0),
      )
      .sort(compare);
    return options.before ? rows.slice(-options.limit) : rows.slice(0, options.limit);
  }

  async updateManagedSession(
    orgId: string,
    sessionId: string,
    patch: ManagedSessionPatch,
  ): Promise<SessionRecord | null> {
    const record = await this.getSession(orgId, sessionId);
    if (!record) return null;
    const { archivedAt, addResource, removeResourceId, ...fields } = patch;
    let resources = fields.resources ?? record.managed?.resources ?? [];
    if (addResource) {
      if (resources.length >= MAX_SESSION_RESOURCES) return null;
      resources = [...resources, addResource];
    }
    if (removeResourceId !== undefined) resources = resources.filter((item) => item.id !== removeResourceId);
    const updated: SessionRecord = {
      ...record,
      ...(record.managed ? { managed: { ...record.managed, ...fields, resources } } : {}),
      archivedAt: record.archivedAt ?? archivedAt ?? null,
      updatedAt: new Date(),
    };
    this.#sessions.set(sessionId, updated);
    return updated;
  }

  async deleteSession(orgId: string, sessionId: string): Promise<boolean> {
    if (!(await this.getSession(orgId, sessionId))) return false;
    this.#sessions.delete(sessionId);
    this.#events.delete(sessionId);
    return true;
  }

  async appendEvents(
    sessionId: string,
    events: readonly NewSessionEvent[],
    options: AppendOptions = {},
  ): Promise<SessionEvent[]> {
    this.appendCount += 1;
    const record = this.#require(sessionId);
    if (options.turn !== undefined && (record.status !== "running" || record.turns !== options.turn)) {
      throw new StorageError(
        "turn_closed",
        `turn ${options.turn} of session ${sessionId} is no longer running`,
      );
    }
    const log = this.#events.get(sessionId) ?? [];
    // As in Postgres: `at` never goes back as seq grows.
    const at = new Date(Math.max(Date.now(), record.updatedAt.getTime()));
    const stored = events.map((event, index) =>
      SessionEvent.parse({ ...event, seq: record.lastSeq + index + 1, at: at.toISOString() }),
    );
    const status = terminalSessionStatus(events) ?? record.status;
    log.push(...stored);
    const usage = { ...(record.usage ?? { inputTokens: 0, outputTokens: 0 }) };
    for (const event of stored) {
      if (event.type !== "message.end") continue;
      usage.inputTokens += event.usage.inputTokens;
      usage.outputTokens += event.usage.outputTokens;
    }
    this.#sessions.set(sessionId, {
      ...record,
      usage,
      status,
      lastSeq: record.lastSeq + stored.length,
      updatedAt: at,
    });
    return stored;
  }

  async startTurn(
    orgId: string,
    sessionId: string,
    text: string,
    options: MessageOptions = {},
  ): Promise<{ turn: number; event: SessionEvent }> {
    const record = await this.getSession(orgId, sessionId);
    if (!record) throw new InputError("not_found", "Session not found", 404);
    if (record.status === "running") {
      throw new InputError(
        "session_busy",
        "A turn is already running in this session; wait for it to end.",
        409,
      );
    }
    const turn = record.turns + 1;
    this.#sessions.set(sessionId, { ...record, status: "running", turns: turn });
    const [event] = await this.appendEvents(sessionId, [
      {
        type: "turn.start",
        turn,
        text,
        ...(options.content ? { content: options.content } : {}),
        ...(options.userId ? { userId: options.userId } : {}),
      },
    ]);
    if (!event) throw new Error("turn.start not stored");
    return { turn, event };
  }

  async submitMessage(
    orgId: string,
    sessionId: string,
    text: string,
    options: MessageOptions = {},
  ): Promise<SubmittedMessage> {
    const record = await this.getSession(orgId, sessionId);
    if (!record) throw new InputError("not_found", "Session not found", 404);
    const queue = this.#queues.get(sessionId) ?? [];
    if (record.status !== "running" && queue.length === 0) {
      return { type: "started", ...(await this.startTurn(orgId, sessionId, text, options)) };
    }
    const [event] = await this.appendEvents(sessionId, [
      {
        type: "message.queue",
        text,
        ...(options.content ? { content: options.content } : {}),
        ...(options.userId ? { userId: options.userId } : {}),
      },
    ]);
    if (!event) throw new Error("message.queue not stored");
    this.#queues.set(sessionId, [...queue, event.seq]);
    return { type: "queued", event };
  }

  async startQueuedTurn(sessionId: string): Promise<{ turn: number; event: SessionEvent } | null> {
    const record = this.#require(sessionId);
    const [head, ...rest] = this.#queues.get(sessionId) ?? [];
    if (record.status === "running" || head === undefined) return null;
    const queued = (this.#events.get(sessionId) ?? []).find((event) => event.seq === head);
    if (queued?.type !== "message.queue") throw new Error(`queued seq ${head} is no message.queue`);
    this.#queues.set(sessionId, rest);
    const turn = record.turns + 1;
    this.#sessions.set(sessionId, { ...record, status: "running", turns: turn });
    const [event] = await this.appendEvents(sessionId, [
      {
        type: "turn.start",
        turn,
        text: queued.text,
        ...(queued.content ? { content: queued.content } : {}),
        queuedSeq: head,
        ...(queued.userId ? { userId: queued.userId } : {}),
      },
    ]);
    if (!event) throw new Error("turn.start not stored");
    return { turn, event };
  }

  async readEvents(sessionId: string, options: { afterSeq: number; limit: number }): Promise<SessionEvent[]> {
    return (this.#events.get(sessionId) ?? [])
      .filter((event) => event.seq > options.afterSeq)
      .slice(0, options.limit);
  }

  async updateSession(sessionId: string, patch: { status?: SessionStatus; turns?: number }): Promise<void> {
    const record = this.#require(sessionId);
    this.#sessions.set(sessionId, { ...record, ...patch, updatedAt: new Date() });
  }

  async findSessionOrg(sessionId: string): Promise<string | null> {
    return this.#sessions.get(sessionId)?.orgId ?? null;
  }

  async listRunningSessions(options: { limit: number }): Promise<SessionRecord[]> {
    return [...this.#sessions.values()]
      .filter((record) => record.status === "running")
      .slice(0, options.limit);
  }

  #require(sessionId: string): SessionRecord {
    const record = this.#sessions.get(sessionId);
    if (!record) throw new Error(`unknown session ${sessionId}`);
    return record;
  }
}

/** Wraps a store so that the n-th appendEvents call (1-based) throws SimulatedCrash before writing. */
export class SimulatedCrash extends Error {}

export function createCrashingStore(inner: SessionStore, crashOnAppend: number): SessionStore {
  let count = 0;
  return {
    createSession: (input) => inner.createSession(input),
    getSession: (orgId, id) => inner.getSession(orgId, id),
    listSessions: (orgId, options) => inner.listSessions(orgId, options),
    updateManagedSession: (orgId, id, patch) => inner.updateManagedSession(orgId, id, patch),
    deleteSession: (orgId, id) => inner.deleteSession(orgId, id),
    readEvents: (id, options) => inner.readEvents(id, options),
    updateSession: (id, patch) => inner.updateSession(id, patch),
    listRunningSessions: (options) => inner.listRunningSessions(options),
    findSessionOrg: (id) => inner.findSessionOrg(id),
    startTurn: (orgId, id, text, options) => inner.startTurn(orgId, id, text, options),
    submitMessage: (orgId, id, text, options) => inner.submitMessage(orgId, id, text, options),
    startQueuedTurn: (id) => inner.startQueuedTurn(id),
    appendEvents: async (id, events, options) => {
      count += 1;
      if (count === crashOnAppend) throw new SimulatedCrash(`simulated crash on append ${count}`);
      return inner.appendEvents(id, events, options);
    },
  };
}
