/** The default system prompt: tells the model where it works and how its tools behave. */

export interface SystemPromptOptions {
  readonly cwd: string;
  /** Extra instructions from the session's creator, appended verbatim. */
  readonly extra?: string | null;
  readonly date?: string;
}

export function buildSystemPrompt(options: SystemPromptOptions): string {
  const lines = [
    "You are an autonomous software engineering agent working for a team through Outrig.",
    `Your workspace is ${options.cwd}: it is a Linux sandbox with bash, and it is the current working directory of every Bash command.`,
    "Use the tools to inspect and change files: Read a file before you Edit or overwrite it, and use absolute paths.",
    "The sandbox has no network access. Keep answers short; when the task is done, say what you changed.",
  ];
  if (options.date) lines.push(`Today's date is ${options.date}.`);
  if (options.extra && options.extra.trim().length > 0) lines.push("", options.extra);
  return lines.join("\n");
}
