/**
 * `bash` of the agent toolset: a shell whose working directory, exported variables and functions carry
 * over from one call to the next, as if one bash process ran them all.
 *
 * Each call is still one `exec` in the sandbox (no process outlives its call except the ones the model
 * puts in the background), so the shell survives whatever the sandbox goes through: a script run
 * before the command restores the saved state, an EXIT trap saves it again. The state is kept twice:
 * in a file in the sandbox's /tmp (outside /workspace, so the model's files never show it), and in the
 * backend (`ShellStateStore`, from a trailer the trap prints after the command's output). A fresh
 * sandbox (a replacement after the old one died) has no file; the backend's copy is sent inline and
 * the shell comes back where it was. Only what a real shell would also keep is saved: the directory,
 * the variables the model exported or unset relative to the sandbox's own environment (so a new
 * sandbox's environment still applies underneath), and shell functions (a virtualenv's `deactivate`).
 * Not kept: plain unexported variables, shell options, aliases, `jobs`.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ensureError } from "../../errors/app-error.js";
import {
  BASH_MAX_OUTPUT_BYTES,
  BASH_MAX_TIMEOUT_MS,
  formatBashResult,
  resolveTimeout,
} from "../bash-tool.js";
import type { Tool, ToolContext, ToolResult } from "../tool.js";
import { success } from "../tool-support.js";
import { defineToolsetTool, toolsetError } from "./toolset-results.js";

/** Where the saved shell state lives in the sandbox (tmpfs, outside /workspace, not snapshotted). */
export const SHELL_STATE_FILE = "/tmp/.outrig-bash-state";
/** Process groups started by earlier calls, killed by `restart`. */
export const SHELL_GROUPS_FILE = "/tmp/.outrig-bash-groups";
/** The saved state the backend keeps at most; a larger one (huge functions) lives in the sandbox's file only. */
export const SHELL_STATE_MAX_CHARS = 64 * 1024;

/**
 * Every variable name, in words bash expands without forking (`$(compgen -e)` would cost a process per
 * call): `${!a@}` lists the names that start with `a`, and so on for each letter a name can start with.
 */
const EVERY_VARIABLE = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"]
  .map((letter) => `\${!${letter}@}`)
  .join(" ");

/** The backend's copy of a session's shell state (the script that restores it). */
export interface ShellStateStore {
  get(): string | undefined | Promise<string | undefined>;
  set(state: string | undefined): void | Promise<void>;
}

/** A store in this process's memory: the state lasts as long as the tool object. */
export function createMemoryShellState(): ShellStateStore {
  let state: string | undefined;
  return {
    get: () => state,
    set: (value) => {
      state = value;
    },
  };
}

export interface ToolsetBashToolOptions {
  /** The backend's copy of the state; defaults to one in memory, per tool object (so per session). */
  readonly state?: ShellStateStore;
}

const inputSchema = z.strictObject({
  command: z.string().optional(),
  restart: z.boolean().optional(),
  timeout_ms: z.number().int().nonnegative().optional(),
});

export type ToolsetBashInput = z.output<typeof inputSchema>;

/** Quotes `text` as one bash ANSI-C string (`$'…'`): no newline survives, so it fits on one line. */
export function ansiCQuote(text: string): string {
  let quoted = "";
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    if (character === "\\") quoted += "\\\\";
    else if (character === "'") quoted += "\\'";
    else if (character === "\n") quoted += "\\n";
    else if (code < 0x20 || code === 0x7f) quoted += `\\x${code.toString(16).padStart(2, "0")}`;
    else quoted += character;
  }
  return `$'${quoted}'`;
}

/**
 * Prints the restore script: the directory, the exported variables changed or unset relative to the
 * sandbox's own (captured before the restore, so only the model's changes are saved), the functions.
 */
const DUMP_SCRIPT = [
  "declare -A __outrig_now=()",
  "builtin printf '__outrig_cwd=%q\\n' \"$PWD\"",
  `for __outrig_n in ${EVERY_VARIABLE}; do`,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  "[[ ${!__outrig_n@a} == *x* ]] || continue",
  "__outrig_now[$__outrig_n]=1",
  "case $__outrig_n in PWD|OLDPWD|SHLVL|_) continue;; esac",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  'if [[ ! -v __outrig_base[$__outrig_n] || ${__outrig_base[$__outrig_n]} != "${!__outrig_n}" ]]; then',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  'builtin printf \'builtin export %s=%q\\n\' "$__outrig_n" "${!__outrig_n}"',
  "fi",
  "done",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
  'for __outrig_n in "${!__outrig_base[@]}"; do',
  "[[ -v __outrig_now[$__outrig_n] ]] || builtin printf 'builtin unset %s\\n' \"$__outrig_n\"",
  "done",
  "builtin declare -f",
].join("\n");

/**
 * Run by the EXIT trap: writes the restore script to the state file, then prints it again between the
 * call's markers for the backend (printed, not read back from the file, so a full /tmp loses only the
 * file's copy).
 */
function saveScript(startMarker: string, endMarker: string): string {
  return [
    "set +e +u +o pipefail 2>/dev/null",
    // stderr first: a file that cannot be opened must not say so in the model's output.
    `{\n${DUMP_SCRIPT}\n} 2>/dev/null > ${SHELL_STATE_FILE}`,
    `builtin printf '\\n%s\\n' '${startMarker}'`,
    DUMP_SCRIPT,
    `builtin printf '%s\\n' '${endMarker}'`,
  ].join("\n");
}

/**
 * The script for one call, all on the first line so bash's `line N` in an error is the model's own line
 * N: remember the sandbox's environment, restore the saved state (the sandbox's file, else the
 * backend's copy), go to the saved directory, arm the trap, run the command.
 */
