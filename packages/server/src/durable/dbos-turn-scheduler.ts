/**
 * Turns as DBOS workflows on the same Postgres as everything else. Each turn is one workflow
 * (`turn:<session>:<n>`) on a queue partitioned by session with `partitionConcurrency: 1`: one writer per
 * session, sessions in parallel. Every loop step is a checkpointed DBOS step; approvals are durable
 * `recv` waits. The engine does not take over a dead worker's workflows by itself (OSS), so a janitor
 * does, and a redeploy moves unfinished workflows to the new application version (see docs/durability.md).
 */
import { DBOS } from "@dbos-inc/dbos-sdk";
import { isPermanentStepError, type StepOutcome } from "@outrig/core";
import type { PostgresWorkerRegistry } from "@outrig/storage";
import {
  type ApprovalMessage,
  approvalTopic,
  type CustomToolMessage,
  customToolTopic,
  type TurnHost,
  type TurnScheduler,
  turnWorkflowId,
} from "./turn-scheduler.js";

export const SESSIONS_QUEUE = "outrig-sessions";
/** Bump only when the workflow's skeleton (the sequence of steps and waits below) changes. */
export const WORKFLOW_VERSION = "outrig-turn-v2";

/** How long one wait for a custom tool's result lasts before the turn checks the log and waits again. */
const CUSTOM_TOOL_WAIT_SECONDS = 24 * 3600;

let activeHost: TurnHost | undefined;
function host(): TurnHost {
  if (!activeHost) throw new Error("the turn host is not registered yet");
  return activeHost;
}

// A failure no retry can fix fails the step at once (the step itself normally ends its turn first).
const STEP_CONFIG = {
  retriesAllowed: true,
  maxAttempts: 30,
  intervalSeconds: 0.2,
  backoffRate: 2,
  shouldRetry: (error: unknown) => !isPermanentStepError(error),
} as const;

/**
 * The workflow body is a generic loop of identically named steps whose real decisions come from the
 * session's event log, so it replays deterministically and survives changes inside the steps.
 */
async function turnWorkflowBody(sessionId: string, turn: number): Promise<void> {
  for (;;) {
    const outcome: StepOutcome = await DBOS.runStep(() => host().step(sessionId, turn), {
      name: "agent-step",
      ...STEP_CONFIG,
    });
    if (outcome.type === "idle") break;
    if (outcome.type === "await_custom_tool") {
      // No time limit (as the API has none): a wait that times out just waits again.
      const message = await DBOS.recv<CustomToolMessage>(customToolTopic(outcome.toolCallId), {
        timeoutSeconds: CUSTOM_TOOL_WAIT_SECONDS,
      });
      if (message) {
        await DBOS.runStep(
          () => host().recordCustomToolResult(sessionId, turn, outcome.toolCallId, message),
          { name: "custom-tool-result", ...STEP_CONFIG },
        );
      }
    }
    if (outcome.type === "await_approval") {
      const message = await DBOS.recv<ApprovalMessage>(approvalTopic(outcome.toolCallId), {
        timeoutSeconds: Math.max(1, outcome.timeoutMs / 1000),
      });
      await DBOS.runStep(() => host().recordApproval(sessionId, turn, outcome.toolCallId, message), {
        name: "approval-response",
        ...STEP_CONFIG,
      });
    }
  }
  // The turn is over: the next queued message starts the next turn, whose workflow is queued behind this
  // one (started from the workflow, not a step, so a replay finds it started instead of starting another).
  const next = await DBOS.runStep(() => host().startQueuedTurn(sessionId, turn), {
    name: "start-queued",
    ...STEP_CONFIG,
  });
  if (next !== null && next > turn) await startTurnWorkflow(sessionId, next);
}

const turnWorkflow = DBOS.registerWorkflow(turnWorkflowBody, { name: "outrig-turn" });

async function startTurnWorkflow(sessionId: string, turn: number): Promise<void> {
  await DBOS.startWorkflow(turnWorkflow, {
    workflowID: turnWorkflowId(sessionId, turn),
    queueName: SESSIONS_QUEUE,
    enqueueOptions: { queuePartitionKey: sessionId },
  })(sessionId, turn);
}

export interface DbosTurnSchedulerOptions {
  readonly databaseUrl: string;
  /** Unique and stable per worker: two live processes must never share it. */
  readonly workerId: string;
  /** Defaults to WORKFLOW_VERSION; set OUTRIG_WORKFLOW_VERSION to roll a deploy by hand. */
  readonly applicationVersion?: string;
  readonly workers: PostgresWorkerRegistry;
  readonly heartbeatMs?: number;
  /** A worker silent for this long is dead and its sessions are taken over. */
  readonly deadAfterMs?: number;
  readonly pollingIntervalMs?: number;
  readonly log: (message: string) => void;
}

export class DbosTurnScheduler implements TurnScheduler {
  readonly #options: DbosTurnSchedulerOptions;
  readonly #version: string;
  #timer: NodeJS.Timeout | undefined;
  #janitorRunning: Promise<void> | undefined;
  #isClosed = false;
  #isClaiming = true;

  constructor(options: DbosTurnSchedulerOptions) {
    this.#options = options;
    this.#version = options.applicationVersion ?? WORKFLOW_VERSION;
  }

  get workerId(): string {
    return this.#options.workerId;
  }

