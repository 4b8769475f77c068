// In-sandbox agent: one long-lived process per sandbox, started by the backend inside bubblewrap.
// Speaks NDJSON on stdin/stdout (one JSON object per line). Dependency-free on purpose: it runs on
// the host's node binary with only node: built-ins. See packages/sandboxes/README.md for the protocol.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, posix } from "node:path";
import { createInterface } from "node:readline";

const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
/** After the shell exits, wait this long for background children to release stdout/stderr. */
const PIPE_GRACE_MS = 100;

/** @type {Map<number, () => void>} exec request id → cancel */
const runningExecs = new Map();

function send(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function replyOk(id, result) {
  send({ id, ok: true, result });
}

function replyError(id, error, path) {
  const code = typeof error?.code === "string" ? error.code : "EIO";
  send({ id, ok: false, error: { code, message: String(error?.message ?? error), path } });
}

function pathError(code, message) {
  return Object.assign(new Error(message), { code });
}

function requireAbsolute(path) {
  if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0")) {
    throw pathError("EINVAL", `path must be absolute: ${String(path)}`);
  }
  return posix.normalize(path);
}

function kindOf(stats) {
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "directory";
  if (stats.isSymbolicLink()) return "symlink";
  return "other";
}

function describe(stats) {
  return { kind: kindOf(stats), size: stats.size, mtimeMs: stats.mtimeMs };
}

/** Runs `bash -c` in its own session (and so its own process group) and collects capped output. */
async function exec(id, request) {
  const cwd = requireAbsolute(request.cwd ?? "/workspace");
  const cwdStats = await lstat(cwd);
  if (!cwdStats.isDirectory()) throw pathError("ENOTDIR", `not a directory: ${cwd}`);
  const maxBytes = request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const startedAt = performance.now();

  return new Promise((resolve, reject) => {
    const child = spawn("/bin/bash", ["-c", request.command], {
      cwd,
      env: { ...process.env, ...(request.env ?? {}) },
      // detached: setsid(), so the shell leads a new process group we can kill as a whole.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const streams = { stdout: { chunks: [], bytes: 0 }, stderr: { chunks: [], bytes: 0 } };
    let isTruncated = false;
    let isTimedOut = false;
    let isCancelled = false;
    let isDone = false;
    let hasExited = false;
    let exitCode = null;
    let exitSignal = null;
    let openStreams = 2;
    let graceTimer;

    const killGroup = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Invariant: ESRCH means the whole group is already gone.
      }
    };
    const collect = (name) => (chunk) => {
      const stream = streams[name];
      if (isDone) return;
      const room = maxBytes - stream.bytes;
      if (chunk.length > room) {
        isTruncated = true;
        if (room > 0) stream.chunks.push(chunk.subarray(0, room));
        stream.bytes = maxBytes;
        return;
      }
      stream.chunks.push(chunk);
      stream.bytes += chunk.length;
    };
    const finish = () => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      runningExecs.delete(id);
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(streams.stdout.chunks).toString("utf8"),
        stderr: Buffer.concat(streams.stderr.chunks).toString("utf8"),
        isTimedOut,
        isCancelled,
        isTruncated,
        durationMs: performance.now() - startedAt,
      });
      streams.stdout.chunks = [];
      streams.stderr.chunks = [];
    };
    const onStreamClosed = () => {
      openStreams -= 1;
      if (openStreams === 0 && hasExited) finish();
    };

    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));
    child.stdout.on("close", onStreamClosed);
    child.stderr.on("close", onStreamClosed);
    child.on("error", (error) => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      runningExecs.delete(id);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      hasExited = true;
      exitCode = code;
      exitSignal = signal;
      if (openStreams === 0) return finish();
      // A background child may still hold the pipes: answer after a short grace and keep draining.
      graceTimer = setTimeout(finish, PIPE_GRACE_MS);
    });

    const timer = setTimeout(() => {
      isTimedOut = true;
      killGroup();
    }, request.timeoutMs);
    runningExecs.set(id, () => {
      isCancelled = true;
      killGroup();
    });
  });
}

async function readWholeFile(request) {
  const path = requireAbsolute(request.path);
  const stats = await lstat(path);
  if (stats.isDirectory()) throw pathError("EISDIR", `is a directory: ${path}`);
  if (request.maxBytes !== undefined && stats.size > request.maxBytes) {
    throw pathError("EFBIG", `file is larger than ${request.maxBytes} bytes: ${path}`);
  }
  return { data: (await readFile(path)).toString("base64") };
}

async function writeWholeFile(request) {
  const path = requireAbsolute(request.path);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, Buffer.from(request.data, "base64"));
  return {};
}

async function statPath(request) {
  const path = requireAbsolute(request.path);
  try {
    return { stat: describe(await lstat(path)) };
  } catch (error) {
    if (error?.code === "ENOENT" || error?.code === "ENOTDIR") return { stat: null };
    throw error;
  }
}

/** Depth-first, sorted by name; never follows symlinks. */
async function listDirectory(request) {
  const root = requireAbsolute(request.path);
  const limit = request.limit ?? Number.POSITIVE_INFINITY;
  const entries = [];
  const walk = async (relative) => {
    const names = (await readdir(relative ? `${root}/${relative}` : root)).sort();
    for (const name of names) {
      if (entries.length >= limit) return;
      const path = relative ? `${relative}/${name}` : name;
      let stats;
      try {
        stats = await lstat(`${root}/${path}`);
      } catch (error) {
        if (error?.code === "ENOENT") continue; // removed while listing
        throw error;
      }
      entries.push({ path, ...describe(stats) });
      if (request.recursive && stats.isDirectory()) await walk(path);
    }
  };
  await walk("");
  return { entries };
}

async function removePath(request) {
  const path = requireAbsolute(request.path);
  await lstat(path);
  await rm(path, { recursive: true, force: false });
  return {};
}

function info() {
  const status = readFileSync("/proc/self/status", "utf8");
  const kilobytes = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return {
    pid: process.pid,
    rssBytes: kilobytes("VmRSS"),
    rssAnonBytes: kilobytes("RssAnon"),
    heapUsedBytes: process.memoryUsage().heapUsed,
  };
}

const operations = {
  readFile: readWholeFile,
  writeFile: writeWholeFile,
  stat: statPath,
  list: listDirectory,
  remove: removePath,
  info,
};

async function handle(request) {
  const { id, op } = request;
  try {
    if (op === "exec") return replyOk(id, await exec(id, request));
    if (op === "cancel") {
      runningExecs.get(request.target)?.();
      return replyOk(id, {});
    }
    const operation = operations[op];
    if (!operation) throw pathError("ENOSYS", `unknown op: ${String(op)}`);
    return replyOk(id, await operation(request));
  } catch (error) {
    return replyError(id, error, request.path ?? request.cwd);
  }
}

createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })
  .on("line", (line) => {
    let request;
    try {
      request = JSON.parse(line);
    } catch {
      return send({ id: null, ok: false, error: { code: "EPROTO", message: "invalid JSON line" } });
    }
    void handle(request);
  })
  // The backend closed the pipe: nothing can reach us any more, so stop.
  .on("close", () => process.exit(0));

send({ event: "ready", pid: process.pid });
