/**
 * How turns get executed. The session manager starts turns; a scheduler runs them: in this process
 * (tests) or as durable workflows (production). Both call back into a `TurnHost` for each step.
 */
import type { StepOutcome } from "@outrig/core";
import type { CustomToolContentBlock } from "@outrig/protocol";

export interface ApprovalMessage {
  readonly decision: "allow" | "deny";
  readonly userId: string;
  /** The input digest of the request the person answered (absent in messages sent before it existed). */
  readonly inputDigest?: string;
  /** With a deny: what the model is told (the API's `deny_message`). */
  readonly denyMessage?: string;
  /** Not an answer: an interrupt woke the wait (the turn ends without recording a decision). */
  readonly isInterrupt?: boolean;
}

/** A client's result for a custom tool call, or (`isInterrupt`) an interrupt waking the wait. */
export interface CustomToolMessage {
  readonly content: readonly CustomToolContentBlock[];
  readonly isError: boolean;
  readonly userId: string;
  readonly isInterrupt?: boolean;
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
  /** Records a custom tool's result (null: the wait timed out and goes on). Idempotent. */
  recordCustomToolResult(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: CustomToolMessage | null,
  ): Promise<void>;
  /**
   * Called once the turn is over: starts the session's next queued message as the next turn. Resolves
   * the turn the scheduler must schedule (the running one, also when a repeat after a crash finds it
   * started already), or null when no turn runs.
   */
  startQueuedTurn(sessionId: string, turn: number): Promise<number | null>;
}

export interface TurnScheduler {
  /** Starts executing turns (and resumes the ones a crash interrupted). */
  start(host: TurnHost): Promise<void>;
  /** Queues a turn; one turn per session runs at a time. Idempotent per (session, turn). */
  schedule(sessionId: string, turn: number): Promise<void>;
  /** Delivers an approval decision to the waiting turn, exactly once. */
  sendApproval(sessionId: string, turn: number, toolCallId: string, message: ApprovalMessage): Promise<void>;
  /** Delivers a custom tool's result to the waiting turn, exactly once. */
  sendCustomToolResult(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: CustomToolMessage,
  ): Promise<void>;
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

export function customToolTopic(toolCallId: string): string {
  return `custom-tool:${toolCallId}`;
}
