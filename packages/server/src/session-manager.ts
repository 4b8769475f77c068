/**
 * Owns running sessions in this process: starts turns, drives the loop in the background, holds each
 * session's lazy sandbox and resumes running sessions after a restart. One writer per session.
 */
import path from "node:path";
import {
  buildSystemPrompt,
  createMountTable,
  ensureError,
  InputError,
  type LanguageModel,
  type LoopLimits,
  type ModelFactory,
  type MountTable,
  runSession,
  type Sandbox,
  SandboxFileSystem,
  type SandboxProvider,
  type SessionRecord,
  type SessionStore,
  type Tool,
} from "@outrig/core";
import type { NewSessionEvent } from "@outrig/protocol";
import type { EventBus } from "./event-bus.js";
import { notFound } from "./http-error.js";
import { SessionSandbox } from "./session-sandbox.js";

export const WORKSPACE = "/workspace";

export interface SessionManagerOptions {
  readonly store: SessionStore;
  readonly modelFactory: ModelFactory;
  readonly sandboxProvider: SandboxProvider;
  readonly tools: readonly Tool[];
  readonly bus: EventBus;
  readonly home: string;
  readonly limits: LoopLimits;
  readonly sandboxIdleMs: number;
  readonly log: (message: string) => void;
}

export interface Caller {
  readonly orgId: string;
  readonly userId: string;
}

interface LiveSession {
  readonly sandbox: SessionSandbox;
  /** A Sandbox view that acquires (or replaces) the real sandbox on every call. */
  readonly proxy: Sandbox;
  running: Promise<void> | undefined;
  controller: AbortController | undefined;
  /** Serializes turn starts for this session. */
  lock: Promise<unknown>;
}

export class SessionManager {
  readonly #options: SessionManagerOptions;
  readonly #live = new Map<string, LiveSession>();
  readonly #models = new Map<string, LanguageModel>();
  #isClosed = false;

  constructor(options: SessionManagerOptions) {
    this.#options = options;
  }

  /** Validates the model spec, creates the session and starts its first turn when a prompt is given. */
  async create(
    caller: Caller,
    input: { model: string; prompt?: string; system?: string },
  ): Promise<SessionRecord> {
    this.#model(input.model); // fails early on an unknown provider or a missing key
    const { store } = this.#options;
    const session = await store.createSession({
      orgId: caller.orgId,
      userId: caller.userId,
      model: input.model,
      system: input.system ?? null,
    });
    await this.#append(session.id, [{ type: "session.start", model: input.model }]);
    if (input.prompt !== undefined) return this.postMessage(caller, session.id, input.prompt);
    return (await store.getSession(caller.orgId, session.id)) ?? session;
  }

  /** Starts the next turn. Throws 409 while a turn is running. */
  async postMessage(caller: Caller, sessionId: string, text: string): Promise<SessionRecord> {
    const { store } = this.#options;
    const existing = await store.getSession(caller.orgId, sessionId);
    if (!existing) throw notFound("Session");
    const live = this.#liveSession(existing);
    const started = live.lock.then(async () => {
      const session = await store.getSession(caller.orgId, sessionId);
      if (!session) throw notFound("Session");
      if (session.status === "running" || live.running) {
        throw new InputError(
          "session_busy",
          "A turn is already running in this session; wait for it to end.",
          409,
        );
      }
      const turn = session.turns + 1;
      await this.#append(sessionId, [{ type: "turn.start", turn, text }]);
      await store.updateSession(sessionId, { status: "running", turns: turn });
      this.#drive(session);
      return (await store.getSession(caller.orgId, sessionId)) ?? session;
    });
    live.lock = started.catch(() => undefined);
    return started;
  }

  async get(caller: Caller, sessionId: string): Promise<SessionRecord> {
    const session = await this.#options.store.getSession(caller.orgId, sessionId);
    if (!session) throw notFound("Session");
    return session;
  }

  /** Reads a workspace file through the sandbox (never from the host directly, so symlinks cannot escape). */
  async readFile(caller: Caller, sessionId: string, filePath: string): Promise<Uint8Array> {
    const session = await this.get(caller, sessionId);
    const fs = this.#fileSystem(session);
    const resolved = fs.resolve(filePath);
    if (resolved.mount.prefix !== WORKSPACE) {
      throw new InputError(
        "invalid_path",
        `Only files under ${WORKSPACE} can be read through this route.`,
        400,
      );
    }
    return fs.read(filePath);
  }

  /** Resumes every session that was running when the previous process stopped. */
  async recover(): Promise<number> {
    const running = await this.#options.store.listRunningSessions({ limit: 10_000 });
    for (const session of running) this.#drive(session);
    return running.length;
  }

