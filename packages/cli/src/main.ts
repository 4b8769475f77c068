/**
 * The `outrig` command line: serve, run, the Managed Agents resources (agents, envs, sessions, events),
 * keys, fake-llm. Every client command speaks the HTTP API; the API's own resources go through the
 * official SDK. `serve`, `keys create`, `image` and `fake-llm` work locally.
 */
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadFakeLlmScript, startFakeLlmServer } from "@outrig/models";
import { loadConfig, loadCredentials, startServer } from "@outrig/server";
import { agentsCommand } from "./agents-command.js";
import { createApiClient, describeApiError } from "./api-client.js";
import { auditCommand } from "./audit-command.js";
import { COMMAND_HELP, cliVersion, wantsHelp } from "./command-help.js";
import { type ResourceCommandIo, UsageError } from "./command-kit.js";
import { egressCommand } from "./egress-command.js";
import { envsCommand } from "./envs-command.js";
import { eventsCommand } from "./events-command.js";
import { filesCommand } from "./files-command.js";
import { gcCommand } from "./gc-command.js";
import { imageCommand } from "./image-command.js";
import { KEYS_USAGE, keysApiCommand, keysCreateCommand, parseRole, whoamiCommand } from "./keys-command.js";
import { runCommand } from "./run-command.js";
import { cancelCommand, confirmCommand } from "./session-actions-command.js";
import { sessionsCommand } from "./sessions-command.js";
import { skillsCommand } from "./skills-command.js";
import { watchStepTimings } from "./step-timings-dump.js";
import { vaultsCommand } from "./vaults-command.js";
import { waitCommand } from "./wait-command.js";

const USAGE = `usage: outrig <command> [options]

commands:
  serve [--port N] [--worker-id ID]        start the server (embedded Postgres unless DATABASE_URL is set)
  run "<prompt>" [--model provider:model] [--server URL] [--session ID] [--system TEXT] [--json]
                                           run an agent: the default agent for the model (and system
                                           prompt) and the default cloud environment, a new session
                                           (or --session), the prompt as a user.message, the session's
                                           events live until it is idle; --session without a prompt
                                           reattaches to its running turn
  wait [--server URL] [--timeout SECONDS]  wait until the server is ready (for scripts: npm start & …)
  gc [--dry-run] [--legacy-clusters]       remove what older versions and killed runs left outside
                                           OUTRIG_HOME (temp dirs, old Postgres binaries)
  agents ls|create|get|update|archive|versions
                                           agents (versioned: model, system prompt, tools)
  envs ls|create|get|archive|delete        environments (cloud: Outrig sandboxes, egress allowlist)
  sessions ls|create|get|show|logs|archive|delete
                                           sessions (an agent version running in an environment);
                                           show: what it waits for, logs [--follow]: what happened
  approve|deny SESSION_ID [TOOL_USE_ID]    answer the tool call waiting for a confirmation
  cancel SESSION_ID                        interrupt the running turn
  events ls|send|stream SESSION_ID         a session's events: list, send (message, interrupt, tool
                                           confirmation, custom tool result), follow live
                                           (\`outrig <command> --help\` for each one's options)
  keys create [--org NAME] [--user NAME] [--role R] [--name NAME]
                                           create an API key straight in the database (operator; creates
                                           the org and user; role admin, member or viewer, default member,
                                           admin for an org's first user)
  keys ls [--user USER_ID] | new [--user NAME] [--role R] [--name N] | revoke KEY_ID
                                           your keys over the API (admins: any user's, new users, roles)
  whoami                                   the org, user and role of the key in use
  skills add <folder> [--server URL]      upload an Agent Skill (SKILL.md + files) to the Skills API (admins)
  skills list | rm <skill_id>             the org's skills (Skills API)
  files ls|cat|history|rm <path>          the versioned file store: /skills (read-only), /memories/org, /memories/me
  files put <path> <file or ->            write a memory file (a new version)
  audit ls [--kind K] [--limit N] [--after SEQ] [--session ID] [--json]
                                           the org's audit log (admins)
  audit verify [--json]                    check the audit hash chain; exit 1 when tampered with
  vaults ls | new NAME [--org] | archive|rm VAULT_ID | creds VAULT_ID
  vaults set VAULT_ID NAME [--host H]... | bearer VAULT_ID MCP_URL | archive-cred|rm-cred VAULT_ID CRED_ID
                                           your (or --org: the org's) vaults and credentials; a value
                                           comes from stdin or a prompt without echo, never from argv
  egress show | set <file|->               the org's egress allowlist and credential rules (set: admins)
  image build [--out DIR] [--mirror URL]  build the sandbox root filesystem (Debian, debootstrap; root)
                                           into OUTRIG_HOME/images/default; the server then uses it
  fake-llm --script turns.json [--port 7071] [--host 127.0.0.1] [--by-history]
                                           serve scripted Anthropic / OpenAI responses for tests
                                           (--by-history: answer by conversation position, for
                                           concurrent sessions and retried calls)
  --version                                the CLI's version

Every command answers --help with its options.

environment: OUTRIG_HOME (default ~/.outrig), OUTRIG_PORT (7070), DATABASE_URL, OUTRIG_API_KEY, OUTRIG_SERVER,
             OUTRIG_MODEL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, OPENAI_API_KEY, OPENAI_BASE_URL`;