export function buildShellScript(options: {
  readonly command: string;
  readonly savedState: string | undefined;
  readonly isRestart: boolean;
  readonly startMarker: string;
  readonly endMarker: string;
}): string {
  const restart = options.isRestart
    ? `while IFS= builtin read -r __outrig_n; do [[ $__outrig_n != "$$" ]] && builtin kill -KILL -- "-$__outrig_n"; done 2>/dev/null < ${SHELL_GROUPS_FILE}; command rm -f ${SHELL_STATE_FILE} ${SHELL_GROUPS_FILE}; `
    : "";
  const restore = options.savedState === undefined ? ":" : `builtin eval ${ansiCQuote(options.savedState)}`;
  const prelude =
    `${restart}__outrig_save=${ansiCQuote(saveScript(options.startMarker, options.endMarker))}; ` +
    "declare -A __outrig_base=(); " +
    `for __outrig_n in ${EVERY_VARIABLE}; do ` +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    "[[ ${!__outrig_n@a} == *x* ]] && __outrig_base[$__outrig_n]=${!__outrig_n}; done; " +
    `builtin echo "$$" 2>/dev/null >> ${SHELL_GROUPS_FILE}; ` +
    `if [[ -f ${SHELL_STATE_FILE} && -r ${SHELL_STATE_FILE} ]]; then builtin source ${SHELL_STATE_FILE}; else ${restore}; fi 2>/dev/null; ` +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    'if [[ -n ${__outrig_cwd-} ]]; then builtin cd -- "$__outrig_cwd" 2>/dev/null || ' +
    "builtin printf 'outrig: the shell'\\''s directory %s is gone; it starts in %s\\n' \"$__outrig_cwd\" \"$PWD\" >&2; fi; " +
    "builtin unset __outrig_cwd __outrig_n; " +
    'trap "$__outrig_save" EXIT; ';
  return `${prelude}${options.command}`;
}

/** Splits the state block printed by the trap off stdout; `state` is undefined when it is missing (cut off, killed). */
export function splitShellState(
  stdout: string,
  startMarker: string,
  endMarker: string,
): { stdout: string; state: string | undefined } {
  const start = stdout.lastIndexOf(`\n${startMarker}\n`);
  if (start === -1) return { stdout, state: undefined };
  const bodyStart = start + startMarker.length + 2;
  const end = stdout.indexOf(`${endMarker}\n`, bodyStart);
  if (end === -1) return { stdout, state: undefined };
  return {
    stdout: stdout.slice(0, start) + stdout.slice(end + endMarker.length + 1),
    state: stdout.slice(bodyStart, end),
  };
}

export function createToolsetBashTool(options: ToolsetBashToolOptions = {}): Tool<ToolsetBashInput> {
  const store = options.state ?? createMemoryShellState();
  /** The call running now: calls wait for it (two at once would each restore, then overwrite, the state). */
  let tail: Promise<unknown> = Promise.resolve();

  async function runCall(input: ToolsetBashInput, context: ToolContext): Promise<ToolResult> {
    const isRestart = input.restart === true;
    const command = input.command ?? "";
    if (command.trim() === "" && !isRestart) return toolsetError("bash", "command is required");
    if (isRestart) await store.set(undefined);
    const savedState = isRestart ? undefined : await store.get();
    const timeoutMs = resolveTimeout(input.timeout_ms);
    // From the call's id, not random: a call re-run after a crash gets the result the sandbox recorded
    // for it (same markers), and its trailer must still be recognized. Content a command prints cannot
    // know the id in advance.
    const nonce = createHash("sha256")
      .update(`outrig-shell-state\0${context.toolCallId}`)
      .digest("hex")
      .slice(0, 32);
    const startMarker = `__outrig_shell_state_${nonce}__`;
    const endMarker = `__outrig_shell_state_end_${nonce}__`;
    let result: Awaited<ReturnType<typeof context.exec>>;
    try {
      result = await context.exec(
        {
          command: buildShellScript({
            command: command.trim() === "" ? ":" : command,
            savedState,
            isRestart,
            startMarker,
            endMarker,
          }),
          cwd: context.cwd,
          timeoutMs,
          maxOutputBytes: BASH_MAX_OUTPUT_BYTES,
        },
        context.signal,
      );
    } catch (error) {
      return toolsetError("bash", `the command could not be run: ${ensureError(error).message}`);
    }
    const { stdout, state } = splitShellState(result.stdout, startMarker, endMarker);
    // A state too large to send back inline stays in the sandbox's file only; a stale copy must not linger.
    if (state !== undefined) await store.set(state.length <= SHELL_STATE_MAX_CHARS ? state : undefined);
    if (command.trim() === "" && isRestart && result.exitCode === 0 && stdout.trim() === "")
      return success("bash session restarted");
    return formatBashResult({ ...result, stdout }, timeoutMs);
  }

  return defineToolsetTool({
    name: "bash",
    description:
      "Runs a bash command in a persistent shell in the session's sandbox: the working directory, exported " +
      "variables and shell functions carry over between calls (the first call starts in /workspace). " +
      "restart: true starts a fresh shell (back in /workspace, without the old variables, and with its " +
      "background processes killed), then runs command if one is given. timeout_ms is per call (default " +
      `120000, max ${BASH_MAX_TIMEOUT_MS}); a command that times out is killed and leaves the shell as it was ` +
      "before it. Returns stdout and stderr; a non-zero exit is reported as `Exit code N` and marks the result " +
      "as an error. Output longer than 30000 characters is cut.",
    inputSchema,
    isOutputError: false,
    run(input, context): Promise<ToolResult> {
      const call = tail.then(() => runCall(input, context));
      tail = call.catch(() => undefined);
      return call;
    },
  });
}
