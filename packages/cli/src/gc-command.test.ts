/**
 * `outrig gc` on a scratch temp dir and shared dir: stale temp dirs of killed processes and Postgres
 * binaries of other versions go; fresh temp dirs, the installed version's binaries and (unless asked)
 * old clusters stay; --dry-run removes nothing.
 */
import { mkdir, mkdtemp, readdir, rm, utimes } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { resolvePostgresBinaries } from "@outrig/storage";
import { afterAll, beforeAll, expect, it } from "vitest";
import { gcCommand } from "./gc-command.js";

let scratch: string;
let tmpDir: string;
let sharedDir: string;
let currentBinaries: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "outrig-gc-"));
  tmpDir = path.join(scratch, "tmp");
  sharedDir = path.join(scratch, "shared");
  const hourAndMore = new Date(Date.now() - 2 * 60 * 60 * 1000);
  for (const name of ["outrig-snapshot-old", "outrig-initdb-old", "outrig-snapshot-fresh", "unrelated-old"]) {
    await mkdir(path.join(tmpDir, name), { recursive: true });
    if (name.endsWith("-old")) await utimes(path.join(tmpDir, name), hourAndMore, hourAndMore);
  }
  currentBinaries = `postgres-${(await resolvePostgresBinaries(null)).version}-linux-x64`;
  for (const name of [currentBinaries, "postgres-17.2.0-beta.14-linux-x64", "cluster-0123456789abcdef"])
    await mkdir(path.join(sharedDir, name), { recursive: true });
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function gc(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await gcCommand(argv, {
    home: path.join(scratch, "home"),
    tmpDir,
    sharedDir,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

it("removes stale leftovers, keeps what is in use, and touches clusters only when asked", async () => {
  const dry = await gc(["--dry-run"]);
  expect(dry.code).toBe(0);
  expect(dry.out).toContain(`would remove ${path.join(tmpDir, "outrig-snapshot-old")}`);
  expect((await readdir(tmpDir)).sort()).toHaveLength(4);

  const run = await gc([]);
  expect(run.code).toBe(0);
  expect((await readdir(tmpDir)).sort()).toEqual(["outrig-snapshot-fresh", "unrelated-old"]);
  expect((await readdir(sharedDir)).sort()).toEqual(["cluster-0123456789abcdef", currentBinaries].sort());
  expect(run.err).toContain("cluster-0123456789abcdef");

  const clusters = await gc(["--legacy-clusters"]);
  expect(clusters.out).toContain(`removed ${path.join(sharedDir, "cluster-0123456789abcdef")}`);
  expect(await readdir(sharedDir)).toEqual([currentBinaries]);
});
