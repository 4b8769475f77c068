/**
 * Client side of the in-sandbox agent's NDJSON protocol: request ids, concurrent requests, and
 * failing every pending call when the agent's pipe closes. Knows nothing about bubblewrap.
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import type { SandboxError } from "@outrig/core";

/** An error the agent reported for one request (`code` is an errno name such as "ENOENT"). */
export interface AgentErrorBody {
  readonly code: string;
  readonly message: string;
  readonly path?: string;
}

export class AgentRequestError extends Error {
  readonly body: AgentErrorBody;
  constructor(body: AgentErrorBody) {
    super(body.message);
    this.name = "AgentRequestError";
    this.body = body;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface AgentLine {
  readonly id?: number | null;
  readonly event?: string;
  readonly ok?: boolean;
  readonly result?: unknown;
  readonly error?: AgentErrorBody;
}

export class AgentConnection {
  readonly #input: Writable;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closedError: SandboxError | undefined;
  readonly ready: Promise<void>;

  /** `output` is the agent's stdout, `input` its stdin. */
  constructor(output: Readable, input: Writable) {
    this.#input = input;
    input.on("error", () => {
      // EPIPE after the agent died; close() reports it to callers.
    });
    let markReady: () => void = () => {};
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    createInterface({ input: output, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
      let message: AgentLine;
      try {
        message = JSON.parse(line) as AgentLine;
      } catch {
        return; // not ours; the agent only writes JSON lines
      }
      if (message.event === "ready") return markReady();
      if (typeof message.id !== "number") return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new AgentRequestError(message.error ?? { code: "EIO", message: "agent error" }));
    });
  }

  get isClosed(): boolean {
    return this.#closedError !== undefined;
  }

  /** Allocates the id first so callers (exec) can refer to the request in a later `cancel`. */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId += 1;
    return id;
  }

  /** Sends one request; resolves with the agent's `result`, rejects with AgentRequestError or SandboxError. */
  request<Result>(op: string, payload: Record<string, unknown>, id = this.nextId()): Promise<Result> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    return new Promise<Result>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#input.write(`${JSON.stringify({ ...payload, id, op })}\n`);
    });
  }

  /** Rejects every pending and future request with `error`. Idempotent: the first error wins. */
  close(error: SandboxError): void {
    if (this.#closedError) return;
    this.#closedError = error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
