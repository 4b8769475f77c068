/**
 * What the resource commands (`outrig agents|envs|sessions|events …`) share: argument parsing with a
 * help text, JSON bodies from a file or stdin, `key=value` metadata, and printing one resource or a list.
 */
import fs from "node:fs/promises";
import { type ParseArgsConfig, parseArgs } from "node:util";
import type Anthropic from "@anthropic-ai/sdk";
import { readAll } from "./api-call.js";

/** What a resource command needs: an SDK client for the server, and where to write. */
export interface ResourceCommandIo {
  readonly client: Anthropic;
  readonly stdin: NodeJS.ReadableStream;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** A usage error: main prints its message with the command's help and exits 1. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parsed flags, read through the typed accessors below. */
export class Flags {
  constructor(private readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>) {}
  string(name: string): string | undefined {
    const value = this.values[name];
    return typeof value === "string" ? value : undefined;
  }
  boolean(name: string): boolean {
    return this.values[name] === true;
  }
  list(name: string): string[] {
    const value = this.values[name];
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
  }
}

/** Parses a subcommand's arguments, or answers "help" for `--help` / `-h`. */
export function parseCommand(
  argv: readonly string[],
  options: Options,
  usage: string,
): { flags: Flags; positionals: string[] } | "help" {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${usage}`);
  }
  if (parsed.values.help === true) return "help";
  return { flags: new Flags(parsed.values), positionals: parsed.positionals };
}

/** The one positional id a subcommand takes (`outrig agents get <id>`). */
export function requireId(positionals: readonly string[], what: string, usage: string): string {
  const [id, ...extra] = positionals;
  if (!id || extra.length > 0) throw new UsageError(`expected one ${what}\n\n${usage}`);
  return id;
}

/** Reads a JSON object from a file path or `-` (stdin). */
export async function readJsonBody(
  source: string,
  stdin: NodeJS.ReadableStream,
): Promise<Record<string, unknown>> {
  const text = source === "-" ? (await readAll(stdin)).toString("utf8") : await fs.readFile(source, "utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--body ${source}: not JSON (${(error as Error).message})`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new UsageError(`--body ${source}: expected a JSON object`);
  return body as Record<string, unknown>;
}

/** `--metadata key=value` flags as the API's metadata object. */
export function parseMetadata(pairs: readonly string[] | undefined): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new UsageError(`--metadata expects key=value, not "${pair}"`);
    metadata[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return metadata;
}

/** A positive integer flag (`--limit 20`, `--version 3`). */
export function parseCount(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0)
    throw new UsageError(`${flag} expects a whole number, not "${value}"`);
  return number;
}

/** Prints one resource: JSON with `--json`, else its fields one per line. */
export function printResource(io: ResourceCommandIo, resource: object, json: boolean): void {
  if (json) {
    io.out(`${JSON.stringify(resource, null, 2)}\n`);
    return;
  }
  for (const [key, value] of Object.entries(resource)) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    io.out(`${key.padEnd(16)} ${text}\n`);
  }
}

/** Prints a list: JSON lines with `--json`, else one row per item from `columns`. */
export function printRows<T>(
  io: ResourceCommandIo,
  items: readonly T[],
  json: boolean,
  columns: readonly [string, (item: T) => string][],
): void {
  if (json) {
    for (const item of items) io.out(`${JSON.stringify(item)}\n`);
    return;
  }
  if (items.length === 0) {
    io.out("(none)\n");
    return;
  }
  const cells = items.map((item) => columns.map(([, pick]) => pick(item)));
  const widths = columns.map(([title], index) =>
    Math.max(title.length, ...cells.map((row) => (row[index] ?? "").length)),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
      .join("  ")
      .trimEnd();
  io.out(`${line(columns.map(([title]) => title.toUpperCase()))}\n`);
  for (const row of cells) io.out(`${line(row)}\n`);
}

/** Collects up to `limit` items of an SDK list, following its pages. */
export async function collect<T>(list: AsyncIterable<T>, limit: number | undefined): Promise<T[]> {
  const items: T[] = [];
  for await (const item of list) {
    items.push(item);
    if (limit !== undefined && items.length >= limit) break;
  }
  return items;
}

/** One subcommand of a resource command: its help text, flags and what it does. */
export interface Subcommand {
  readonly usage: string;
  readonly options: Options;
  run(flags: Flags, positionals: string[], io: ResourceCommandIo): Promise<number | undefined>;
}

/**
 * Runs `outrig <resource> <subcommand> …`: prints the resource's help for `--help` or no subcommand,
 * the subcommand's for `<subcommand> --help`. Usage errors throw `UsageError`; API errors propagate.
 */
export async function runSubcommand(
  argv: readonly string[],
  usage: string,
  subcommands: Readonly<Record<string, Subcommand>>,
  io: ResourceCommandIo,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(`${usage}\n`);
    return name === undefined ? 1 : 0;
  }
  const subcommand = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
  if (!subcommand) throw new UsageError(`unknown subcommand "${name}"\n\n${usage}`);
  const parsed = parseCommand(rest, subcommand.options, subcommand.usage);
  if (parsed === "help") {
    io.out(`${subcommand.usage}\n`);
    return 0;
  }
  return (await subcommand.run(parsed.flags, parsed.positionals, io)) ?? 0;
}
