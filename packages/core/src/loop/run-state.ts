/** Pure reducer from session events to the state the loop decides on. No I/O, no clock. */
import type {
  AssistantMessage,
  CustomToolContentBlock,
  Message,
  PinnedAgentConfig,
  SessionEvent,
  StopReason,
  ToolCallPart,
  ToolResultPart,
  Usage,
} from "@outrig/protocol";
import type { FileReadRecord } from "../tools/tool.js";
import { toolInputDigest } from "./tool-input-digest.js";

export type TurnStatus = "none" | "running" | "ended" | "failed";

export interface PendingToolCall {
  readonly toolCallId: string;
  readonly name: string;
  readonly input: unknown;
  readonly hasStarted: boolean;
  readonly result: ToolResultPart | undefined;
  /**
   * Set when the model reused an id it had used before in this session (or twice in one message): the
   * call never runs and is answered with an error. Its `toolCallId` is then a fresh one (see
   * `duplicateToolCallId`) so every id in the transcript stays unique; this is the id the model sent.
   */
  readonly duplicateOf?: string;
}

export interface ApprovalState {
  /** Seq of the `approval.request` (the API's event id is derived from it); 0 for a damaged log. */
  readonly seq: number;
  /** Digest of the input the approval was asked for (`toolInputDigest`). */
  readonly inputDigest: string;
  /** The digest the decision named; absent in logs written before decisions named one. */
  readonly decidedDigest?: string;
  readonly timeoutMs: number;
  readonly decision: "allow" | "deny" | undefined;
  readonly reason: "user" | "timeout" | undefined;
  /** With a deny by a person: what the model is told instead of the default text. */
  readonly denyMessage?: string;
}

/** A custom tool call the client was asked to run (`custom_tool.request`) in the current turn. */
export interface CustomToolRequestState {
  readonly seq: number;
  readonly name: string;
  readonly isAnswered: boolean;
}

export interface RunState {
  readonly lastSeq: number;
  readonly turn: number;
  readonly turnStatus: TurnStatus;
  /** Model calls completed in the current turn. */
  readonly step: number;
  /** Failed attempts of the model call in progress. */
  readonly modelAttempts: number;
  readonly messages: readonly Message[];
  /** Tool calls of the latest assistant message, in call order. */
  readonly toolCalls: readonly PendingToolCall[];
  readonly lastStopReason: StopReason | undefined;
  readonly turnUsage: Usage;
  readonly fileState: ReadonlyMap<string, FileReadRecord>;
  /** Approvals asked for in the current turn, by tool call id. */
  readonly approvals: ReadonlyMap<string, ApprovalState>;
  /** Every tool call id the model has used in this session (ids must be unique per session). */
  readonly toolCallIds: ReadonlySet<string>;
  /** Custom tool calls handed to the client in the current turn, by tool call id. */
  readonly customRequests: ReadonlyMap<string, CustomToolRequestState>;
  /** True once an `interrupt.request` named the current turn: it ends after the step in flight. */
  readonly isInterruptRequested: boolean;
  /** The agent config `session.start` pinned; undefined for a session without one. */
  readonly agent: PinnedAgentConfig | undefined;
}

export const INTERRUPTED_TOOL_OUTPUT =
  "Tool call was interrupted before it finished; it did not return a result.";

export function initialRunState(): RunState {
  return {
    lastSeq: 0,
    turn: 0,
    turnStatus: "none",
    step: 0,
    modelAttempts: 0,
    messages: [],
    toolCalls: [],
    lastStopReason: undefined,
    turnUsage: { inputTokens: 0, outputTokens: 0 },
    fileState: new Map(),
    approvals: new Map(),
    toolCallIds: new Set(),
    customRequests: new Map(),
    isInterruptRequested: false,
    agent: undefined,
  };
}