  async start(turnHost: TurnHost): Promise<void> {
    activeHost = turnHost;
    const { log } = this.#options;
    DBOS.setConfig({
      name: "outrig",
      systemDatabaseUrl: this.#options.databaseUrl,
      systemDatabaseSchemaName: "dbos",
      executorID: this.#options.workerId,
      applicationVersion: this.#version,
      logger: createDbosLogger(log),
    });
    await this.#options.workers.heartbeat(this.#options.workerId, this.#version);
    await DBOS.launch(); // resumes this worker's own PENDING workflows of this version
    await DBOS.registerQueue(SESSIONS_QUEUE, {
      partitionConcurrency: 1,
      minPollingIntervalMs: this.#options.pollingIntervalMs ?? 50,
      onConflict: "always_update",
    });
    await this.#adoptOtherVersions();
    await this.#janitor();
    const interval = this.#options.heartbeatMs ?? 2000;
    this.#timer = setInterval(() => {
      this.#janitorRunning ??= this.#janitor()
        .catch((error: Error) => log(`janitor: ${error.message}`))
        .finally(() => {
          this.#janitorRunning = undefined;
        });
    }, interval);
    this.#timer.unref();
  }

  async schedule(sessionId: string, turn: number): Promise<void> {
    await startTurnWorkflow(sessionId, turn);
  }

  async sendApproval(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: ApprovalMessage,
  ): Promise<void> {
    // The idempotency key makes a repeated decision (a retried HTTP call) a no-op.
    await DBOS.send(
      turnWorkflowId(sessionId, turn),
      message,
      approvalTopic(toolCallId),
      message.isInterrupt ? `interrupt:${sessionId}:${toolCallId}` : `approval:${sessionId}:${toolCallId}`,
    );
  }

  async sendCustomToolResult(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: CustomToolMessage,
  ): Promise<void> {
    // One result per call: a repeated send (a retried HTTP call) is a no-op; an interrupt's wake-up has its own key.
    const key = message.isInterrupt
      ? `interrupt:${sessionId}:${toolCallId}`
      : `custom-tool:${sessionId}:${toolCallId}`;
    await DBOS.send(turnWorkflowId(sessionId, turn), message, customToolTopic(toolCallId), key);
  }

  async cancel(sessionId: string, turn: number): Promise<void> {
    await DBOS.cancelWorkflow(turnWorkflowId(sessionId, turn));
  }

  /** Keeps heartbeating (a draining worker is alive: its running steps must not be taken over). */
  stopClaiming(): void {
    this.#isClaiming = false;
  }

  async close(): Promise<void> {
    this.#isClosed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#janitorRunning;
    await DBOS.shutdown();
    activeHost = undefined;
  }

  /** Heartbeat, then take over the workflows of workers that stopped beating. */
  async #janitor(): Promise<void> {
    if (this.#isClosed) return;
    const { workers, workerId, log } = this.#options;
    await workers.heartbeat(workerId, this.#version);
    if (!this.#isClaiming) return;
    for (const dead of await workers.stale(this.#options.deadAfterMs ?? 10_000)) {
      if (dead.id === workerId) continue;
      // Whoever deletes the row owns the takeover, so two live workers never both resume a workflow.
      if (!(await workers.claim(dead.id))) continue;
      const pending = await DBOS.listWorkflows({
        status: "PENDING",
        executorId: dead.id,
        queueName: SESSIONS_QUEUE,
      });
      for (const workflow of pending) {
        await this.#moveHere(workflow.workflowID, workflow.applicationVersion);
      }
      if (pending.length > 0) log(`took over ${pending.length} turn(s) of dead worker ${dead.id}`);
    }
  }

  /** A redeploy: unfinished turns started under another version continue under this one. */
  async #adoptOtherVersions(): Promise<void> {
    const live = new Set(
      (await this.#options.workers.live(this.#options.deadAfterMs ?? 10_000)).map((worker) => worker.id),
    );
    live.delete(this.#options.workerId);
    const stranded = await DBOS.listWorkflows({ status: ["PENDING", "ENQUEUED"], queueName: SESSIONS_QUEUE });
    let moved = 0;
    for (const workflow of stranded) {
      if (workflow.applicationVersion === this.#version) continue;
      if (workflow.executorId && live.has(workflow.executorId)) continue; // its own worker still runs it
      await this.#moveHere(workflow.workflowID, workflow.applicationVersion);
      moved += 1;
    }
    if (moved > 0)
      this.#options.log(`moved ${moved} unfinished turn(s) from older versions to ${this.#version}`);
  }

  async #moveHere(workflowId: string, version: string | undefined): Promise<void> {
    const sessionId = workflowId.split(":")[1] ?? "";
    if (version === this.#version) {
      await DBOS.resumeWorkflow(workflowId, { queueName: SESSIONS_QUEUE });
      return;
    }
    // Steps re-derive their work from the session log, so restarting the workflow from its first step
    // under the new version repeats nothing that was already recorded.
    await DBOS.cancelWorkflow(workflowId);
    await DBOS.rewindWorkflow(workflowId, {
      startStep: 0,
      applicationVersion: this.#version,
      queueName: SESSIONS_QUEUE,
      queuePartitionKey: sessionId,
    });
  }
}

function createDbosLogger(log: (message: string) => void) {
  const quiet = (): void => undefined;
  const describe = (entry: unknown) => (entry instanceof Error ? entry.message : String(entry));
  return {
    debug: quiet,
    info: quiet,
    warn: (entry: unknown) => log(`dbos warn: ${describe(entry)}`),
    error: (entry: unknown) => log(`dbos error: ${describe(entry)}`),
  };
}
