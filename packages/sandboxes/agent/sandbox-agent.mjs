// In-sandbox agent: one long-lived process per sandbox, started by the backend inside bubblewrap.
// Speaks NDJSON on stdin/stdout (one JSON object per line). Dependency-free on purpose: it runs on
// the host's node binary with only node: built-ins. See packages/sandboxes/README.md for the protocol.
import { spawn } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  appendFileSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFile as writeFileCallback,
  writeFileSync,
} from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { dirname, isAbsolute, posix } from "node:path";
import { createInterface } from "node:readline";

const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
/** After the shell exits, wait this long for background children to release stdout/stderr. */
const PIPE_GRACE_MS = 100;

/** Completed calls remembered for exactly-once replay: the newest this many keys… */
const MAX_RECORDED_KEYS = 1000;
/** …each with at most this many bytes of exec output per stream. */
const MAX_RECORDED_OUTPUT_BYTES = 64 * 1024;

/** @type {Map<number, () => void>} exec request id → cancel */
const runningExecs = new Map();
/** @type {Map<string, Promise<{ ok: boolean, result?: unknown, error?: unknown }>>} idempotency key → outcome (insertion order = LRU order) */
const recordedCalls = new Map();

/** Where replies go: stdout by default; with --listen, the unix socket connection that asked. */
const stdoutSink = (line) => process.stdout.write(line);

/** The backend drops a sandbox whose agent sends a longer line (--max-message-bytes). */
let maxMessageBytes = 64 * 1024 * 1024;

function send(message, sink = stdoutSink) {
  sink(`${JSON.stringify(message)}\n`);
}

/** Answers with `result`, cutting exec output (marked truncated) or failing with E2BIG when it would not fit. */
function replyOk(id, result, sink) {
  let line = JSON.stringify({ id, ok: true, result });
  let fitted = result;
  // Room for the newline and, on an authenticated channel, the MAC in front of the line.
  for (let cuts = 0; Buffer.byteLength(line) + 128 > maxMessageBytes; cuts += 1) {
    if (typeof fitted?.stdout !== "string" || typeof fitted?.stderr !== "string" || cuts > 60) {
      const error = pathError("E2BIG", `the reply is larger than the ${maxMessageBytes}-byte message limit`);
      return replyError(id, error, undefined, sink);
    }
    fitted = {
      ...fitted,
      stdout: fitted.stdout.slice(0, Math.floor(fitted.stdout.length / 2)),
      stderr: fitted.stderr.slice(0, Math.floor(fitted.stderr.length / 2)),
      isTruncated: true,
    };
    line = JSON.stringify({ id, ok: true, result: fitted });
  }
  sink(`${line}\n`);
}

function replyError(id, error, path, sink) {
  const code = typeof error?.code === "string" ? error.code : "EIO";
  send({ id, ok: false, error: { code, message: String(error?.message ?? error), path } }, sink);
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
    // The backend protects the agent from the OOM killer (oom_score_adj -999); commands get the
    // default back so a memory hog is killed rather than the agent. Raising is always allowed.
    if (child.pid !== undefined) writeFileCallback(`/proc/${child.pid}/oom_score_adj`, "0", () => {});
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

function capText(text) {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= MAX_RECORDED_OUTPUT_BYTES) return { text, isCut: false };
  return { text: bytes.subarray(0, MAX_RECORDED_OUTPUT_BYTES).toString("utf8"), isCut: true };
}

/** What is kept for replay: exec output capped per stream (marked truncated when cut). */
function recordable(op, result) {
  if (op !== "exec" || result === undefined) return result;
  const stdout = capText(result.stdout);
  const stderr = capText(result.stderr);
  return {
    ...result,
    stdout: stdout.text,
    stderr: stderr.text,
    isTruncated: result.isTruncated || stdout.isCut || stderr.isCut,
  };
}

