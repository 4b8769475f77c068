/**
 * How turns get executed. The session manager starts turns; a scheduler runs them: in this process
 * (tests) or as durable workflows (production). Both call back into a `TurnHost` for each step.
 */
import type { StepOutcome } from "@outrig/core";

export interface ApprovalMessage {
  readonly decision: "allow" | "deny";
  readonly userId: string;
  /** The input digest of the request the person answered (absent in messages sent before it existed). */
  readonly inputDigest?: string;
}

/** What a scheduler calls to make progress on a turn. Implemented by the session manager. */
export interface TurnHost {
  /** Performs one step of the turn; `idle` when the turn is over or is not the running one. */
  step(sessionId: string, turn: number): Promise<StepOutcome>;
  /** Records an approval decision, or a timeout (null). Idempotent. */
  recordApproval(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: ApprovalMessage | null,
  ): Promise<void>;
}

export interface TurnScheduler {
  /** Starts executing turns (and resumes the ones a crash interrupted). */
  start(host: TurnHost): Promise<void>;
  /** Queues a turn; one turn per session runs at a time. Idempotent per (session, turn). */
  schedule(sessionId: string, turn: number): Promise<void>;
  /** Delivers an approval decision to the waiting turn, exactly once. */
  sendApproval(sessionId: string, turn: number, toolCallId: string, message: ApprovalMessage): Promise<void>;
  /** Stops the turn's workflow (the host aborts the running step). */
  cancel(sessionId: string, turn: number): Promise<void>;
  /** The worker is stopping: take over no other worker's turns from now on. */
  stopClaiming?(): void;
  close(): Promise<void>;
}

export function turnWorkflowId(sessionId: string, turn: number): string {
  return `turn:${sessionId}:${turn}`;
}

export function approvalTopic(toolCallId: string): string {
  return `approval:${toolCallId}`;
}