  /** Waits until the session's current turn (if any) has finished in this process. */
  async idle(sessionId: string): Promise<void> {
    await this.#live.get(sessionId)?.running;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    const lives = [...this.#live.values()];
    for (const live of lives) live.controller?.abort(new Error("server shutting down"));
    await Promise.allSettled(lives.map((live) => live.running));
    await Promise.allSettled(lives.map((live) => live.sandbox.destroy()));
  }

  #drive(session: SessionRecord): void {
    if (this.#isClosed) return;
    const live = this.#liveSession(session);
    if (live.running) return;
    const controller = new AbortController();
    live.controller = controller;
    const fs = this.#fileSystem(session);
    const options = this.#options;
    live.running = (async () => {
      try {
        await runSession(
          {
            store: options.store,
            tools: options.tools,
            limits: options.limits,
            sleep: abortableSleep,
            random: Math.random,
            publish: (sessionId, event) => options.bus.publish(sessionId, event),
          },
          {
            sessionId: session.id,
            model: this.#model(session.model),
            fs,
            exec: (request, signal) => live.proxy.exec(request, signal),
            systemPrompt: buildSystemPrompt({ cwd: WORKSPACE, extra: session.system }),
            cwd: WORKSPACE,
          },
          controller.signal,
        );
      } catch (thrown) {
        const error = ensureError(thrown);
        options.log(`session ${session.id}: loop stopped: ${error.message}`);
        await this.#failTurn(session, error).catch(() => undefined);
      } finally {
        live.running = undefined;
        live.controller = undefined;
      }
    })();
  }

  /** The loop itself failed (e.g. the database went away): record it so clients are not left waiting. */
  async #failTurn(session: SessionRecord, error: Error): Promise<void> {
    if (this.#isClosed) return;
    const current = await this.#options.store.getSession(session.orgId, session.id);
    if (current?.status !== "running") return;
    await this.#append(session.id, [
      {
        type: "turn.error",
        turn: current.turns,
        code: "internal",
        message: `The turn stopped: ${error.message}`,
      },
    ]);
    await this.#options.store.updateSession(session.id, { status: "error" });
  }

  #fileSystem(session: SessionRecord): MountTable {
    const live = this.#liveSession(session);
    const getSandbox = async () => live.proxy;
    return createMountTable([
      { prefix: "/", fileSystem: new SandboxFileSystem(getSandbox, "/") },
      { prefix: WORKSPACE, fileSystem: new SandboxFileSystem(getSandbox, WORKSPACE) },
    ]);
  }

  #liveSession(session: SessionRecord): LiveSession {
    let live = this.#live.get(session.id);
    if (!live) {
      const sandbox = new SessionSandbox({
        provider: this.#options.sandboxProvider,
        sessionId: session.id,
        orgId: session.orgId,
        workspaceDir: path.join(this.#options.home, "workspaces", session.id),
        idleMs: this.#options.sandboxIdleMs,
        onStart: (handle, durationMs) => {
          void this.#append(session.id, [
            {
              type: "sandbox.start",
              sandboxId: handle.id,
              provider: this.#options.sandboxProvider.id,
              durationMs: Math.round(durationMs * 100) / 100,
            },
          ]).catch(() => undefined);
        },
      });
      live = {
        sandbox,
        proxy: createSandboxProxy(sandbox),
        running: undefined,
        controller: undefined,
        lock: Promise.resolve(),
      };
      this.#live.set(session.id, live);
    }
    return live;
  }

  #model(spec: string): LanguageModel {
    let model = this.#models.get(spec);
    if (!model) {
      model = this.#options.modelFactory(spec);
      this.#models.set(spec, model);
    }
    return model;
  }

  async #append(sessionId: string, events: NewSessionEvent[]): Promise<void> {
    const stored = await this.#options.store.appendEvents(sessionId, events);
    for (const event of stored) this.#options.bus.publish(sessionId, event);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function createSandboxProxy(sandbox: SessionSandbox): Sandbox {
  return {
    exec: (request, signal) => sandbox.use((live) => live.exec(request, signal)),
    readFile: (filePath) => sandbox.use((live) => live.readFile(filePath)),
    writeFile: (filePath, data) => sandbox.use((live) => live.writeFile(filePath, data)),
    stat: (filePath) => sandbox.use((live) => live.stat(filePath)),
    list: (filePath, listOptions) => sandbox.use((live) => live.list(filePath, listOptions)),
    remove: (filePath) => sandbox.use((live) => live.remove(filePath)),
  };
}
