/** Runs the runc and criu binaries; every failure becomes a one-line SandboxError. */
import { execFile, spawn } from "node:child_process";
import { SandboxError } from "@outrig/core";

const STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RuncCommandOptions {
  /** Path of runc. */
  readonly runcPath: string;
  /** runc's state directory (`runc --root`). */
  readonly stateRoot: string;
  /** Path of a CRIU >= 4 binary, for checkpoint and restore. */
  readonly criuPath?: string;
  readonly timeoutMs?: number;
}

/** Runs `runc --root <stateRoot> [--criu <criu>] …args`; resolves with stdout. */
export function runRunc(options: RuncCommandOptions, args: readonly string[]): Promise<string> {
  const global = ["--root", options.stateRoot];
  if (options.criuPath !== undefined) global.push("--criu", options.criuPath);
  return runBinary(
    options.runcPath,
    [...global, ...args],
    options.timeoutMs ?? 60_000,
    runcEnvironment(options),
  );
}

/**
 * runc passes its environment on to CRIU. CRIU_FAULT=130 (FI_NO_BREAKPOINTS) makes CRIU find the
 * parasite's rt_sigreturn with PTRACE_SYSCALL instead of a hardware breakpoint: under nested
 * virtualization (e.g. PVM hosts) debug registers never fire and `criu dump` hangs forever after
 * "Sent msg to daemon 3 0 0". The syscall-stop path works everywhere and costs a few ms.
 */
function runcEnvironment(options: RuncCommandOptions): NodeJS.ProcessEnv {
  return options.criuPath === undefined
    ? { PATH: STANDARD_PATH }
    : { PATH: STANDARD_PATH, CRIU_FAULT: "130" };
}

/**
 * For `runc run -d` and `runc restore -d`: stdin and stdout are /dev/null, so no host pipe can
 * reach the container (CRIU refuses to checkpoint those); stderr is read for the error line.
 */
export function runRuncDetached(options: RuncCommandOptions, args: readonly string[]): Promise<void> {
  const global = ["--root", options.stateRoot];
  if (options.criuPath !== undefined) global.push("--criu", options.criuPath);
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(options.runcPath, [...global, ...args], {
      env: runcEnvironment(options),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 16_384) stderr += chunk.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new SandboxError("sandbox_unavailable", `${options.runcPath} did not start: ${error.message}`));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const detail =
        stderr
          .trim()
          .split("\n")
          .filter((line) => line.trim() !== "")
          .slice(-1)[0] ?? `exit ${signal ?? code}`;
      reject(new SandboxError("sandbox_unavailable", `runc ${args[0]} failed: ${detail}`));
    });
  });
}

/** Runs a binary with stdin from /dev/null; rejects with its stderr's last line. */
export function runBinary(
  path: string,
  args: readonly string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = { PATH: STANDARD_PATH },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      path,
      args,
      // A minimal environment: runc finds iptables and criu finds its helpers on a standard PATH.
      { env, timeout: timeoutMs },
      (error, stdout, stderr) => {
        if (!error) {
          resolve(stdout);
          return;
        }
        const detail =
          `${stderr}`
            .trim()
            .split("\n")
            .filter((line) => line.trim() !== "")
            .slice(-1)[0] ?? error.message;
        reject(
          new SandboxError("sandbox_unavailable", `${path} ${args.slice(0, 6).join(" ")} failed: ${detail}`, {
            cause: error,
          }),
        );
      },
    );
    child.stdin?.end();
  });
}

/** "4.1.1" from `criu --version` ("Version: 4.1.1"), or undefined. */
export function parseCriuVersion(output: string): string | undefined {
  return /Version:\s*([0-9]+(?:\.[0-9]+)*)/.exec(output)?.[1];
}