const RUN_USAGE = `usage: outrig run "<prompt>" [--model provider:model] [--system TEXT] [--session ID] [--server URL] [--json]
       outrig run --session ID [--json]       reattach: the session's current turn so far, then live

Runs an agent on the prompt and streams what it does until the session is idle.
  --model     the model (default $OUTRIG_MODEL, else anthropic:claude-sonnet-4-5); outrig run keeps one
              agent per model and system prompt (metadata outrig_run) with the agent toolset
  --system    the agent's system prompt
  --session   continue this session (its agent and environment) instead of creating one
  --server    the server (default $OUTRIG_SERVER, else the one \`outrig serve\` saved, else http://127.0.0.1:7070)
  --json      print every event as one JSON line (the API's event objects), nothing else

Exit status: 0 when the session went idle with end_turn, 2 when it waits for an action (a tool
confirmation: it prints the \`outrig approve|deny\` that answers it; or a custom tool result), 1 on an error.`;

const DEFAULT_MODEL = "anthropic:claude-sonnet-4-5";
/** After a fatal error, how long `serve` answers 503 (not ready) before it exits. */
const FATAL_EXIT_GRACE_MS = 1_000;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version" || command === "-V" || command === "version") {
    console.log(cliVersion());
    return 0;
  }
  if (command !== undefined && Object.hasOwn(COMMAND_HELP, command) && wantsHelp(rest)) {
    console.log(COMMAND_HELP[command]);
    return 0;
  }
  try {
    switch (command) {
      case "serve":
        return await serveCommand(rest);
      case "run":
        return await runCli(rest);
      case "agents":
      case "envs":
      case "sessions":
      case "events":
      case "approve":
      case "deny":
      case "cancel":
        return await resourceCli(command, rest);
      case "wait":
        return await waitCommand(rest, {
          defaultServer: async () => (await clientSettings(undefined)).server,
          err: (line) => console.error(line),
        });
      case "gc":
        return await gcCommand(rest, {
          home: outrigHome(),
          out: (line) => console.log(line),
          err: (line) => console.error(line),
        });
      case "keys":
        return await keysCli(rest);
      case "whoami": {
        const { server, apiKey } = await clientSettings(undefined);
        if (!apiKey) {
          console.error("outrig whoami: no API key; set OUTRIG_API_KEY or start the server once");
          return 1;
        }
        await whoamiCommand({ server, apiKey, out: (text) => process.stdout.write(text) });
        return 0;
      }
      case "fake-llm":
        return await fakeLlmCli(rest);
      case "image":
        return await imageCommand(rest, {
          home: outrigHome(),
          out: (line) => console.log(line),
          err: (line) => console.error(line),
        });
      case "skills":
        return await skillsCli(rest);
      case "files": {
        const { server, apiKey } = await clientSettings(undefined);
        if (!apiKey) {
          console.error("outrig files: no API key; set OUTRIG_API_KEY or start the server once");
          return 1;
        }
        await filesCommand(rest, { server, apiKey, out: (text) => process.stdout.write(text) });
        return 0;
      }
      case "audit": {
        const { server, apiKey } = await clientSettings(undefined);
        if (!apiKey) {
          console.error("outrig audit: no API key; set OUTRIG_API_KEY or start the server once");
          return 1;
        }
        return await auditCommand(rest, { server, apiKey, out: (text) => process.stdout.write(text) });
      }
      case "vaults":
      case "egress": {
        const { server, apiKey } = await clientSettings(undefined);
        if (!apiKey) {
          console.error(`outrig ${command}: no API key; set OUTRIG_API_KEY or start the server once`);
          return 1;
        }
        const io = {
          server,
          apiKey,
          stdin: process.stdin,
          out: (text: string) => process.stdout.write(text),
        };
        if (command === "vaults")
          await vaultsCommand(rest, { ...io, err: (text) => process.stderr.write(text) });
        else await egressCommand(rest, io);
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        console.error(`outrig: unknown command "${command}"\n\n${USAGE}`);
        return 1;
    }
  } catch (error) {
    console.error(`outrig: ${(error as Error).message}`);
    return 1;
  }
}

