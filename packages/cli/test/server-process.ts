/** Test helper: runs `outrig serve` as a real child process on a temp OUTRIG_HOME and an ephemeral port. */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export const OUTRIG_BIN = path.resolve(import.meta.dirname, "../bin/outrig.js");

export interface ServerProcess {
  readonly url: string;
  readonly apiKey: string;
  readonly home: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function createOutrigHome(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), "outrig-e2e-"));
}

/**
 * Spawns the server without waiting for it: `ready` resolves with the started server once it listens,
 * or with null when the process exits first (a crash test's server may die during startup).
 */
export function spawnServerProcess(options: { home: string; env?: Record<string, string> }): {
  child: ChildProcess;
  ready: Promise<ServerProcess | null>;
} {
  const child = spawn(process.execPath, [OUTRIG_BIN, "serve"], {
    env: { ...process.env, OUTRIG_HOME: options.home, OUTRIG_PORT: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const ready = new Promise<ServerProcess | null>((resolve) => {
    let isReady = false;
    const onData = async (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (!match?.[1] || isReady) return;
      isReady = true;
      const credentials = JSON.parse(
        await fs.readFile(path.join(options.home, "credentials.json"), "utf8"),
      ) as {
        apiKey: string;
      };
      resolve(wrap(child, match[1], credentials.apiKey, options.home, () => output));
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", () => resolve(null));
  });
  return { child, ready };
}

function wrap(
  child: ChildProcess,
  url: string,
  apiKey: string,
  home: string,
  output: () => string,
): ServerProcess {
  return {
    url,
    apiKey,
    home,
    child,
    output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}

/** Starts the server and resolves once it listens; the bootstrap key is read from its saved credentials. */
export async function startServerProcess(options: {
  home: string;
  env?: Record<string, string>;
}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [OUTRIG_BIN, "serve"], {
    env: { ...process.env, OUTRIG_HOME: options.home, OUTRIG_PORT: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`outrig serve exited with ${code}:\n${output}`)));
  });
  const credentials = JSON.parse(await fs.readFile(path.join(options.home, "credentials.json"), "utf8")) as {
    apiKey: string;
  };
  return {
    url,
    apiKey: credentials.apiKey,
    home: options.home,
    child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}

export async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [OUTRIG_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout, stderr };
}
