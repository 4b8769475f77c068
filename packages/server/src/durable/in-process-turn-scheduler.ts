/** Runs turns in this process with no durability: for tests and tools that do not need a crash-safe engine. */
import type { ApprovalMessage, CustomToolMessage, TurnHost, TurnScheduler } from "./turn-scheduler.js";

export class InProcessTurnScheduler implements TurnScheduler {
  #host: TurnHost | undefined;
  readonly #running = new Map<string, Promise<void>>();
  readonly #approvals = new Map<string, (message: ApprovalMessage) => void>();
  readonly #customTools = new Map<string, (message: CustomToolMessage | null) => void>();
  /** Custom tool results sent before the turn waited for them, by wait key. */
  readonly #earlyResults = new Map<string, CustomToolMessage>();
  readonly #earlyApprovals = new Map<string, ApprovalMessage>();
  #isClosed = false;
  /** Settles when close() is called: a step the host holds back while stopping never settles itself. */
  readonly #closed: Promise<void>;
  #markClosed: () => void = () => undefined;

  constructor() {
    this.#closed = new Promise<void>((resolve) => {
      this.#markClosed = resolve;
    });
  }

  async start(host: TurnHost): Promise<void> {
    this.#host = host;
  }

  async schedule(sessionId: string, turn: number): Promise<void> {
    const host = this.#host;
    if (!host || this.#isClosed) return;
    const previous = this.#running.get(sessionId) ?? Promise.resolve();
    const run = previous.then(() => this.#drive(host, sessionId, turn)).catch(() => undefined);
    this.#running.set(sessionId, run);
  }

  async sendApproval(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: ApprovalMessage,
  ): Promise<void> {
    const key = `${sessionId}:${turn}:${toolCallId}`;
    const resolve = this.#approvals.get(key);
    // A confirmation of a request the turn is not waiting on yet (one answer asks for several) is kept.
    if (resolve) resolve(message);
    else if (!this.#earlyApprovals.has(key)) this.#earlyApprovals.set(key, message);
  }

  async sendCustomToolResult(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: CustomToolMessage,
  ): Promise<void> {
    const key = `${sessionId}:${turn}:${toolCallId}`;
    const resolve = this.#customTools.get(key);
    if (resolve) resolve(message);
    else if (!this.#earlyResults.has(key)) this.#earlyResults.set(key, message);
  }

  async cancel(sessionId: string, turn: number): Promise<void> {
    // The host aborts the running step; a pending approval wait ends as a timeout.
    for (const key of this.#earlyApprovals.keys()) {
      if (key.startsWith(`${sessionId}:${turn}:`)) this.#earlyApprovals.delete(key);
    }
    for (const [key, resolve] of this.#approvals) {
      if (key.startsWith(`${sessionId}:${turn}:`)) resolve({ decision: "deny", userId: "" });
    }
    // A custom tool wait ends without a result: the turn is over (the log says so).
    for (const [key, resolve] of this.#customTools) {
      if (key.startsWith(`${sessionId}:${turn}:`)) resolve(null);
    }
  }

  /** Waits until every scheduled turn of the session has finished. */
  async idle(sessionId: string): Promise<void> {
    await this.#running.get(sessionId);
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    this.#markClosed();
    await Promise.allSettled(this.#running.values());
  }

  async #drive(host: TurnHost, sessionId: string, turn: number): Promise<void> {
    for (;;) {
      if (this.#isClosed) return;
      // While the host stops, a step it has not started never settles (see SessionManager.drain); this
      // scheduler keeps no state to resume from, so it just lets go of the turn.
      const outcome = await Promise.race([host.step(sessionId, turn), this.#closed.then(() => null)]);
      if (outcome === null) return;
      if (outcome.type === "idle") {
        const next = await host.startQueuedTurn(sessionId, turn);
        if (next !== null && next > turn) await this.schedule(sessionId, next);
        return;
      }
      if (outcome.type === "await_custom_tool") {
        const key = `${sessionId}:${turn}:${outcome.toolCallId}`;
        const message =
          this.#earlyResults.get(key) ??
          (await new Promise<CustomToolMessage | null>((resolve) => {
            this.#customTools.set(key, resolve);
            void this.#closed.then(() => resolve(null));
          }));
        this.#earlyResults.delete(key);
        this.#customTools.delete(key);
        if (message === null) return;
        await host.recordCustomToolResult(sessionId, turn, outcome.toolCallId, message);
        continue;
      }
      if (outcome.type === "await_approval") {
        const key = `${sessionId}:${turn}:${outcome.toolCallId}`;
        const early = this.#earlyApprovals.get(key);
        this.#earlyApprovals.delete(key);
        const message =
          early ??
          (await new Promise<ApprovalMessage | null>((resolve) => {
            const timer = setTimeout(() => resolve(null), outcome.timeoutMs);
            this.#approvals.set(key, (value) => {
              clearTimeout(timer);
              resolve(value);
            });
          }));
        this.#approvals.delete(key);
        await host.recordApproval(sessionId, turn, outcome.toolCallId, message);
      }
    }
  }
}
