/**
 * Client side of the in-sandbox agent's NDJSON protocol: request ids, concurrent requests, and
 * failing every pending call when the agent's pipe closes. Knows nothing about bubblewrap.
 *
 * Every line the agent sends is bounded (`maxMessageBytes`) and must be a JSON object: the reader
 * never builds a string longer than the bound, and an oversized or malformed line is that sandbox's
 * failure (every call rejects with `sandbox_unavailable`, `onProtocolError` runs so the owner
 * destroys the sandbox), never an exception in the server.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import { SandboxError } from "@outrig/core";

/** The default bound of one agent message: a 32 MiB file read in base64 fits, with room to spare. */
export const DEFAULT_AGENT_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The message bound that fits a readFile of `maxFileBytes` (base64 plus the JSON around it). */
export function agentMessageBytesFor(maxFileBytes: number): number {
  return Math.max(DEFAULT_AGENT_MESSAGE_BYTES, Math.ceil(maxFileBytes / 3) * 4 + 1024 * 1024);
}

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

export interface AgentConnectionOptions {
  /** Longest line accepted from the agent, in bytes. Default DEFAULT_AGENT_MESSAGE_BYTES. */
  readonly maxMessageBytes?: number;
  /** Called once when the agent broke the protocol (the connection is closed by then). */
  readonly onProtocolError?: (error: SandboxError) => void;
  /**
   * The channel key the agent was given (`--key-file`, runc): every line in both directions then
   * carries an HMAC over this connection's nonce, so a process that took over the socket path can
   * neither forge, alter nor replay a message.
   */
  readonly channelKey?: Uint8Array;
}

/** The hex HMAC-SHA256 that starts each line of an authenticated channel (see sandbox-agent.mjs). */
function channelMac(key: Uint8Array, nonce: string, direction: "host" | "agent", text: string): string {
  return createHmac("sha256", key).update(`${nonce}\n${direction}\n${text}`).digest("hex");
}

/** Checks the shape of one parsed agent line; undefined when it is not a protocol message. */
function toAgentLine(value: unknown): AgentLine | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const line = value as Record<string, unknown>;
  if (line.id !== undefined && line.id !== null && !Number.isSafeInteger(line.id)) return undefined;
  if (line.event !== undefined && typeof line.event !== "string") return undefined;
  if (line.ok !== undefined && typeof line.ok !== "boolean") return undefined;
  if (line.error !== undefined) {
    const error = line.error as Record<string, unknown> | null;
    if (typeof error !== "object" || error === null) return undefined;
    if (typeof error.code !== "string" || typeof error.message !== "string") return undefined;
    if (error.path !== undefined && typeof error.path !== "string") return undefined;
  }
  return line as AgentLine;
}

export class AgentConnection {
  readonly #input: Writable;
  readonly #channel: { readonly key: Uint8Array; readonly nonce: string } | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closedError: SandboxError | undefined;
  readonly ready: Promise<void>;

  /** `output` is the agent's stdout, `input` its stdin. */
  constructor(output: Readable, input: Writable, options: AgentConnectionOptions = {}) {
    this.#input = input;
    input.on("error", () => {
      // EPIPE after the agent died; close() reports it to callers.
    });
    let markReady: () => void = () => {};
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_AGENT_MESSAGE_BYTES;
    const fail = (reason: string) => {
      if (this.#closedError) return;
      const error = new SandboxError(
        "sandbox_unavailable",
        `the sandbox agent broke the protocol (${reason}); the sandbox was destroyed and the next call starts a new one`,
      );
      this.close(error);
      output.off("data", onData);
      output.resume(); // keep draining until the owner destroys the sandbox
      options.onProtocolError?.(error);
    };
    const channel = options.channelKey && { key: options.channelKey, nonce: randomBytes(16).toString("hex") };
    this.#channel = channel;
    const onLine = (bytes: Buffer) => {
      let text = bytes.toString("utf8");
      if (channel) {
        const expected = Buffer.from(channelMac(channel.key, channel.nonce, "agent", text.slice(65)), "hex");
        const actual = Buffer.from(text.slice(0, 64), "hex");
        if (text[64] !== " " || actual.length !== expected.length || !timingSafeEqual(actual, expected))
          return fail("a message without the channel's authentication");
        text = text.slice(65);
      }
      let message: AgentLine | undefined;
      try {
        message = toAgentLine(JSON.parse(text));
      } catch {
        message = undefined;
      }
      if (!message) return fail("a line that is not a JSON object");
      if (message.event === "ready") return markReady();
      if (typeof message.id !== "number") return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new AgentRequestError(message.error ?? { code: "EIO", message: "agent error" }));
    };
    // The line being read, as chunks: never joined before its end is seen and it fits the bound.
    let chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer | string) => {
      let rest = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      while (!this.#closedError) {
        const end = rest.indexOf(10);
        const length = end === -1 ? rest.length : end;
        if (bytes + length > maxMessageBytes) return fail(`a message longer than ${maxMessageBytes} bytes`);
        if (end === -1) {
          if (rest.length > 0) {
            chunks.push(rest);
            bytes += rest.length;
          }
          return;
        }
        const line =
          chunks.length === 0 ? rest.subarray(0, end) : Buffer.concat([...chunks, rest.subarray(0, end)]);
        chunks = [];
        bytes = 0;
        rest = rest.subarray(end + 1);
        if (line.length > 0 && !(line.length === 1 && line[0] === 13)) onLine(line);
      }
    };
    output.on("data", onData);
    output.on("error", () => {
      // The pipe or socket failed: its close (or the process exit) reports it to callers.
    });
    if (channel) this.#write({ op: "hello", nonce: channel.nonce });
  }

  #write(message: Record<string, unknown>): void {
    const text = JSON.stringify(message);
    const channel = this.#channel;
    this.#input.write(
      channel ? `${channelMac(channel.key, channel.nonce, "host", text)} ${text}\n` : `${text}\n`,
    );
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
      this.#write({ ...payload, id, op });
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
