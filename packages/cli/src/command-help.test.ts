/**
 * Every command answers `--help` with its usage and options and exits 0: the test walks the commands the
 * top-level help lists, and each subcommand the resource commands list, through `main` itself.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "./main.js";

let home: string;
const previousHome = process.env.OUTRIG_HOME;

beforeAll(async () => {
  // No saved key and no server: help must need neither.
  home = await mkdtemp(path.join(os.tmpdir(), "outrig-help-"));
  process.env.OUTRIG_HOME = home;
});
afterAll(async () => {
  if (previousHome === undefined) delete process.env.OUTRIG_HOME;
  else process.env.OUTRIG_HOME = previousHome;
  await rm(home, { recursive: true, force: true });
});

/** Runs main and returns its exit code and everything it printed to stdout. */
async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const log = vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => {
    out += `${parts.join(" ")}\n`;
  });
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    return { code: await main(argv), out };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}

/** The command names a usage text lists: the first word of each line indented by two spaces. */
function listedCommands(usage: string, section: RegExp): string[] {
  const names = new Set<string>();
  for (const line of usage.split("\n")) {
    const match = section.exec(line);
    if (match?.[1]) for (const name of match[1].split("|")) names.add(name);
  }
  return [...names];
}

describe("--help", () => {
  it("answers on every command with its usage, and exits 0", async () => {
    const top = await capture(["--help"]);
    expect(top.code).toBe(0);
    const commands = listedCommands(top.out.split("\nenvironment:")[0] ?? "", /^ {2}([a-z][a-z|-]*)(?: |$)/);
    // Everything the issue names, and nothing lost from before.
    for (const name of ["serve", "run", "agents", "envs", "sessions", "events", "approve", "deny", "cancel"])
      expect(commands).toContain(name);
    for (const name of [
      "whoami",
      "keys",
      "skills",
      "files",
      "audit",
      "vaults",
      "egress",
      "image",
      "fake-llm",
    ])
      expect(commands).toContain(name);
    expect(commands).toEqual(expect.arrayContaining(["wait", "gc"]));

    for (const command of commands) {
      for (const flag of ["--help", "-h"]) {
        const result = await capture([command, flag]);
        expect(result.code, `outrig ${command} ${flag}`).toBe(0);
        expect(result.out, `outrig ${command} ${flag}`).toContain(`usage: outrig ${command}`);
      }
    }
  });

  it("answers on every subcommand of the resource commands, listing its options", async () => {
    for (const command of ["agents", "envs", "sessions", "events"]) {
      const usage = (await capture([command, "--help"])).out;
      const subcommands = listedCommands(usage, /^ {2}([a-z][a-z|-]*) /);
      expect(subcommands.length, command).toBeGreaterThan(2);
      for (const subcommand of subcommands) {
        const result = await capture([command, subcommand, "--help"]);
        expect(result.code, `outrig ${command} ${subcommand} --help`).toBe(0);
        expect(result.out).toContain(`usage: outrig ${command} ${subcommand}`);
      }
    }
    const logs = await capture(["sessions", "logs", "--help"]);
    expect(logs.out).toContain("--follow");
    const deny = await capture(["deny", "--help"]);
    expect(deny.out).toContain("--message");
    const run = await capture(["run", "--help"]);
    expect(run.out).toContain("--session");
    expect(run.out).toContain("--model");
  });

  it("prints the version", async () => {
    const { code, out } = await capture(["--version"]);
    expect(code).toBe(0);
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