/** Applies one persisted event. Events must arrive in seq order. */
export function applyEvent(state: RunState, event: SessionEvent): RunState {
  const next = { ...state, lastSeq: event.seq };
  switch (event.type) {
    case "session.start":
      return event.agent ? { ...next, agent: event.agent } : next;
    case "message.queue":
    case "sandbox.start":
    case "sandbox.standby":
    case "sandbox.resume":
    case "sandbox.snapshot":
    case "sandbox.hibernate":
    case "sandbox.replace":
    case "sandbox.cold":
    case "sandbox.end":
    case "package_layer.build_start":
    case "package_layer.ready":
    case "package_layer.error":
    case "repository.clone":
      return next;
    case "turn.start": {
      const messages = closeInterruptedToolCalls(state);
      return {
        ...next,
        turn: event.turn,
        turnStatus: "running",
        step: 0,
        modelAttempts: 0,
        toolCalls: [],
        lastStopReason: undefined,
        turnUsage: { inputTokens: 0, outputTokens: 0 },
        approvals: new Map(),
        customRequests: new Map(),
        isInterruptRequested: false,
        messages: [
          ...messages,
          { role: "user", content: event.content ?? [{ type: "text", text: event.text }] },
        ],
      };
    }
    case "interrupt.request":
      return event.turn === state.turn ? { ...next, isInterruptRequested: true } : next;
    case "custom_tool.request": {
      const customRequests = new Map(state.customRequests);
      customRequests.set(event.toolCallId, { seq: event.seq, name: event.name, isAnswered: false });
      return { ...next, customRequests };
    }
    case "custom_tool.result": {
      const requested = state.customRequests.get(event.toolCallId);
      const call = state.toolCalls.find((candidate) => candidate.toolCallId === event.toolCallId);
      // A result for no open request (a damaged log, or a call answered already) changes nothing.
      if (!requested || requested.isAnswered || !call || call.result) return next;
      const customRequests = new Map(state.customRequests);
      customRequests.set(event.toolCallId, { ...requested, isAnswered: true });
      const part: ToolResultPart = {
        type: "tool_result",
        toolCallId: event.toolCallId,
        name: call.name,
        output: customToolOutput(event.content),
        isError: event.isError,
      };
      return {
        ...next,
        customRequests,
        messages: appendToolResult(state.messages, part),
        toolCalls: state.toolCalls.map((candidate) =>
          candidate.toolCallId === event.toolCallId ? { ...candidate, result: part } : candidate,
        ),
      };
    }
    case "model.retry":
      return { ...next, modelAttempts: event.attempt };
    case "message.end": {
      const { message, toolCalls, toolCallIds } = withUniqueToolCallIds(
        event.message,
        event.seq,
        state.toolCallIds,
      );
      return {
        ...next,
        step: state.step + 1,
        modelAttempts: 0,
        messages: [...state.messages, message],
        toolCallIds,
        toolCalls,
        lastStopReason: event.stopReason,
        turnUsage: {
          inputTokens: state.turnUsage.inputTokens + event.usage.inputTokens,
          outputTokens: state.turnUsage.outputTokens + event.usage.outputTokens,
        },
      };
    }
    case "tool.start":
      return {
        ...next,
        toolCalls: state.toolCalls.map((call) =>
          call.toolCallId === event.toolCallId ? { ...call, hasStarted: true } : call,
        ),
      };
    case "tool.end": {
      const part: ToolResultPart = {
        type: "tool_result",
        toolCallId: event.toolCallId,
        name: event.name,
        output: event.output,
        isError: event.isError,
      };
      let fileState = state.fileState;
      if (event.fileState && event.fileState.length > 0) {
        const updated = new Map(state.fileState);
        for (const entry of event.fileState) {
          updated.set(entry.path, { mtimeMs: entry.mtimeMs, isPartial: entry.isPartial });
        }
        fileState = updated;
      }
      return {
        ...next,
        fileState,
        messages: appendToolResult(state.messages, part),
        toolCalls: state.toolCalls.map((call) =>
          call.toolCallId === event.toolCallId ? { ...call, result: part } : call,
        ),
      };
    }
    case "approval.request": {
      const approvals = new Map(state.approvals);
      approvals.set(event.toolCallId, {
        seq: event.seq,
        inputDigest: toolInputDigest(event.input),
        timeoutMs: event.timeoutMs,
        decision: undefined,
        reason: undefined,
      });
      return { ...next, approvals };
    }
    case "approval.response": {
      const requested = state.approvals.get(event.toolCallId);
      // The first answer decides; a second one (two writers raced) changes nothing.
      if (requested?.decision !== undefined) return next;
      const approvals = new Map(state.approvals);
      approvals.set(event.toolCallId, {
        seq: requested?.seq ?? 0,
        // A response without a request (a damaged log) matches no call: the digest of nothing.
        inputDigest: requested?.inputDigest ?? "",
        ...(event.inputDigest === undefined ? {} : { decidedDigest: event.inputDigest }),
        timeoutMs: requested?.timeoutMs ?? 0,
        decision: event.decision,
        reason: event.reason,
        ...(event.denyMessage === undefined ? {} : { denyMessage: event.denyMessage }),
      });
      return { ...next, approvals };
    }
    case "turn.end":
      return { ...next, turnStatus: "ended", messages: closeInterruptedToolCalls(state), toolCalls: [] };
    case "turn.error":
      return { ...next, turnStatus: "failed", messages: closeInterruptedToolCalls(state), toolCalls: [] };
  }
}