async function run(id, op, request) {
  if (op === "exec") return exec(id, request);
  const operation = operations[op];
  if (!operation) throw pathError("ENOSYS", `unknown op: ${String(op)}`);
  return operation(request);
}

/**
 * Runs a call with an idempotency key at most once while this agent lives: a repeated key gets the
 * recorded outcome (also while the first call is still running) with `isReplayed: true`.
 */
/** Keyed calls still running; an agent whose backend went away waits for these before it exits. */
const inFlightKeyedCalls = new Set();

/** Path of the journal that keeps completed keyed calls across sandbox replacements (optional). */
let journalPath;

/** Loads completed calls recorded by earlier agents of this session, keeping the newest entries. */
function loadJournal(path) {
  journalPath = path;
  let lines = [];
  try {
    lines = readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line.length > 0);
  } catch {
    return;
  }
  const kept = [];
  for (const line of lines) {
    try {
      const entry = JSON.parse(line);
      // The host appends { forget } when a call's effects were rolled back: its entries no longer hold.
      if (typeof entry.forget === "string") {
        const suffix = `:${entry.forget}`;
        for (const key of [...recordedCalls.keys()]) if (key.endsWith(suffix)) recordedCalls.delete(key);
        for (let index = kept.length - 1; index >= 0; index -= 1)
          if (kept[index].key.endsWith(suffix)) kept.splice(index, 1);
        continue;
      }
      if (typeof entry.key !== "string") continue;
      recordedCalls.delete(entry.key);
      recordedCalls.set(entry.key, Promise.resolve({ ok: true, result: entry.result }));
      kept.push(entry);
    } catch {
      // A line torn by a crash mid-write is skipped.
    }
  }
  while (recordedCalls.size > MAX_RECORDED_KEYS) recordedCalls.delete(recordedCalls.keys().next().value);
  if (lines.length > MAX_RECORDED_KEYS * 2) {
    const newest = kept.slice(-MAX_RECORDED_KEYS).map((entry) => JSON.stringify(entry));
    writeFileSync(`${path}.tmp`, `${newest.join("\n")}\n`);
    renameSync(`${path}.tmp`, path);
  }
}

/** Appends a completed call before it is answered, so a crash right after cannot lose it. */
function journal(key, result) {
  if (!journalPath) return;
  try {
    appendFileSync(journalPath, `${JSON.stringify({ key, result })}\n`);
  } catch {
    // Best effort: without the journal the call is still exactly-once while this agent lives.
  }
}

async function runOnce(id, op, request) {
  const key = `${op}:${request.idempotencyKey}`;
  const recorded = recordedCalls.get(key);
  if (recorded) {
    recordedCalls.delete(key);
    recordedCalls.set(key, recorded);
    const outcome = await recorded;
    if (!outcome.ok) throw outcome.error;
    return { ...outcome.result, isReplayed: true };
  }
  let fullResult;
  const outcome = run(id, op, request).then(
    (result) => {
      fullResult = result;
      const record = recordable(op, result);
      journal(key, record);
      return { ok: true, result: record };
    },
    (error) => {
      // EAGAIN: the command could not be started (the process limit was full), so nothing ran and
      // the backend may try the same key again.
      if (error?.code === "EAGAIN" && recordedCalls.get(key) === outcome) recordedCalls.delete(key);
      return {
        ok: false,
        error: Object.assign(new Error(String(error?.message ?? error)), { code: error?.code ?? "EIO" }),
      };
    },
  );
  recordedCalls.set(key, outcome);
  inFlightKeyedCalls.add(outcome);
  void outcome.finally(() => inFlightKeyedCalls.delete(outcome));
  while (recordedCalls.size > MAX_RECORDED_KEYS) recordedCalls.delete(recordedCalls.keys().next().value);
  const settled = await outcome;
  if (!settled.ok) throw settled.error;
  // The first caller gets the full result; only the record is capped.
  return { ...fullResult, isReplayed: false };
}

