/** Pure: decides allow / deny / ask for a tool call from an org's ordered rules (first match wins). */
import { posix } from "node:path";
import type { ToolPolicy, ToolPolicyRule } from "@outrig/protocol";
import { toolsetNameOf } from "../agents/agent-tool-permissions.js";

/** Where relative paths in tool inputs lead (the tools' working directory). */
const WORKSPACE = "/workspace";

export interface PolicyDecision {
  readonly action: "allow" | "deny" | "ask";
  /** The matching rule as text, for events and tool errors; "default" when none matched. */
  readonly rule: string;
}

export const DEFAULT_TOOL_POLICY: ToolPolicy = { rules: [], approvalTimeoutMs: 3600 * 1000 };

/** The input field a rule's `match` is tested against, per tool. */
export function policySubject(name: string, input: unknown): string | undefined {
  if (!input || typeof input !== "object") return undefined;
  const record = input as Record<string, unknown>;
  // `Bash` is Claude Code's name, `bash` the agent toolset's; web_fetch's subject is its URL.
  if (name === "Bash" || name === "bash")
    return typeof record.command === "string" ? record.command : undefined;
  const path = record.file_path ?? record.path;
  // The toolset takes paths relative to /workspace: a rule on `/workspace/x*` must see `x` as that path,
  // and `/workspace/../etc` as `/etc`.
  if (typeof path === "string") return posix.resolve(WORKSPACE, path);
  const value = record.pattern ?? record.url;
  return typeof value === "string" ? value : undefined;
}

/**
 * A rule names a tool by Claude Code's name (`Bash`) or the agent toolset's (`bash`): both name the same
 * tool, so a rule written before agents existed still governs the toolset's calls.
 */
function isSameTool(ruleTool: string, name: string): boolean {
  if (ruleTool === name) return true;
  const toolsetName = toolsetNameOf(name);
  return toolsetName !== undefined && toolsetNameOf(ruleTool) === toolsetName;
}

export function evaluateToolPolicy(policy: ToolPolicy, name: string, input: unknown): PolicyDecision {
  const subject = policySubject(name, input);
  for (const rule of policy.rules) {
    if (rule.tool !== "*" && !isSameTool(rule.tool, name)) continue;
    if (rule.match !== undefined && (subject === undefined || !wildcardMatch(rule.match, subject.trim())))
      continue;
    return { action: rule.action, rule: describeRule(rule) };
  }
  return { action: "allow", rule: "default" };
}

export function describeRule(rule: ToolPolicyRule): string {
  return rule.match === undefined
    ? `${rule.tool}: ${rule.action}`
    : `${rule.tool}(${rule.match}): ${rule.action}`;
}

/** `*` matches any run of characters (slashes included), `?` one character; everything else is literal. */
export function wildcardMatch(pattern: string, text: string): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${source}$`, "s").test(text);
}
