/**
 * `--help` for the commands that parse their own arguments (the resource commands print theirs through
 * command-kit), `outrig --version`, and which argument lists ask for help.
 */
import { readFileSync } from "node:fs";
import { AUDIT_USAGE } from "./audit-command.js";
import { EGRESS_USAGE } from "./egress-command.js";
import { FILES_USAGE } from "./files-command.js";
import { IMAGE_USAGE } from "./image-command.js";
import { KEYS_USAGE } from "./keys-command.js";
import { SKILLS_USAGE } from "./skills-command.js";
import { VAULTS_USAGE } from "./vaults-command.js";

export const SERVE_USAGE = `usage: outrig serve [--port N] [--worker-id ID]

Starts the server: the API on 127.0.0.1:$OUTRIG_PORT (7070), embedded Postgres in $OUTRIG_HOME/postgres
unless DATABASE_URL is set. The first start creates the org "default", an admin and a key saved in
$OUTRIG_HOME/credentials.json.
  --port       the port (0: any free one; the URL is printed)
  --worker-id  this worker's id when several share one DATABASE_URL`;

export const WHOAMI_USAGE = `usage: outrig whoami

Prints the org, user and role of the key in use ($OUTRIG_API_KEY, else the one the server saved).`;

export const FAKE_LLM_USAGE = `usage: outrig fake-llm --script turns.json [--port 7071] [--host 127.0.0.1] [--by-history]

Serves scripted Anthropic / OpenAI responses for tests and demos.
  --script      the turns: {"turns": [{"text": …} | {"toolCalls": [{"name", "input"}]}]}
  --port        the port (default 7071)
  --host        the address (default 127.0.0.1)
  --by-history  answer by conversation position (concurrent sessions, retried calls)`;

/** Help of the commands main parses itself, by command name. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  serve: SERVE_USAGE,
  whoami: WHOAMI_USAGE,
  keys: KEYS_USAGE,
  skills: `${SKILLS_USAGE}\n  --server URL  the server (default $OUTRIG_SERVER, else the saved one)`,
  files: FILES_USAGE,
  audit: AUDIT_USAGE,
  vaults: VAULTS_USAGE,
  egress: EGRESS_USAGE,
  image: `${IMAGE_USAGE}\n  --out DIR     where the root filesystem goes (default $OUTRIG_HOME/images/default)\n  --mirror URL  the Debian mirror`,
  "fake-llm": FAKE_LLM_USAGE,
};

/** True when the arguments ask for help (`--help`, `-h`, or `help` first). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv[0] === "help" || argv.includes("--help") || argv.includes("-h");
}

/** The CLI's version, from its package.json (one level above src/ and dist/). */
export function cliVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  return String((JSON.parse(text) as { version?: unknown }).version ?? "unknown");
}