async function handle(request, sink) {
  const { id, op } = request;
  try {
    if (op === "cancel") {
      runningExecs.get(request.target)?.();
      return replyOk(id, {}, sink);
    }
    if (
      typeof request.idempotencyKey === "string" &&
      (op === "exec" || op === "writeFile" || op === "remove")
    )
      return replyOk(id, await runOnce(id, op, request), sink);
    return replyOk(id, await run(id, op, request), sink);
  } catch (error) {
    return replyError(id, error, request.path ?? request.cwd, sink);
  }
}

/**
 * Egress bridge: every TCP connection to 127.0.0.1:3128 in the sandbox's own network namespace is
 * piped to the host proxy's unix socket (bound into the sandbox). Nothing else is reachable.
 */
const egressBridge = { socketPath: undefined, server: undefined, connections: new Set() };

function startEgressBridge(socketPath) {
  egressBridge.socketPath = socketPath;
  const server = createServer({ pauseOnConnect: true }, (client) => {
    const upstream = createConnection(socketPath);
    egressBridge.connections.add(client).add(upstream);
    upstream.once("connect", () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("close", () => egressBridge.connections.delete(upstream));
    client.on("close", () => egressBridge.connections.delete(client));
  });
  egressBridge.server = server;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(3128, "127.0.0.1", () => resolve(server));
  });
}

/**
 * Before a CRIU checkpoint: CRIU 4.1 cannot dump TCP sockets on kernels that refuse SO_PASSCRED on
 * them (6.x), so the bridge's listener and connections close; SIGUSR2 after the restore reopens it.
 */
function closeEgressBridge() {
  egressBridge.server?.close();
  egressBridge.server = undefined;
  for (const connection of egressBridge.connections) connection.destroy();
  egressBridge.connections.clear();
}

/** Parses one NDJSON request line; answers EPROTO through `sink` and returns undefined when invalid. */
function parseLine(line, sink) {
  try {
    return JSON.parse(line);
  } catch {
    send({ id: null, ok: false, error: { code: "EPROTO", message: "invalid JSON line" } }, sink);
    return undefined;
  }
}

/**
 * The key of an authenticated channel (--key-file: read, then deleted before the agent listens, so no
 * command ever sees it; the agent is non-dumpable, so none can read its memory either). Every line
 * then starts with `<hex HMAC-SHA256> `, over the connection's nonce, the direction and the line:
 * whoever can replace the socket file (any command) can neither forge, alter nor replay a message.
 */
let channelKey;

function channelMac(nonce, direction, text) {
  return createHmac("sha256", channelKey).update(`${nonce}\n${direction}\n${text}`).digest("hex");
}

/**
 * Checks a host line's MAC and returns its JSON text, or undefined. The first line of a connection
 * must be `{"op":"hello","nonce":…}`, authenticated with that nonce.
 */
function authenticate(channel, line) {
  const space = line.indexOf(" ");
  if (space !== 64) return undefined;
  const text = line.slice(space + 1);
  let nonce = channel.nonce;
  if (nonce === undefined) {
    try {
      const hello = JSON.parse(text);
      if (hello?.op !== "hello" || typeof hello.nonce !== "string" || hello.nonce.length < 32)
        return undefined;
      nonce = hello.nonce;
    } catch {
      return undefined;
    }
  }
  const expected = Buffer.from(channelMac(nonce, "host", text), "hex");
  const actual = Buffer.from(line.slice(0, space), "hex");
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return undefined;
  return text;
}

/**
 * --listen mode (the runc provider): serve one client at a time on a unix socket and outlive it, so
 * the backend can disconnect before a CRIU checkpoint and reconnect after the restore. A new
 * connection replaces the old one; replies to requests of a closed connection are dropped.
 * `{"op":"detach"}` is answered, then the agent closes the connection AND the listening socket: CRIU
 * 4.1 cannot restore a path-bound unix socket when a command left a process whose group leader is
 * gone (checkpoint-restore/criu#2687). SIGUSR2 makes the agent listen again (sent after a restore).
 */
