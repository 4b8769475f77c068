/** `outrig envs ls|create|get|archive|delete`: the Environments API (cloud: Outrig's own sandboxes). */
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

type Environment = Anthropic.Beta.Environments.BetaEnvironment;

export const ENVS_USAGE = `usage: outrig envs <subcommand> [options]

  ls [--archived] [--limit N] [--json]         the org's environments
  create --name NAME [--description TEXT] [--networking limited|unrestricted] [--allow-host HOST]...
         [--package MANAGER:NAME]... [--metadata key=value]... [--body FILE|-] [--json]
                                               a cloud environment (Outrig sandboxes); --allow-host
                                               implies limited networking (the egress allowlist);
                                               --package apt:curl, pip:requests, npm:…
  get ENV_ID [--json]                          one environment
  archive ENV_ID                               archive it (new sessions can no longer use it)
  delete ENV_ID                                delete it

Run \`outrig envs <subcommand> --help\` for one subcommand.`;

const PACKAGE_MANAGERS = ["apt", "cargo", "gem", "go", "npm", "pip"] as const;

function networkingOf(
  mode: string | undefined,
  hosts: readonly string[],
): Anthropic.Beta.Environments.BetaCloudConfigParams["networking"] | undefined {
  if (mode === undefined && hosts.length === 0) return undefined;
  if (mode === "unrestricted") {
    if (hosts.length > 0) throw new UsageError("--allow-host needs limited networking, not unrestricted");
    return { type: "unrestricted" };
  }
  if (mode !== undefined && mode !== "limited")
    throw new UsageError(`--networking is limited or unrestricted, not "${mode}"`);
  return { type: "limited", allowed_hosts: [...hosts] };
}

function packagesOf(specs: readonly string[]): Anthropic.Beta.Environments.BetaPackagesParams | undefined {
  if (specs.length === 0) return undefined;
  const packages: Record<string, string[]> = {};
  for (const spec of specs) {
    const colon = spec.indexOf(":");
    const manager = spec.slice(0, colon);
    if (colon <= 0 || !(PACKAGE_MANAGERS as readonly string[]).includes(manager) || colon === spec.length - 1)
      throw new UsageError(`--package expects MANAGER:NAME (${PACKAGE_MANAGERS.join(", ")}), not "${spec}"`);
    packages[manager] = [...(packages[manager] ?? []), spec.slice(colon + 1)];
  }
  return packages;
}

const subcommands: Record<string, Subcommand> = {
  ls: {
    usage: "usage: outrig envs ls [--archived] [--limit N] [--json]",
    options: { archived: { type: "boolean" }, limit: { type: "string" }, json: { type: "boolean" } },
    async run(flags, _positionals, io) {
      const environments = await collect(
        io.client.beta.environments.list(flags.boolean("archived") ? { include_archived: true } : {}),
        parseCount(flags.string("limit"), "--limit"),
      );
      printRows<Environment>(io, environments, flags.boolean("json"), [
        ["id", (environment) => environment.id],
        ["name", (environment) => environment.name],
        ["type", (environment) => environment.config.type],
        [
          "networking",
          (environment) =>
            environment.config.type === "cloud"
              ? environment.config.networking.type === "limited"
                ? `limited (${environment.config.networking.allowed_hosts.join(", ") || "no hosts"})`
                : environment.config.networking.type
              : "-",
        ],
        ["archived", (environment) => environment.archived_at ?? "-"],
      ]);
      return 0;
    },
  },
  create: {
    usage:
      "usage: outrig envs create --name NAME [--description TEXT] [--networking limited|unrestricted]\n" +
      "                          [--allow-host HOST]... [--package MANAGER:NAME]... [--metadata key=value]...\n" +
      "                          [--body FILE|-] [--json]",
    options: {
      name: { type: "string" },
      description: { type: "string" },
      networking: { type: "string" },
      "allow-host": { type: "string", multiple: true },
      package: { type: "string", multiple: true },
      metadata: { type: "string", multiple: true },
      body: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, _positionals, io) {
      const body = flags.string("body") ? await readJsonBody(flags.string("body") ?? "-", io.stdin) : {};
      const name = flags.string("name") ?? body.name;
      if (!name) throw new UsageError(`--name is required\n\n${this.usage}`);
      const networking = networkingOf(flags.string("networking"), flags.list("allow-host"));
      const packages = packagesOf(flags.list("package"));
      const metadata = parseMetadata(flags.list("metadata"));
      const environment = await io.client.beta.environments.create({
        ...body,
        name: name as string,
        ...(networking || packages || !body.config
          ? {
              config: {
                type: "cloud",
                ...(networking ? { networking } : {}),
                ...(packages ? { packages } : {}),
              },
            }
          : {}),
        ...(flags.string("description") !== undefined ? { description: flags.string("description") } : {}),
        ...(metadata ? { metadata } : {}),
      } as Anthropic.Beta.Environments.EnvironmentCreateParams);
      printResource(io, environment, flags.boolean("json"));
      return 0;
    },
  },
  get: {
    usage: "usage: outrig envs get ENV_ID [--json]",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const environment = await io.client.beta.environments.retrieve(
        requireId(positionals, "environment id", this.usage),
      );
      printResource(io, environment, flags.boolean("json"));
      return 0;
    },
  },
  archive: {
    usage: "usage: outrig envs archive ENV_ID [--json]",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const environment = await io.client.beta.environments.archive(
        requireId(positionals, "environment id", this.usage),
      );
      if (flags.boolean("json")) printResource(io, environment, true);
      else io.out(`archived ${environment.id} at ${environment.archived_at}\n`);
      return 0;
    },
  },
  delete: {
    usage: "usage: outrig envs delete ENV_ID",
    options: {},
    async run(_flags, positionals, io) {
      const deleted = await io.client.beta.environments.delete(
        requireId(positionals, "environment id", this.usage),
      );
      io.out(`deleted ${deleted.id}\n`);
      return 0;
    },
  },
};

export function envsCommand(argv: readonly string[], io: ResourceCommandIo): Promise<number> {
  return runSubcommand(argv, ENVS_USAGE, subcommands, io);
}
