/**
 * The tools of the API's `agent_toolset_20260401` that an agent enables, by the toolset's own names
 * (bash, read, write, edit, glob, grep, web_fetch, web_search). Call it once per session: `bash` keeps
 * the session's shell state in the object it returns (unless `deps.shellState` keeps it elsewhere).
 */
import type { ToolsetToolName, ToolsetToolSettings } from "../../agents/agent-config.js";
import type { Tool } from "../tool.js";
import { createToolsetBashTool, type ShellStateStore } from "./toolset-bash-tool.js";
import {
  createToolsetEditTool,
  createToolsetGlobTool,
  createToolsetGrepTool,
  createToolsetReadTool,
  createToolsetWriteTool,
} from "./toolset-file-tools.js";
import {
  createWebFetchTool,
  createWebSearchTool,
  type WebDomainSettings,
  type WebFetcher,
  type WebSearcher,
} from "./web-tools.js";

/** A toolset tool's settings; web_fetch and web_search may carry the agent's domain lists. */
export type ToolsetSettings = Readonly<
  Partial<Record<ToolsetToolName, ToolsetToolSettings & WebDomainSettings>>
>;

export interface ToolsetDeps {
  /** The backend's copy of the session's shell state; one in memory per call of createToolsetTools by default. */
  readonly shellState?: ShellStateStore;
  /** Fetches through the session's egress; without it web_fetch is not offered. */
  readonly webFetcher?: WebFetcher;
  /** The configured search backend; without it web_search is not offered. */
  readonly webSearcher?: WebSearcher;
  /** Matching time one glob or grep call may spend. */
  readonly regexBudgetMs?: number;
}

export interface ToolsetTools {
  /** The enabled tools that can run here, in the toolset's order. */
  readonly tools: Tool[];
  /** Enabled tools this server cannot offer, and why (say so to whoever configured the agent). */
  readonly unavailable: readonly { readonly name: ToolsetToolName; readonly reason: string }[];
}

export const WEB_SEARCH_UNAVAILABLE =
  "web_search needs a search backend and this server has none configured; the tool is not offered to the model";
export const WEB_FETCH_UNAVAILABLE =
  "web_fetch needs the server's egress proxy (to apply the environment's allowed hosts) and this server runs without it; the tool is not offered to the model";

export function createToolsetTools(settings: ToolsetSettings, deps: ToolsetDeps = {}): ToolsetTools {
  const isEnabled = (name: ToolsetToolName) => settings[name]?.enabled === true;
  const budget = deps.regexBudgetMs === undefined ? {} : { regexBudgetMs: deps.regexBudgetMs };
  const tools: Tool[] = [];
  const unavailable: { name: ToolsetToolName; reason: string }[] = [];
  if (isEnabled("bash"))
    tools.push(createToolsetBashTool(deps.shellState ? { state: deps.shellState } : {}) as Tool);
  if (isEnabled("read")) tools.push(createToolsetReadTool() as Tool);
  if (isEnabled("write")) tools.push(createToolsetWriteTool() as Tool);
  if (isEnabled("edit")) tools.push(createToolsetEditTool() as Tool);
  if (isEnabled("glob")) tools.push(createToolsetGlobTool(budget) as Tool);
  if (isEnabled("grep")) tools.push(createToolsetGrepTool(budget) as Tool);
  if (isEnabled("web_fetch")) {
    if (deps.webFetcher) tools.push(createWebFetchTool(deps.webFetcher, settings.web_fetch) as Tool);
    else unavailable.push({ name: "web_fetch", reason: WEB_FETCH_UNAVAILABLE });
  }
  if (isEnabled("web_search")) {
    if (deps.webSearcher) tools.push(createWebSearchTool(deps.webSearcher, settings.web_search) as Tool);
    else unavailable.push({ name: "web_search", reason: WEB_SEARCH_UNAVAILABLE });
  }
  return { tools, unavailable };
}
