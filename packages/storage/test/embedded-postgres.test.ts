import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../src/index.js";

const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url));
const isRoot = process.getuid?.() === 0;

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

function isRunning(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("startEmbeddedPostgres", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A temp OUTRIG_HOME the `postgres` OS user can traverse (mkdtemp makes 0700 dirs). */
  async function home(mode = 0o711): Promise<string> {
    const directory = await mkdtemp(path.join(os.tmpdir(), "outrig-embedded-"));
    await chmod(directory, mode);
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    return directory;
  }

  function track(postgres: EmbeddedPostgres): EmbeddedPostgres {
    cleanups.push(() => postgres.stop());
    return postgres;
  }

  it("initializes, stops and restarts a cluster, keeping its data and password file", async () => {
    const dataDir = path.join(await home(), "postgres");

    let started = performance.now();
    const first = track(await startEmbeddedPostgres({ dataDir }));
    const initMs = performance.now() - started;
    expect(first.isReused).toBe(false);
    expect(first.url).toMatch(/^postgresql:\/\/outrig:[0-9A-Za-z]{32}@127\.0\.0\.1:\d+\/postgres$/);
    await query(first.url, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives restart')");
    await first.stop();
    expect(isRunning(first.pid)).toBe(false);
    await expect(query(first.url, "SELECT 1")).rejects.toThrow(/ECONNREFUSED/);

    started = performance.now();
    const second = track(await startEmbeddedPostgres({ dataDir }));
    const restartMs = performance.now() - started;
    expect(second.isReused).toBe(false);
    expect(second.url).toBe(first.url);
    const { rows } = await query(second.url, "SELECT value FROM kept");
    expect(rows).toEqual([{ value: "survives restart" }]);

    const config = await stat(`${dataDir}.json`);
    expect(config.mode & 0o777).toBe(0o600);
    // Password auth: a wrong password is refused.
    await expect(query(second.url.replace(/:[0-9A-Za-z]{32}@/, ":wrong@"), "SELECT 1")).rejects.toThrow(
      /password authentication failed/,
    );
    console.log(
      `embedded Postgres: first init + start ${initMs.toFixed(0)} ms, restart ${restartMs.toFixed(0)} ms`,
    );
  });

  it("adopts the postmaster left running by a SIGKILLed process", async () => {
    const dataDir = path.join(await home(), "postgres");
    const child = spawn(
      process.execPath,
      [
        path.join(repositoryRoot, "node_modules/vite-node/vite-node.mjs"),
        "--config",
        path.join(repositoryRoot, "vitest.config.ts"),
        fileURLToPath(new URL("./helpers/start-embedded-and-wait.ts", import.meta.url)),
        dataDir,
      ],
      { cwd: repositoryRoot, stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const orphan = JSON.parse(line) as { pid: number; url: string };
    cleanups.push(async () => {
      // If the test failed before adopting, do not leave the orphan running.
      if (isRunning(orphan.pid)) process.kill(orphan.pid, "SIGINT");
    });

    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
    expect(isRunning(orphan.pid)).toBe(true);

    const adopted = track(await startEmbeddedPostgres({ dataDir }));
    expect(adopted).toMatchObject({ isReused: true, pid: orphan.pid, url: orphan.url });
    const { rows } = await query(adopted.url, "SELECT 41 + 1 AS answer");
    expect(rows).toEqual([{ answer: 42 }]);

    await adopted.stop();
    expect(isRunning(orphan.pid)).toBe(false);
  });

  it("starts cleanly over a stale postmaster.pid whose pid is dead or not postgres", async () => {
    const dataDir = path.join(await home(), "postgres");
    const first = track(await startEmbeddedPostgres({ dataDir }));
    await first.stop();
    const dead = spawn(process.execPath, ["-e", ""]);
    await once(dead, "exit");

    for (const stalePid of [dead.pid ?? 999_999, process.pid]) {
      // Same layout Postgres writes; process.pid is alive but is node, not a postmaster.
      await writeFile(
        path.join(first.clusterDir, "postmaster.pid"),
        `${stalePid}\n${first.clusterDir}\n1700000000\n${first.port}\n\n127.0.0.1\n  1234567   7\nready   \n`,
      );
      const restarted = await startEmbeddedPostgres({ dataDir });
      expect(restarted.isReused).toBe(false);
      expect(restarted.pid).not.toBe(stalePid);
      await expect(query(restarted.url, "SELECT 1 AS ok")).resolves.toMatchObject({ rows: [{ ok: 1 }] });
      await restarted.stop();
    }
  });

  it("moves off a taken port and remembers the new one", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ port: 0, host: "127.0.0.1" }, resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const takenPort = (blocker.address() as net.AddressInfo).port;
    const dataDir = path.join(await home(), "postgres");

    const postgres = track(await startEmbeddedPostgres({ dataDir, port: takenPort }));

    expect(postgres.port).not.toBe(takenPort);
    const config = JSON.parse(await readFile(`${dataDir}.json`, "utf8")) as { port: number };
    expect(config.port).toBe(postgres.port);
    await expect(query(postgres.url, "SELECT 1 AS ok")).resolves.toMatchObject({ rows: [{ ok: 1 }] });
  });

  it("starts clusters that race for the same free port (both come up, on different ports)", async () => {
    // Two servers (or test files) starting at once both see the preferred port free; the loser's
    // postmaster exits with "could not create any TCP/IP sockets" and must move to another port.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen({ port: 0, host: "127.0.0.1" }, resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const dataDirs = [path.join(await home(), "postgres"), path.join(await home(), "postgres")];

    const started = await Promise.all(
      dataDirs.map(async (dataDir) => track(await startEmbeddedPostgres({ dataDir, port }))),
    );

    expect(new Set(started.map((postgres) => postgres.port)).size).toBe(2);
    for (const postgres of started) {
      await expect(query(postgres.url, "SELECT 1 AS ok")).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    }
  });

  it("names the broken key of an invalid config file in one line", async () => {
    const dataDir = path.join(await home(), "postgres");
    await writeFile(`${dataDir}.json`, JSON.stringify({ schemaVersion: 1, clusterDir: dataDir, port: "x" }));
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toMatchObject({
      code: "embedded_postgres_config",
      message: `${dataDir}.json is invalid at "port": Invalid input: expected number, received string`,
    });
  });

  it.skipIf(!isRoot)(
    "as root, keeps the cluster in a home the postgres user cannot reach, loosening nothing",
    async () => {
      const privateHome = path.join(await home(0o700), "home");
      await mkdir(privateHome, { mode: 0o700 });
      const dataDir = path.join(privateHome, "postgres");

      const postgres = track(await startEmbeddedPostgres({ dataDir }));

      expect(postgres.clusterDir).toBe(dataDir);
      const config = JSON.parse(await readFile(`${dataDir}.json`, "utf8")) as { clusterDir: string };
      expect(config.clusterDir).toBe(dataDir);
      // The home stays private; the cluster is the postgres user's own, as Postgres requires.
      expect((await stat(privateHome)).mode & 0o777).toBe(0o700);
      const cluster = await stat(dataDir);
      expect(cluster.mode & 0o777).toBe(0o700);
      expect(cluster.uid).not.toBe(0);
      expect((await stat(path.join(dataDir, "PG_VERSION"))).uid).toBe(cluster.uid);
      await query(postgres.url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)");
      const serverUser = await query(postgres.url, "SELECT current_setting('data_directory') AS directory");
      expect(serverUser.rows[0].directory).toBe("/proc/self/cwd");
      // A second start adopts the running postmaster; after a stop, a start finds the data again.
      const adopted = await startEmbeddedPostgres({ dataDir });
      expect(adopted.isReused).toBe(true);
      expect(adopted.pid).toBe(postgres.pid);
      await postgres.stop();
      const again = track(await startEmbeddedPostgres({ dataDir }));
      expect(again.isReused).toBe(false);
      await expect(query(again.url, "SELECT n FROM kept")).resolves.toMatchObject({ rows: [{ n: 42 }] });
    },
  );

  it.skipIf(!isRoot)("moves a cluster an older version kept in /var/lib/outrig into the home", async () => {
    const privateHome = path.join(await home(0o700), "home");
    await mkdir(privateHome, { mode: 0o700 });
    const dataDir = path.join(privateHome, "postgres");
    const first = await startEmbeddedPostgres({ dataDir });
    await query(first.url, "CREATE TABLE moved (n int); INSERT INTO moved VALUES (7)");
    await first.stop();
    // What an older version left: the cluster outside the home, its config pointing there.
    const legacy = path.join("/var/lib/outrig", `cluster-test-${path.basename(path.dirname(privateHome))}`);
    await mkdir("/var/lib/outrig", { recursive: true, mode: 0o755 });
    await rename(dataDir, legacy);
    cleanups.push(() => rm(legacy, { recursive: true, force: true }));
    const config = JSON.parse(await readFile(`${dataDir}.json`, "utf8")) as Record<string, unknown>;
    await writeFile(`${dataDir}.json`, JSON.stringify({ ...config, clusterDir: legacy }));

    const postgres = track(await startEmbeddedPostgres({ dataDir }));
    expect(postgres.clusterDir).toBe(dataDir);
    await expect(stat(legacy)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(query(postgres.url, "SELECT n FROM moved")).resolves.toMatchObject({ rows: [{ n: 7 }] });
  });

  it("ships a stable PostgreSQL release, not a beta or release candidate", async () => {
    const { resolvePostgresBinaries } = await import("../src/embedded/postgres-binaries.js");
    const binaries = await resolvePostgresBinaries(null);
    const version = await new Promise<string>((resolve, reject) =>
      execFile(binaries.postgres, ["--version"], (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    expect(version.trim()).toMatch(/^postgres \(PostgreSQL\) \d+\.\d+$/);
    expect(binaries.postgresVersion).toBe(`${version.trim().split(" ").at(-1)}.0`);
  });
});
