/** Pure: picks the loop's next step from the run state. */
import type { EvaluatedPermission, PermissionPolicy, ToolPolicy } from "@outrig/protocol";
import { DEFAULT_TOOL_POLICY, evaluateToolPolicy } from "../policy/evaluate-tool-policy.js";
import type { RunState } from "./run-state.js";
import { toolInputDigest } from "./tool-input-digest.js";

export interface LoopLimits {
  /** Model calls per turn before the turn ends with `max_steps`. */
  readonly maxSteps: number;
  /** Attempts per model call (first try included) for retryable errors. */
  readonly maxModelAttempts: number;
}

/** The pinned agent's say on tool calls (absent for a session without an agent: every call is allowed). */
export interface ToolPermissions {
  /** The permission policy of a toolset tool, by the name the model calls it; undefined: none applies. */
  policyOf(name: string): PermissionPolicy | undefined;
  /** True for the agent's custom tools: the client runs them, never the sandbox. */
  isCustom(name: string): boolean;
  /** False for a tool the agent does not offer (a toolset tool it leaves disabled): refused unrun. */
  isOffered(name: string): boolean;
}

export type NextAction =
  | { readonly type: "none" }
  | { readonly type: "call_model"; readonly step: number }
  | {
      readonly type: "run_tool";
      readonly toolCallId: string;
      /** `ask` when a confirmation allowed it; recorded on `tool.start`. */
      readonly evaluatedPermission?: EvaluatedPermission;
      readonly permissionPolicy?: PermissionPolicy;
    }
  /**
   * Ask the client for everything the model's answer waits on at once: confirmations of the calls that
   * need one and the custom tool calls it runs, in call order. The turn resumes once all are answered.
   */
  | {
      readonly type: "request_actions";
      readonly requests: readonly ActionRequest[];
    }
  /** A custom tool call was handed to the client and has no result yet: the turn waits (durably). */
  | { readonly type: "await_custom_tool"; readonly toolCallId: string }
  /** The model reused a tool call id, or called a tool the agent does not offer: answered with an error, never run. */
  | { readonly type: "reject_tool"; readonly toolCallId: string; readonly message: string }
  /** The call is not run: the policy or a person denied it. */
  | {
      readonly type: "deny_tool";
      readonly toolCallId: string;
      readonly message: string;
      readonly deniedBy: "policy" | "person";
      /** The policy rule that denied it. */
      readonly rule?: string;
    }
  /** An approval was requested and is not answered yet: the turn waits (durably). */
  | { readonly type: "await_approval"; readonly toolCallId: string }
  | {
      readonly type: "end_turn";
      readonly reason: "end_turn" | "max_steps" | "max_tokens" | "refusal" | "interrupted";
    };

/** One call the client must act on: confirm it (`approval`) or run it (`custom`). */
export type ActionRequest =
  | {
      readonly type: "approval";
      readonly toolCallId: string;
      readonly rule: string;
      readonly timeoutMs: number;
      /** `always_ask` when the agent's policy asked (the org's may have too). */
      readonly permissionPolicy?: PermissionPolicy;
    }
  | { readonly type: "custom"; readonly toolCallId: string };

type ToolCallState = RunState["toolCalls"][number];

/**
 * What the client must do before this call can go on, when anything: run it (a custom tool), or
 * confirm it (the org's policy says `ask`, or the agent's `always_ask`). Undefined for a call that runs,
 * is refused, or has started.
 */
function actionFor(
  call: ToolCallState,
  policy: ToolPolicy | undefined,
  permissions: ToolPermissions | undefined,
): ActionRequest | undefined {
  if (call.result !== undefined || call.hasStarted || call.duplicateOf !== undefined) return undefined;
  if (permissions && !permissions.isOffered(call.name)) return undefined;
  const decision = policy
    ? evaluateToolPolicy(policy, call.name, call.input)
    : { action: "allow" as const, rule: "default" };
  if (decision.action === "deny") return undefined;
  if (permissions?.isCustom(call.name)) return { type: "custom", toolCallId: call.toolCallId };
  const permissionPolicy = permissions?.policyOf(call.name);
  if (decision.action !== "ask" && permissionPolicy !== "always_ask") return undefined;
  return {
    type: "approval",
    toolCallId: call.toolCallId,
    rule: decision.action === "ask" ? decision.rule : "always_ask",
    timeoutMs: (policy ?? DEFAULT_TOOL_POLICY).approvalTimeoutMs,
    ...(permissionPolicy === "always_ask" ? { permissionPolicy } : {}),
  };
}

/** Whether the client was asked about this call and has not answered yet. */
function isAwaited(state: RunState, call: ToolCallState): boolean {
  if (call.result !== undefined) return false;
  const request = state.customRequests.get(call.toolCallId);
  if (request) return !request.isAnswered;
  const approval = state.approvals.get(call.toolCallId);
  return approval !== undefined && approval.decision === undefined;
}

/**
 * The org's tool policy applies first and its deny wins; then the agent's permission policy: a custom
 * tool goes to the client, `always_ask` (or the org's `ask`) waits for a confirmation, anything else runs.
 */
