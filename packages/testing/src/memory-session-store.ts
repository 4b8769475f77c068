/** An in-memory SessionStore with the same contract as the Postgres one, for loop tests. */
import type { CreateSessionInput, SessionRecord, SessionStore } from "@outrig/core";
import { type NewSessionEvent, SessionEvent, type SessionStatus } from "@outrig/protocol";

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #events = new Map<string, SessionEvent[]>();
  #nextId = 1;
  /** Number of appendEvents calls, for crash-injection tests. */
  appendCount = 0;

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const now = new Date();
    const record: SessionRecord = {
      id: `ses_${this.#nextId++}`,
      ...input,
      status: "idle",
      turns: 0,
      lastSeq: 0,
      createdAt: now,
      updatedAt: now,
    };
    this.#sessions.set(record.id, record);
    this.#events.set(record.id, []);
    return record;
  }

  async getSession(orgId: string, sessionId: string): Promise<SessionRecord | null> {
    const record = this.#sessions.get(sessionId);
    return record && record.orgId === orgId ? record : null;
  }

  async listSessions(orgId: string, options: { limit: number }): Promise<SessionRecord[]> {
    return [...this.#sessions.values()]
      .filter((record) => record.orgId === orgId)
      .reverse()
      .slice(0, options.limit);
  }

  async appendEvents(sessionId: string, events: readonly NewSessionEvent[]): Promise<SessionEvent[]> {
    this.appendCount += 1;
    const record = this.#require(sessionId);
    const log = this.#events.get(sessionId) ?? [];
    const stored = events.map((event, index) =>
      SessionEvent.parse({ ...event, seq: record.lastSeq + index + 1, at: new Date().toISOString() }),
    );
    log.push(...stored);
    this.#sessions.set(sessionId, {
      ...record,
      lastSeq: record.lastSeq + stored.length,
      updatedAt: new Date(),
    });
    return stored;
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

  async listRunningSessions(options: { limit: number }): Promise<SessionRecord[]> {
    return [...this.#sessions.values()].filter((record) => record.status === "running").slice(0, options.limit);
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
    readEvents: (id, options) => inner.readEvents(id, options),
    updateSession: (id, patch) => inner.updateSession(id, patch),
    listRunningSessions: (options) => inner.listRunningSessions(options),
    appendEvents: async (id, events) => {
      count += 1;
      if (count === crashOnAppend) throw new SimulatedCrash(`simulated crash on append ${count}`);
      return inner.appendEvents(id, events);
    },
  };
}
