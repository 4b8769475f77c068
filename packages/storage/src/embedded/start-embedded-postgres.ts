/**
 * Runs a real PostgreSQL (binaries from npm) as a detached child of the server, with its files under the
 * caller's data dir. Reuses a postmaster that outlived a crashed server; cleans up stale pid files.
 *
 * As root, Postgres runs as the `postgres` OS user and its cluster directory (owned by that user, 0700)
 * stays in the data dir even when that user cannot traverse its parents (`/root` is 0700): Postgres is
 * started in the cluster directory (the working directory is entered before privileges drop) and told
 * `-D /proc/self/cwd`, a link the kernel resolves to the process's own working directory without
 * walking the parents. Nothing is loosened and nothing of the cluster lives outside the data dir.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chown, mkdir, mkdtemp, open, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ConfigError, StorageError } from "@outrig/core";
import pg from "pg";
import { z } from "zod";
import { randomBase62 } from "../ids/create-id.js";
import { type PostgresBinaries, resolvePostgresBinaries } from "./postgres-binaries.js";
import {
  isLivePostmaster,
  OWN_WORKING_DIRECTORY,
  readPostmasterPid,
  removePostmasterPid,
} from "./postmaster-pid.js";
import { canUserTraverse, firstLine, type RunAsUser, resolveRunAsUser } from "./run-as-user.js";

export const DEFAULT_EMBEDDED_PORT = 7432;
const SUPERUSER = "outrig";
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 25;

export interface StartEmbeddedPostgresOptions {
  /** Where the cluster lives, e.g. `<OUTRIG_HOME>/postgres`. `<dataDir>.json` holds its password (0600). */
  readonly dataDir: string;
  /** Preferred port on 127.0.0.1 for a new cluster (default 7432); a taken port is replaced and remembered. */
  readonly port?: number;
  /** Receives one line per lifecycle step. Postgres's own output goes to `<dataDir>.log`. */
  readonly log?: (line: string) => void;
}

export interface EmbeddedPostgres {
  /** Superuser URL for the `postgres` database, password auth over 127.0.0.1. */
  readonly url: string;
  readonly pid: number;
  readonly port: number;
  /** Where the cluster's files really are (differs from `dataDir` when relocated for root, see README). */
  readonly clusterDir: string;
  /** True when an already running postmaster (left by a crashed process) was adopted. */
  readonly isReused: boolean;
  /** Fast shutdown (SIGINT) and wait for the postmaster to exit. Idempotent. May throw StorageError on timeout. */
  stop(): Promise<void>;
}

const EmbeddedConfig = z.object({
  schemaVersion: z.literal(1),
  clusterDir: z.string().min(1),
  port: z.number().int().min(1).max(65_535),
  user: z.string().min(1),
  password: z.string().min(16),
});
type EmbeddedConfig = z.infer<typeof EmbeddedConfig>;

/**
 * Starts (or adopts) the embedded cluster for `dataDir`, running `initdb` on first use.
 * Throws ConfigError (operator must act) or StorageError (Postgres failed), each with a one-line message.
 * The caller owns the returned handle and must `stop()` it; a process exit without stop() sends SIGINT
 * to the postmaster as a best effort, a SIGKILL leaves it running for the next start to adopt.
 */
export async function startEmbeddedPostgres(
  options: StartEmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const configPath = `${dataDir}.json`;
  const logPath = `${dataDir}.log`;
  const log = options.log ?? (() => {});
  await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o700 });
  const runAs = await resolveRunAsUser();
  const binaries = await resolvePostgresBinaries(runAs);

  let config = await readConfig(configPath);
  if (!config) {
    config = {
      schemaVersion: 1,
      clusterDir: dataDir,
      port: options.port ?? DEFAULT_EMBEDDED_PORT,
      user: SUPERUSER,
      password: randomBase62(32),
    };
    // Written before initdb so the password can never be lost once a cluster exists.
    await writeConfig(configPath, config);
  }
  if (config.clusterDir !== dataDir) {
    config = await moveClusterHome(config, dataDir, log);
    await writeConfig(configPath, config);
  }
  const { clusterDir } = config;

  if (!(await exists(path.join(clusterDir, "PG_VERSION")))) {
    log(`initializing PostgreSQL ${binaries.postgresVersion} cluster in ${clusterDir}`);
    await initCluster(binaries, config, runAs);
  }

  for (let attempt = 1; ; attempt++) {
    const pidFile = await readPostmasterPid(clusterDir);
    if (pidFile && (await isLivePostmaster(pidFile.pid, clusterDir))) {
      log(`reusing running postmaster pid ${pidFile.pid} on port ${pidFile.port}`);
      return adoptPostmaster(pidFile.pid, clusterDir, config);
    }
    if (pidFile) {
      log(`removing stale postmaster.pid (pid ${pidFile.pid} is not a running postmaster)`);
      await removePostmasterPid(clusterDir);
    }
    const port = await choosePort(config.port);
    if (port !== config.port) {
      log(`port ${config.port} is taken, using ${port}`);
      config = { ...config, port };
      await writeConfig(configPath, config);
    }
    try {
      return await spawnPostmaster(binaries, config, runAs, logPath, log);
    } catch (error) {
      // Lost a race for the port or the lock file to another process: look again.
      if (error instanceof RetryableStart && attempt < 3) continue;
      throw error;
    }
  }
}