export function nextAction(
  state: RunState,
  limits: LoopLimits,
  policy?: ToolPolicy,
  permissions?: ToolPermissions,
): NextAction {
  if (state.turnStatus !== "running") return { type: "none" };
  const pending = state.toolCalls.find((call) => call.result === undefined);
  if (state.isInterruptRequested) {
    // A call already started is finished first (its effect may have happened); nothing else starts.
    if (pending?.hasStarted) return { type: "run_tool", toolCallId: pending.toolCallId };
    return { type: "end_turn", reason: "interrupted" };
  }
  if (pending) {
    if (pending.duplicateOf !== undefined) {
      return {
        type: "reject_tool",
        toolCallId: pending.toolCallId,
        message: `The tool call id "${pending.duplicateOf}" was already used in this session, so this call was not run. Every tool call needs a new, unique id.`,
      };
    }
    // A call that already started is finished first (its effect may have happened).
    if (pending.hasStarted) return { type: "run_tool", toolCallId: pending.toolCallId };
    if (permissions && !permissions.isOffered(pending.name)) {
      // Refused before any policy applies, as for a tool that does not exist: never started.
      return {
        type: "reject_tool",
        toolCallId: pending.toolCallId,
        message: `<tool_use_error>Error: No such tool available: ${pending.name}</tool_use_error>`,
      };
    }
    const decision = policy
      ? evaluateToolPolicy(policy, pending.name, pending.input)
      : { action: "allow" as const, rule: "default" };
    if (decision.action === "deny") {
      return {
        type: "deny_tool",
        toolCallId: pending.toolCallId,
        message: `This tool call is denied by the organization's tool policy (${decision.rule}).`,
        deniedBy: "policy",
        rule: decision.rule,
      };
    }
    if (actionFor(pending, policy, permissions)) {
      // Everything this answer waits on is asked at once, and nothing runs until all is answered.
      const requests = state.toolCalls.flatMap((call) => {
        if (state.approvals.has(call.toolCallId) || state.customRequests.has(call.toolCallId)) return [];
        const request = actionFor(call, policy, permissions);
        return request ? [request] : [];
      });
      if (requests.length > 0) return { type: "request_actions", requests };
      const awaited = state.toolCalls.find((call) => isAwaited(state, call));
      if (awaited) {
        return state.customRequests.has(awaited.toolCallId)
          ? { type: "await_custom_tool", toolCallId: awaited.toolCallId }
          : { type: "await_approval", toolCallId: awaited.toolCallId };
      }
    }
    if (permissions?.isCustom(pending.name)) {
      // Requested and answered: its result is the call's (unreachable while it has none).
      return { type: "await_custom_tool", toolCallId: pending.toolCallId };
    }
    const permissionPolicy = permissions?.policyOf(pending.name);
    const approval = state.approvals.get(pending.toolCallId);
    if (approval?.decision === "allow") {
      // An approval allows the exact input it was asked for, and only when the decision named it.
      const digest = toolInputDigest(pending.input);
      const isSameCall =
        approval.inputDigest === digest &&
        (approval.decidedDigest === undefined || approval.decidedDigest === digest);
      if (isSameCall) {
        return {
          type: "run_tool",
          toolCallId: pending.toolCallId,
          evaluatedPermission: "ask",
          ...(permissionPolicy ? { permissionPolicy } : {}),
        };
      }
      return {
        type: "deny_tool",
        toolCallId: pending.toolCallId,
        message:
          "The approval given does not match this call's input, so the call was denied. Do not retry it; ask the user how to proceed.",
        deniedBy: "person",
      };
    }
    if (approval?.decision === "deny") {
      const message =
        approval.reason === "timeout"
          ? "Permission to use this tool was not granted in time, so the call was denied. Do not retry it; tell the user it needs approval."
          : (approval.denyMessage ??
            "The user denied permission to use this tool. Do not retry it; ask the user how to proceed.");
      return { type: "deny_tool", toolCallId: pending.toolCallId, message, deniedBy: "person" };
    }
    if (approval) return { type: "await_approval", toolCallId: pending.toolCallId };
    return {
      type: "run_tool",
      toolCallId: pending.toolCallId,
      evaluatedPermission: "allow",
      ...(permissionPolicy ? { permissionPolicy } : {}),
    };
  }
  const last = state.messages[state.messages.length - 1];
  if (last?.role === "assistant") {
    // The model answered without asking for tools: the turn is over.
    switch (state.lastStopReason) {
      case "max_tokens":
        return { type: "end_turn", reason: "max_tokens" };
      case "refusal":
        return { type: "end_turn", reason: "refusal" };
      default:
        return { type: "end_turn", reason: "end_turn" };
    }
  }
  if (state.step >= limits.maxSteps) return { type: "end_turn", reason: "max_steps" };
  return { type: "call_model", step: state.step + 1 };
}

/** Capped exponential backoff with full jitter; a server's retry-after wins when longer. */
export function retryDelayMs(
  attempt: number,
  random: number,
  retryAfterMs: number | undefined,
  options: { baseMs: number; capMs: number } = { baseMs: 500, capMs: 30_000 },
): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(ceiling / 2 + (ceiling / 2) * random);
  if (retryAfterMs !== undefined && retryAfterMs > 0)
    return Math.min(options.capMs * 4, Math.max(retryAfterMs, jittered));
  return jittered;
}
