/** The built-in tool set with Claude Code's names and parameters, and their model-facing definitions. */
import { z } from "zod";
import { InvariantError } from "../errors/app-error.js";
import type { ToolDefinition } from "../model/language-model.js";
import { createBashTool } from "./bash-tool.js";
import { createEditTool } from "./edit-tool.js";
import { createGlobTool } from "./glob-tool.js";
import { createGrepTool } from "./grep-tool.js";
import { createReadTool } from "./read-tool.js";
import type { Tool } from "./tool.js";
import { createWriteTool } from "./write-tool.js";

/** Bash, Read, Write, Edit, Glob, Grep: fresh, stateless instances (session state lives in the ToolContext). */
export function createDefaultTools(): Tool[] {
  return [
    createBashTool(),
    createReadTool(),
    createWriteTool(),
    createEditTool(),
    createGlobTool(),
    createGrepTool(),
  ] as Tool[];
}

/**
 * What the model is shown for each tool: name, our description, and the JSON Schema of the input as the
 * model writes it (zod's input view, so defaulted fields such as `replace_all` stay optional).
 * Throws on duplicate names or a schema zod cannot express, at construction time.
 */
export function toolDefinitions(tools: readonly Tool[]): ToolDefinition[] {
  const seen = new Set<string>();
  return tools.map((tool) => {
    if (seen.has(tool.name)) throw new InvariantError(`Duplicate tool name: ${tool.name}`);
    seen.add(tool.name);
    return {
      name: tool.name,
      description: tool.description,
      inputSchema: z.toJSONSchema(tool.inputSchema, { io: "input" }) as Record<string, unknown>,
    };
  });
}