function listen(socketPath) {
  let current;
  let server;
  const start = () =>
    new Promise((resolve, reject) => {
      const listening = createServer((socket) => {
        socket.on("error", () => undefined);
        // With a channel key, a connection counts only once it proved the key (see authenticate).
        const channel = channelKey === undefined ? undefined : { nonce: undefined, seenIds: new Set() };
        const adopt = () => {
          if (current !== socket) current?.destroy();
          current = socket;
        };
        const sink = (line) => {
          if (socket.destroyed) return;
          socket.write(channel ? `${channelMac(channel.nonce, "agent", line.slice(0, -1))} ${line}` : line);
        };
        createInterface({ input: socket, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
          let text = line;
          if (channel) {
            text = authenticate(channel, line);
            if (text === undefined) return socket.destroy();
            if (channel.nonce === undefined) {
              const hello = JSON.parse(text);
              channel.nonce = hello.nonce;
              adopt();
              return send({ event: "ready", pid: process.pid }, sink);
            }
          }
          const request = parseLine(text, sink);
          if (channel && request && (typeof request.id !== "number" || channel.seenIds.has(request.id)))
            return socket.destroy(); // a replayed request
          channel?.seenIds.add(request?.id);
          if (request?.op === "detach") {
            replyOk(request.id, {}, sink);
            // Both fds close synchronously here, before the backend sees the connection end.
            if (server === listening) server = undefined;
            listening.close();
            socket.destroy();
            closeEgressBridge();
          } else if (request) void handle(request, sink);
        });
        socket.on("close", () => {
          if (current === socket) current = undefined;
        });
        if (!channel) {
          adopt();
          send({ event: "ready", pid: process.pid }, sink);
        }
      });
      try {
        unlinkSync(socketPath);
      } catch {
        // not there
      }
      server = listening;
      listening.once("error", reject);
      listening.listen(socketPath, () => resolve(listening));
    });
  process.on("SIGUSR2", () => {
    if (!server) start().catch(() => undefined);
    if (egressBridge.socketPath !== undefined && !egressBridge.server)
      startEgressBridge(egressBridge.socketPath).catch(() => undefined);
  });
  // Between detach and SIGUSR2 nothing else keeps the event loop (and so the agent) alive.
  setInterval(() => undefined, 2 ** 30);
  return start();
}

const maxMessageIndex = process.argv.indexOf("--max-message-bytes");
if (maxMessageIndex !== -1) maxMessageBytes = Number(process.argv[maxMessageIndex + 1]);
const journalIndex = process.argv.indexOf("--journal");
if (journalIndex !== -1) loadJournal(process.argv[journalIndex + 1]);
const egressIndex = process.argv.indexOf("--egress-socket");
if (egressIndex !== -1) await startEgressBridge(process.argv[egressIndex + 1]);
const keyIndex = process.argv.indexOf("--key-file");
if (keyIndex !== -1) {
  channelKey = Buffer.from(readFileSync(process.argv[keyIndex + 1], "utf8").trim(), "hex");
  unlinkSync(process.argv[keyIndex + 1]);
}
const listenIndex = process.argv.indexOf("--listen");
if (listenIndex !== -1) {
  await listen(process.argv[listenIndex + 1]);
} else {
  createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })
    .on("line", (line) => {
      const request = parseLine(line, stdoutSink);
      if (request) void handle(request, stdoutSink);
    })
    // The backend closed the pipe (it stopped, or crashed). Keyed calls in flight are finished and
    // journaled first, so the session's next sandbox replays them instead of running them twice.
    .on("close", () => {
      void Promise.allSettled([...inFlightKeyedCalls]).then(() => process.exit(0));
    });
  // A crashed backend leaves a broken pipe: replies are then dropped, never fatal.
  process.stdout.on("error", () => undefined);
  send({ event: "ready", pid: process.pid });
}
