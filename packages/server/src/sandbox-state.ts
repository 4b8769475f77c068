/**
 * A session's sandbox state folded from its event log, so every worker answers
 * `GET /v1/sessions/:id/sandbox` the same way and any worker can find the latest snapshot.
 */
import type { SessionEvent } from "@outrig/protocol";

export type SandboxLifecycleState = "none" | "running" | "standby" | "hibernated" | "cold" | "destroyed";

export interface SnapshotSummary {
  readonly key: string;
  readonly toolCallId: string | null;
  readonly at: string;
  readonly sizeBytes: number;
  readonly entryCount: number;
}

export interface SandboxStateView {
  readonly state: SandboxLifecycleState;
  /** When the sandbox entered `state` (null for "none"). */
  readonly since: string | null;
  readonly sandboxId: string | null;
  /** Latency of the last resume from standby or hibernation, in ms. */
  readonly lastResumeMs: number | null;
  readonly latestSnapshot: SnapshotSummary | null;
  /** Limits the current (or last) sandbox was created with. */
  readonly limits: Readonly<Record<string, number>> | null;
  /** How many dead sandboxes were replaced. */
  readonly replacements: number;
  /** Background processes killed by the last cold transition (0 when not cold). */
  readonly lostProcesses: number;
  /** Time of the last sandbox or tool event: what idle times count from. */
  readonly lastActivityAt: string | null;
  /** The last tool call that ended: what a snapshot without its own call id reflects. */
  readonly lastEndedToolCallId: string | null;
}

export const EMPTY_SANDBOX_STATE: SandboxStateView = {
  state: "none",
  since: null,
  sandboxId: null,
  lastResumeMs: null,
  latestSnapshot: null,
  limits: null,
  replacements: 0,
  lostProcesses: 0,
  lastActivityAt: null,
  lastEndedToolCallId: null,
};

/** Applies one event; events must arrive in seq order. Unrelated events leave the view unchanged. */
export function applySandboxEvent(view: SandboxStateView, event: SessionEvent): SandboxStateView {
  switch (event.type) {
    case "sandbox.start":
      return {
        ...view,
        state: "running",
        since: event.at,
        sandboxId: event.sandboxId,
        limits: event.limits ?? null,
        lostProcesses: 0,
        lastActivityAt: event.at,
      };
    case "sandbox.standby":
      if (view.sandboxId !== event.sandboxId) return view;
      return { ...view, state: "standby", since: event.at };
    case "sandbox.hibernate":
      if (view.sandboxId !== event.sandboxId) return view;
      return { ...view, state: "hibernated", since: event.at };
    case "sandbox.resume":
      if (view.sandboxId !== event.sandboxId) return view;
      return { ...view, state: "running", since: event.at, lastResumeMs: event.durationMs };
    case "sandbox.snapshot":
      return {
        ...view,
        latestSnapshot: {
          key: event.key,
          // File tools carry no call id down to the sandbox: the call that ended last is the one whose
          // effects the snapshot took (the next call waits for the snapshot before it runs).
          toolCallId: event.toolCallId ?? view.lastEndedToolCallId,
          at: event.at,
          sizeBytes: event.sizeBytes,
          entryCount: event.entryCount,
        },
      };
    case "sandbox.replace":
      return { ...view, replacements: view.replacements + 1, lastActivityAt: event.at };
    case "sandbox.cold":
      return { ...view, state: "cold", since: event.at, lostProcesses: event.killedProcesses };
    case "sandbox.end":
      return {
        ...view,
        state: "destroyed",
        since: event.at,
        latestSnapshot: null,
        lostProcesses: 0,
      };
    case "tool.end":
      return { ...view, lastActivityAt: event.at, lastEndedToolCallId: event.toolCallId };
    case "tool.start":
    case "turn.start":
      return { ...view, lastActivityAt: event.at };
    default:
      return view;
  }
}

export function foldSandboxState(events: readonly SessionEvent[]): SandboxStateView {
  return events.reduce(applySandboxEvent, EMPTY_SANDBOX_STATE);
}