const RESOURCE_COMMANDS = {
  agents: agentsCommand,
  envs: envsCommand,
  sessions: sessionsCommand,
  events: eventsCommand,
  approve: confirmCommand("allow"),
  deny: confirmCommand("deny"),
  cancel: cancelCommand,
} as const;

/** `outrig agents|envs|sessions|events …` through the SDK; API errors as one line, never a stack. */
async function resourceCli(
  command: keyof typeof RESOURCE_COMMANDS,
  argv: readonly string[],
): Promise<number> {
  const wantsHelp = argv.length === 0 || argv.includes("--help") || argv.includes("-h") || argv[0] === "help";
  const { server, apiKey } = await clientSettings(undefined);
  if (!apiKey && !wantsHelp) {
    console.error(`outrig ${command}: no API key; set OUTRIG_API_KEY or start the server once`);
    return 1;
  }
  const io: ResourceCommandIo = {
    client: createApiClient({ server, apiKey: apiKey ?? "" }),
    stdin: process.stdin,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  };
  try {
    return await RESOURCE_COMMANDS[command](argv, io);
  } catch (error) {
    if (error instanceof UsageError) console.error(`outrig ${command}: ${error.message}`);
    else console.error(`outrig ${command}: ${describeApiError(error, server)}`);
    return 1;
  }
}

async function serveCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { port: { type: "string" }, "worker-id": { type: "string" } },
    strict: true,
  });
  const env = {
    ...process.env,
    ...(values.port ? { OUTRIG_PORT: values.port } : {}),
    ...(values["worker-id"] ? { OUTRIG_WORKER_ID: values["worker-id"] } : {}),
  };
  const config = loadConfig(env);
  watchStepTimings(env, (message) => console.error(`outrig: ${message}`));
  let fatal: (message: string) => void = () => undefined;
  const stopped = new Promise<"signal" | "fatal">((resolve) => {
    const stop = () => resolve("signal");
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    fatal = () => resolve("fatal");
  });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, { onFatal: (message) => fatal(message) });
  } catch (error) {
    // Whatever the start left open (pools, timers) must not keep a failed server alive.
    console.error(`outrig: ${(error as Error).message}`);
    process.exit(1);
  }
  if ((await stopped) === "fatal") {
    // Not ready (503) for a moment first, so a balancer stops sending before the port goes away.
    // Then like a crash: running sandboxes finish their calls; a supervisor restarts the server.
    await new Promise((resolve) => setTimeout(resolve, FATAL_EXIT_GRACE_MS));
    console.error("[outrig] exiting: a dependency the server cannot run without is gone");
    process.exit(1);
  }
  console.error(
    `[outrig] shutting down: no new work; waiting up to ${config.drainMs} ms for running tool calls (Ctrl-C again to stop now)`,
  );
  const again = () => {
    console.error("[outrig] stopping now; running tool calls finish in their sandboxes");
    process.exit(1);
  };
  process.once("SIGINT", again);
  process.once("SIGTERM", again);
  await server.close();
  // Nothing left may keep the process (and sandboxes waiting for its pipes to close) alive.
  process.exit(0);
}