export function foldEvents(events: readonly SessionEvent[], state = initialRunState()): RunState {
  let current = state;
  for (const event of events) current = applyEvent(current, event);
  return current;
}

/** The id a reused tool call id is given in the run state: unique, and the same on every replay. */
export function duplicateToolCallId(toolCallId: string, seq: number, index: number): string {
  return `${toolCallId}_dup_${seq}_${index}`;
}

/**
 * The message's tool calls as pending calls, with every id the session saw before (or that repeats
 * within the message) replaced by `duplicateToolCallId` in both the calls and the message, so the
 * transcript never holds two calls with one id and a result can never be matched to the wrong call.
 */
function withUniqueToolCallIds(
  message: AssistantMessage,
  seq: number,
  seen: ReadonlySet<string>,
): { message: AssistantMessage; toolCalls: PendingToolCall[]; toolCallIds: ReadonlySet<string> } {
  const calls = toolCallsOf(message);
  if (calls.length === 0) return { message, toolCalls: [], toolCallIds: seen };
  const toolCallIds = new Set(seen);
  const toolCalls: PendingToolCall[] = [];
  let isRenamed = false;
  const content = message.content.map((part, index) => {
    if (part.type !== "tool_call") return part;
    const isDuplicate = toolCallIds.has(part.toolCallId);
    const toolCallId = isDuplicate ? duplicateToolCallId(part.toolCallId, seq, index) : part.toolCallId;
    toolCallIds.add(toolCallId);
    toolCalls.push({
      toolCallId,
      name: part.name,
      input: part.input,
      hasStarted: false,
      result: undefined,
      ...(isDuplicate ? { duplicateOf: part.toolCallId } : {}),
    });
    if (!isDuplicate) return part;
    isRenamed = true;
    return { ...part, toolCallId };
  });
  return { message: isRenamed ? { ...message, content } : message, toolCalls, toolCallIds };
}

/**
 * What the model reads for a custom tool's result: its text blocks, joined by blank lines; any other
 * block (an image, a document) is named, since a tool result reaches every provider as text.
 */
export function customToolOutput(content: readonly CustomToolContentBlock[]): string {
  return content
    .map((block) =>
      block.type === "text" && typeof block.text === "string" ? block.text : `[${block.type}]`,
    )
    .join("\n\n");
}

export function toolCallsOf(message: AssistantMessage): ToolCallPart[] {
  return message.content.filter((part): part is ToolCallPart => part.type === "tool_call");
}

function appendToolResult(messages: readonly Message[], part: ToolResultPart): Message[] {
  const last = messages[messages.length - 1];
  if (last?.role === "tool") {
    return [...messages.slice(0, -1), { role: "tool", content: [...last.content, part] }];
  }
  return [...messages, { role: "tool", content: [part] }];
}

/**
 * A turn that ended while tool calls had no result would leave the transcript invalid for every
 * provider (a tool call must be answered), so unanswered calls get an error result.
 */
function closeInterruptedToolCalls(state: RunState): readonly Message[] {
  let messages = state.messages;
  for (const call of state.toolCalls) {
    if (call.result) continue;
    messages = appendToolResult(messages, {
      type: "tool_result",
      toolCallId: call.toolCallId,
      name: call.name,
      output: INTERRUPTED_TOOL_OUTPUT,
      isError: true,
    });
  }
  return messages;
}

/** Something the running turn waits for from a client: a confirmation or a custom tool's result. */
export interface PendingAction {
  readonly type: "tool_confirmation" | "custom_tool_result";
  readonly toolCallId: string;
  /** Seq of the request event (`approval.request` or `custom_tool.request`): the API derives its event id from it. */
  readonly seq: number;
}

/**
 * What the running turn waits for, in request order: while this is not empty and no step runs, the
 * API shows the session `idle` with `requires_action` naming these events. Empty when no turn runs.
 */
export function pendingActions(state: RunState): PendingAction[] {
  if (state.turnStatus !== "running" || state.isInterruptRequested) return [];
  const actions: PendingAction[] = [];
  for (const [toolCallId, approval] of state.approvals) {
    if (approval.decision === undefined)
      actions.push({ type: "tool_confirmation", toolCallId, seq: approval.seq });
  }
  for (const [toolCallId, request] of state.customRequests) {
    if (!request.isAnswered) actions.push({ type: "custom_tool_result", toolCallId, seq: request.seq });
  }
  return actions.sort((left, right) => left.seq - right.seq);
}