class RetryableStart extends Error {}

/**
 * Older versions kept a root-owned home's cluster in /var/lib/outrig/cluster-<hash>; it moves into the
 * data dir now (unless a postmaster still runs on it: then it stays until the next start).
 */
async function moveClusterHome(
  config: EmbeddedConfig,
  dataDir: string,
  log: (line: string) => void,
): Promise<EmbeddedConfig> {
  const from = config.clusterDir;
  const pidFile = await readPostmasterPid(from);
  if (pidFile && (await isLivePostmaster(pidFile.pid, from))) return config;
  if (!(await exists(path.join(from, "PG_VERSION")))) return { ...config, clusterDir: dataDir };
  log(`moving the Postgres cluster from ${from} into ${dataDir}`);
  await rmdir(dataDir).catch(() => undefined); // an empty leftover; a full one makes rename fail below
  try {
    await rename(from, dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") {
      throw new StorageError(
        "embedded_postgres_failed",
        `cannot move the Postgres cluster from ${from} into ${dataDir}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    // Another file system: copy with owners and modes, then remove the old copy.
    await new Promise<void>((resolve, reject) =>
      execFile("cp", ["-a", from, dataDir], (copyError) => (copyError ? reject(copyError) : resolve())),
    );
    await rm(from, { recursive: true, force: true });
  }
  return { ...config, clusterDir: dataDir };
}

async function initCluster(binaries: PostgresBinaries, config: EmbeddedConfig, runAs: RunAsUser | null) {
  const { clusterDir } = config;
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  if (runAs) await chown(clusterDir, runAs.uid, runAs.gid);
  const dataArgument = await dataDirArgument(clusterDir, runAs);
  // initdb reads the superuser password from a file; keep it in a private temp dir only for the call.
  // In a temp dir the postgres user can reach ($TMPDIR may be a private one; /tmp is 1777).
  const tmpDir = !runAs || (await canUserTraverse(os.tmpdir(), runAs)) ? os.tmpdir() : "/tmp";
  const passwordDir = await mkdtemp(path.join(tmpDir, "outrig-initdb-"));
  const passwordFile = path.join(passwordDir, "password");
  try {
    await writeFile(passwordFile, `${config.password}\n`, { mode: 0o600 });
    if (runAs) {
      await chown(passwordDir, runAs.uid, runAs.gid);
      await chown(passwordFile, runAs.uid, runAs.gid);
    }
    const args = [
      `--pgdata=${dataArgument}`,
      `--username=${config.user}`,
      `--pwfile=${passwordFile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--no-locale",
      "--no-instructions",
    ];
    const { code, output } = await runToEnd(binaries.initdb, args, runAs, clusterDir);
    if (code !== 0) {
      const reason = output.split("\n").find((line) => line.includes("error")) ?? firstLine(output);
      throw new StorageError(
        "embedded_postgres_failed",
        `initdb failed in ${clusterDir}: ${reason ?? `exit ${code}`}`,
      );
    }
  } finally {
    await rm(passwordDir, { recursive: true, force: true });
  }
}

async function spawnPostmaster(
  binaries: PostgresBinaries,
  config: EmbeddedConfig,
  runAs: RunAsUser | null,
  logPath: string,
  log: (line: string) => void,
): Promise<EmbeddedPostgres> {
  const { clusterDir, port } = config;
  const dataArgument = await dataDirArgument(clusterDir, runAs);
  const logFile = await open(logPath, "a", 0o600);
  const logOffset = (await logFile.stat()).size;
  let child: ChildProcess;
  try {
    child = spawn(
      binaries.postgres,
      [
        "-D",
        dataArgument,
        "-p",
        String(port),
        // TCP on loopback only, with password auth (pg_hba from initdb --auth=scram-sha-256). No unix
        // socket, so no socket lock file in /tmp can go stale or collide with another cluster.
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
      ],
      {
        // Own process group: a Ctrl-C aimed at the server must not kill Postgres before the server has
        // flushed its last writes; the server stops it through stop().
        detached: true,
        cwd: clusterDir,
        stdio: ["ignore", logFile.fd, logFile.fd],
        env: { LC_ALL: "C" },
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      },
    );
  } finally {
    await logFile.close();
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  child.unref();
  log(`starting Postgres on 127.0.0.1:${port} (log: ${logPath})`);

  const outcome = await Promise.race([
    exited.then((code) => ({ kind: "exited" as const, code })),
    waitForReady(clusterDir, child.pid ?? -1).then(() => ({ kind: "ready" as const })),
  ]);
  if (outcome.kind === "exited") {
    const output = await readFrom(logPath, logOffset);
    const fatal = output
      .split("\n")
      .find((line) => /FATAL|PANIC/.test(line))
      ?.trim();
    if (
      fatal &&
      /could not bind|already in use|could not create any TCP\/IP sockets|lock file .* already exists/i.test(
        fatal,
      )
    ) {
      throw new RetryableStart(fatal);
    }
    throw new StorageError(
      "embedded_postgres_failed",
      `Postgres exited during start (code ${outcome.code}): ${fatal ?? firstLine(output) ?? "no output"} (log: ${logPath})`,
    );
  }
  const pid = child.pid ?? -1;
  return createHandle(pid, clusterDir, config, false, () => exited.then(() => undefined));
}

async function adoptPostmaster(
  pid: number,
  clusterDir: string,
  config: EmbeddedConfig,
): Promise<EmbeddedPostgres> {
  // A postmaster that survived a SIGKILLed server may still be in crash recovery.
  await waitForReady(clusterDir, pid);
  const pidFile = await readPostmasterPid(clusterDir);
  const adopted = { ...config, port: pidFile?.port || config.port };
  const client = new pg.Client({ connectionString: connectionUrl(adopted), connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (error) {
    throw new StorageError(
      "embedded_postgres_failed",
      `a postmaster (pid ${pid}) is running on ${clusterDir} but refused our connection: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  return createHandle(pid, clusterDir, adopted, true, () => waitForExit(pid, clusterDir));
}

function createHandle(
  pid: number,
  clusterDir: string,
  config: EmbeddedConfig,
  isReused: boolean,
  waitExit: () => Promise<void>,
): EmbeddedPostgres {
  let stopping: Promise<void> | undefined;
  // Best effort for process.exit() and uncaught errors; SIGKILL cannot be caught (the next start adopts).
  // Only for a postmaster this process started: an adopted one may serve another live process
  // (a CLI command attached to a running server), which an exit of this one must not stop.
  const onExit = () => signal(pid, "SIGINT");
  if (!isReused) process.once("exit", onExit);
  return {
    url: connectionUrl(config),
    pid,
    port: config.port,
    clusterDir,
    isReused,
    stop() {
      stopping ??= (async () => {
        process.off("exit", onExit);
        if (!signal(pid, "SIGINT")) return;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
        });
        const result = await Promise.race([waitExit().then(() => "stopped" as const), timeout]);
        clearTimeout(timer);
        if (result === "timeout") {
          throw new StorageError(
            "embedded_postgres_failed",
            `Postgres (pid ${pid}) did not stop within 60 s`,
          );
        }
      })();
      return stopping;
    },
  };
}

async function waitForReady(clusterDir: string, pid: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const pidFile = await readPostmasterPid(clusterDir);
    if (pidFile?.pid === pid && pidFile.status === "ready") return;
    await delay(POLL_INTERVAL_MS);
  }
  throw new StorageError("embedded_postgres_failed", `Postgres (pid ${pid}) was not ready within 60 s`);
}

async function waitForExit(pid: number, clusterDir: string): Promise<void> {
  while (await isLivePostmaster(pid, clusterDir)) await delay(POLL_INTERVAL_MS);
}

function connectionUrl(config: EmbeddedConfig): string {
  return `postgresql://${config.user}:${config.password}@127.0.0.1:${config.port}/postgres`;
}

/** True when the signal was delivered. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

async function choosePort(preferred: number): Promise<number> {
  if (await canListen(preferred)) return preferred;
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function readConfig(configPath: string): Promise<EmbeddedConfig | null> {
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ConfigError(
      "embedded_postgres_config",
      `cannot read ${configPath}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const parsed = EmbeddedConfig.safeParse(safeJson(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      "embedded_postgres_config",
      `${configPath} is invalid${issue ? ` at "${issue.path.join(".")}": ${issue.message}` : ""}`,
    );
  }
  return parsed.data;
}

async function writeConfig(configPath: string, config: EmbeddedConfig): Promise<void> {
  const temporary = `${configPath}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, configPath);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `-D` Postgres gets: the cluster's path, or its own working directory when it cannot walk there. */
async function dataDirArgument(clusterDir: string, runAs: RunAsUser | null): Promise<string> {
  return runAs && !(await canUserTraverse(clusterDir, runAs)) ? OWN_WORKING_DIRECTORY : clusterDir;
}

function runToEnd(
  command: string,
  args: string[],
  runAs: RunAsUser | null,
  cwd: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      // Entered before the privileges drop, so it works where the user could not walk (see above).
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { LC_ALL: "C" },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.once("error", (error) => resolve({ code: null, output: error.message }));
    child.once("close", (code) => resolve({ code, output }));
  });
}

async function readFrom(file: string, offset: number): Promise<string> {
  const text = await readFile(file).catch(() => Buffer.alloc(0));
  return text.subarray(offset).toString("utf8");
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