async function runCli(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      model: { type: "string" },
      server: { type: "string" },
      session: { type: "string" },
      system: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(RUN_USAGE);
    return 0;
  }
  const prompt = positionals.join(" ").trim();
  if (!prompt && !values.session) {
    console.error('outrig run: a prompt is required, e.g. outrig run "fix the failing test in /workspace"');
    return 1;
  }
  const home = outrigHome();
  const saved = await loadCredentials(home);
  const apiKey = process.env.OUTRIG_API_KEY ?? saved?.apiKey;
  if (!apiKey) {
    console.error(
      `outrig run: no API key; set OUTRIG_API_KEY or start the server once (it saves one in ${home})`,
    );
    return 1;
  }
  const server = (
    values.server ??
    process.env.OUTRIG_SERVER ??
    saved?.server ??
    "http://127.0.0.1:7070"
  ).replace(/\/+$/, "");
  return runCommand({
    client: createApiClient({ server, apiKey }),
    prompt,
    model: values.model ?? process.env.OUTRIG_MODEL ?? DEFAULT_MODEL,
    server,
    json: values.json ?? false,
    ...(values.system ? { system: values.system } : {}),
    ...(values.session ? { sessionId: values.session } : {}),
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(`${text}\n`),
  });
}

async function keysCli(argv: readonly string[]): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === "ls" || subcommand === "new" || subcommand === "revoke") {
    const { server, apiKey } = await clientSettings(undefined);
    if (!apiKey) {
      console.error("outrig keys: no API key; set OUTRIG_API_KEY or start the server once");
      return 1;
    }
    await keysApiCommand(argv, { server, apiKey, out: (text) => process.stdout.write(text) });
    return 0;
  }
  if (subcommand !== "create") {
    console.error(KEYS_USAGE);
    return 1;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      org: { type: "string" },
      user: { type: "string" },
      name: { type: "string" },
      role: { type: "string" },
    },
    strict: true,
  });
  const role = parseRole(values.role);
  const config = loadConfig(process.env);
  const created = await keysCreateCommand({
    home: config.home,
    databaseUrl: config.databaseUrl,
    org: values.org ?? "default",
    user: values.user ?? "admin",
    name: values.name ?? "cli",
    ...(role ? { role } : {}),
  });
  console.log(created.key);
  console.error(
    `[outrig] key for ${values.user ?? "admin"} (${created.role}) in org ${values.org ?? "default"}`,
  );
  return 0;
}

async function skillsCli(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { server: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const { server, apiKey } = await clientSettings(values.server);
  if (!apiKey) {
    console.error("outrig skills: no API key; set OUTRIG_API_KEY or start the server once");
    return 1;
  }
  await skillsCommand(positionals, { server, apiKey, out: (line) => console.log(line) });
  return 0;
}

/** Server URL and API key for client commands: flags, then environment, then saved credentials. */
async function clientSettings(
  serverFlag: string | undefined,
): Promise<{ server: string; apiKey: string | undefined }> {
  const saved = await loadCredentials(outrigHome());
  const server = (
    serverFlag ??
    process.env.OUTRIG_SERVER ??
    saved?.server ??
    "http://127.0.0.1:7070"
  ).replace(/\/+$/, "");
  return { server, apiKey: process.env.OUTRIG_API_KEY ?? saved?.apiKey };
}

async function fakeLlmCli(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: "string", default: "7071" },
      host: { type: "string" },
      script: { type: "string" },
      "by-history": { type: "boolean", default: false },
    },
    strict: true,
  });
  if (!values.script) {
    console.error("outrig fake-llm: --script turns.json is required");
    return 1;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`outrig fake-llm: invalid --port ${values.port}`);
    return 1;
  }
  const script = await loadFakeLlmScript(values.script);
  const server = await startFakeLlmServer({
    port,
    ...(values.host ? { host: values.host } : {}),
    script,
    turnSelection: values["by-history"] ? "history" : "sequential",
  });
  console.error(`[fake-llm] ${script.turns.length} scripted turns; listening on ${server.url}`);
  console.log(server.url);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await server.close();
  return 0;
}

function outrigHome(): string {
  const value = process.env.OUTRIG_HOME?.trim();
  return path.resolve(value ? value : path.join(os.homedir(), ".outrig"));
}
