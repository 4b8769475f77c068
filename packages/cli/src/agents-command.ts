/** `outrig agents ls|create|get|update|archive|versions`: the Agents API through the SDK. */
import type Anthropic from "@anthropic-ai/sdk";
import {
  collect,
  parseCount,
  parseMetadata,
  printResource,
  printRows,
  type ResourceCommandIo,
  readJsonBody,
  requireId,
  runSubcommand,
  type Subcommand,
  UsageError,
} from "./command-kit.js";

type Agent = Anthropic.Beta.Agents.BetaManagedAgentsAgent;

export const AGENTS_USAGE = `usage: outrig agents <subcommand> [options]

  ls [--archived] [--limit N] [--json]         the org's agents (latest versions)
  create --name NAME --model MODEL [--system TEXT] [--description TEXT] [--no-tools]
         [--metadata key=value]... [--body FILE|-] [--json]
                                               a new agent (version 1) with the agent toolset unless
                                               --no-tools; --body sends a whole AgentCreateParams JSON
  get AGENT_ID [--version N] [--json]          one agent (its latest version, or version N)
  update AGENT_ID --version N [--name NAME] [--model MODEL] [--system TEXT] [--description TEXT]
         [--metadata key=value]... [--body FILE|-] [--json]
                                               a new version; --version is the one you are updating
                                               (a stale version is a 409 conflict)
  archive AGENT_ID                             archive the agent (new sessions can no longer use it)
  versions AGENT_ID [--limit N] [--json]       every version of the agent

Run \`outrig agents <subcommand> --help\` for one subcommand.`;

const columns: [string, (agent: Agent) => string][] = [
  ["id", (agent) => agent.id],
  ["version", (agent) => String(agent.version)],
  ["name", (agent) => agent.name],
  ["model", (agent) => agent.model.id],
  ["archived", (agent) => (agent.archived_at ? agent.archived_at : "-")],
];

const AGENT_TOOLSET = [{ type: "agent_toolset_20260401" as const }];

const subcommands: Record<string, Subcommand> = {
  ls: {
    usage: "usage: outrig agents ls [--archived] [--limit N] [--json]",
    options: { archived: { type: "boolean" }, limit: { type: "string" }, json: { type: "boolean" } },
    async run(flags, _positionals, io) {
      const agents = await collect(
        io.client.beta.agents.list(flags.boolean("archived") ? { include_archived: true } : {}),
        parseCount(flags.string("limit"), "--limit"),
      );
      printRows(io, agents, flags.boolean("json"), columns);
      return 0;
    },
  },
  create: {
    usage:
      "usage: outrig agents create --name NAME --model MODEL [--system TEXT] [--description TEXT] [--no-tools]\n" +
      "                            [--metadata key=value]... [--body FILE|-] [--json]",
    options: {
      name: { type: "string" },
      model: { type: "string" },
      system: { type: "string" },
      description: { type: "string" },
      "no-tools": { type: "boolean" },
      metadata: { type: "string", multiple: true },
      body: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, _positionals, io) {
      const body = flags.string("body") ? await readJsonBody(flags.string("body") ?? "-", io.stdin) : {};
      const name = flags.string("name") ?? body.name;
      const model = flags.string("model") ?? body.model;
      if (!name || !model) throw new UsageError(`--name and --model are required\n\n${this.usage}`);
      const metadata = parseMetadata(flags.list("metadata"));
      const agent = await io.client.beta.agents.create({
        ...(flags.boolean("no-tools") || body.tools ? {} : { tools: AGENT_TOOLSET }),
        ...body,
        name: name as string,
        model: model as string,
        ...(flags.string("system") !== undefined ? { system: flags.string("system") } : {}),
        ...(flags.string("description") !== undefined ? { description: flags.string("description") } : {}),
        ...(metadata ? { metadata } : {}),
      } as Anthropic.Beta.Agents.AgentCreateParams);
      printResource(io, agent, flags.boolean("json"));
      return 0;
    },
  },
  get: {
    usage: "usage: outrig agents get AGENT_ID [--version N] [--json]",
    options: { version: { type: "string" }, json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const id = requireId(positionals, "agent id", this.usage);
      const version = parseCount(flags.string("version"), "--version");
      const agent = await io.client.beta.agents.retrieve(id, version === undefined ? {} : { version });
      printResource(io, agent, flags.boolean("json"));
      return 0;
    },
  },
  update: {
    usage:
      "usage: outrig agents update AGENT_ID --version N [--name NAME] [--model MODEL] [--system TEXT]\n" +
      "                            [--description TEXT] [--metadata key=value]... [--body FILE|-] [--json]",
    options: {
      version: { type: "string" },
      name: { type: "string" },
      model: { type: "string" },
      system: { type: "string" },
      description: { type: "string" },
      metadata: { type: "string", multiple: true },
      body: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, positionals, io) {
      const id = requireId(positionals, "agent id", this.usage);
      const body = flags.string("body") ? await readJsonBody(flags.string("body") ?? "-", io.stdin) : {};
      const version = parseCount(flags.string("version"), "--version") ?? body.version;
      if (version === undefined)
        throw new UsageError(`--version (the version you are updating) is required\n\n${this.usage}`);
      const metadata = parseMetadata(flags.list("metadata"));
      const agent = await io.client.beta.agents.update(id, {
        ...body,
        version: version as number,
        ...(flags.string("name") !== undefined ? { name: flags.string("name") } : {}),
        ...(flags.string("model") !== undefined ? { model: flags.string("model") } : {}),
        ...(flags.string("system") !== undefined ? { system: flags.string("system") } : {}),
        ...(flags.string("description") !== undefined ? { description: flags.string("description") } : {}),
        ...(metadata ? { metadata } : {}),
      } as Anthropic.Beta.Agents.AgentUpdateParams);
      printResource(io, agent, flags.boolean("json"));
      return 0;
    },
  },
  archive: {
    usage: "usage: outrig agents archive AGENT_ID [--json]",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const agent = await io.client.beta.agents.archive(requireId(positionals, "agent id", this.usage));
      if (flags.boolean("json")) printResource(io, agent, true);
      else io.out(`archived ${agent.id} (version ${agent.version}) at ${agent.archived_at}\n`);
      return 0;
    },
  },
  versions: {
    usage: "usage: outrig agents versions AGENT_ID [--limit N] [--json]",
    options: { limit: { type: "string" }, json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const id = requireId(positionals, "agent id", this.usage);
      const versions = await collect(
        io.client.beta.agents.versions.list(id),
        parseCount(flags.string("limit"), "--limit"),
      );
      printRows(io, versions, flags.boolean("json"), [
        ["version", (agent) => String(agent.version)],
        ["updated", (agent) => agent.updated_at],
        ["name", (agent) => agent.name],
        ["model", (agent) => agent.model.id],
      ]);
      return 0;
    },
  },
};

export function agentsCommand(argv: readonly string[], io: ResourceCommandIo): Promise<number> {
  return runSubcommand(argv, AGENTS_USAGE, subcommands, io);
}
