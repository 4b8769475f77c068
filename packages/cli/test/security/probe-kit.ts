/**
 * Probe kit for the sandbox security suites: a probe is one scripted tool call with a concrete
 * expected outcome; `useProbeSuite` starts the harness (a real `outrig serve`, the fake LLM, a planted
 * marker), runs probes as sessions, checks each and scans everything for the marker.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import {
  type SecurityHarness,
  type SessionRun,
  startSecurityHarness,
  type ToolCall,
  type ToolResult,
} from "./sandbox-harness.js";

/** Context a probe's check may use: host-side facts the sandbox must not reach. */
export interface ProbeContext {
  readonly harness: SecurityHarness;
  readonly home: string;
  readonly serverPid: number;
  readonly postgresPort: number;
  readonly postgresDir: string;
  readonly hostAddress: string | undefined;
  /** Host path of another session's workspace, holding secret.txt. */
  readonly otherWorkspace: string;
}

export interface Probe {
  readonly name: string;
  readonly call: (context: ProbeContext) => ToolCall;
  readonly check: (result: ToolResult, context: ProbeContext) => void;
}

export const isX64 = process.arch === "x64";
/** Limits (pids cgroup, workspace quota) are only enforced when the server runs as root. */
export const isRoot = process.getuid?.() === 0;

export const bash = (command: string, timeout?: number): ToolCall => ({
  name: "bash",
  input: { command, ...(timeout === undefined ? {} : { timeout_ms: timeout }) },
});
/** A perl one-liner that makes a raw syscall and prints `rc=<return> errno=<name>`. */
export const syscall = (numberAndArgs: string) =>
  bash(
    `perl -e 'my @a = (${numberAndArgs}); my $r = syscall($a[0], @a[1..$#a]); my $e = $! + 0; print "rc=$r errno=$e ($!)\\n"'`,
  );
/** Refused for lack of privilege, or by the seccomp filter (which answers EPERM). */
export const refusedSyscall = (output: string) =>
  expect(output).toMatch(/rc=-1 errno=1 \(Operation not permitted\)/);
/** Node inside the sandbox (the agent's binary) for network probes. */
export const node = (script: string) => bash(`/opt/outrig/bin/node -e '${script}'`);
export const fetchProbe = (url: string) =>
  node(
    `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then(async (r) => console.log("STATUS", r.status, await r.text()), (e) => console.log("FAILED", e.cause?.code ?? e.name))`,
  );
export const expectFetchFailed = (result: ToolResult) => {
  expect(result.output).toMatch(
    /FAILED (ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|TimeoutError|EAI_AGAIN|ENOTFOUND|UND_ERR_CONNECT_TIMEOUT)/,
  );
  expect(result.output).not.toMatch(/STATUS/);
};
export const notFound = (result: ToolResult) => {
  expect(result.output).toMatch(/No such file or directory|not found|does not exist|ENOENT/i);
};

/** A file another session of the same org wrote: the probing sessions must never see it. */
export const OTHER_SECRET = "other-session-secret-4242";

export interface ProbeSuite {
  readonly harness: () => SecurityHarness;
  readonly context: () => ProbeContext;
  readonly runs: readonly SessionRun[];
  readonly leaks: readonly string[];
  /** Runs probes as one session and checks each; every event is scanned for the marker. */
  runProbes(probes: readonly Probe[]): Promise<SessionRun>;
  /** Counts a host-side check as a probe (printed in the summary). */
  countProbe(): void;
}

/** Registers beforeAll/afterAll that start and stop the harness; prints `[security] <label>: N run, L leaks`. */
export function useProbeSuite(label: string, options: { env?: Record<string, string> } = {}): ProbeSuite {
  let harness: SecurityHarness | undefined;
  let context: ProbeContext | undefined;
  let probesRun = 0;
  const leaks: string[] = [];
  const runs: SessionRun[] = [];
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the probe harness did not start");
    return value;
  };

  beforeAll(async () => {
    harness = await startSecurityHarness(options);
    const home = harness.server.home;
    // The embedded cluster's config beside its data dir: port and where the cluster's files really are.
    const postgres = JSON.parse(await fs.readFile(path.join(home, "postgres.json"), "utf8")) as {
      port: number;
      clusterDir: string;
    };
    const hostAddress = Object.values(os.networkInterfaces())
      .flat()
      .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
    // Another session of the same org, with a file the probing sessions must not reach.
    const other = await harness.runSession([bash(`echo ${OTHER_SECRET} > /workspace/secret.txt`)]);
    expect(other.results[0]?.isError).toBe(false);
    context = {
      harness,
      home,
      serverPid: harness.server.child.pid ?? -1,
      postgresPort: postgres.port,
      postgresDir: postgres.clusterDir,
      hostAddress,
      otherWorkspace: path.join(home, "workspaces", other.sessionId),
    };
    await expect(fs.readFile(path.join(context.otherWorkspace, "secret.txt"), "utf8")).resolves.toBe(
      `${OTHER_SECRET}\n`,
    );
  }, 180_000);

  afterAll(async () => {
    console.log(`[security] ${label}: ${probesRun} run, ${leaks.length} leaks`);
    await harness?.close();
  });

  return {
    harness: () => need(harness),
    context: () => need(context),
    runs,
    leaks,
    countProbe() {
      probesRun += 1;
    },
    async runProbes(probes) {
      const running = need(harness);
      const probeContext = need(context);
      const run = await running.runSession(probes.map((probe) => probe.call(probeContext)));
      runs.push(run);
      if (run.raw.includes(running.marker))
        leaks.push(`session ${run.sessionId}: the marker appeared in its events`);
      expect(run.raw).not.toContain(running.marker);
      expect(run.events.at(-1)).toMatchObject({
        type: "session.status_idle",
        stop_reason: { type: "end_turn" },
      });
      expect(run.results).toHaveLength(probes.length);
      const failures: string[] = [];
      probes.forEach((probe, index) => {
        probesRun += 1;
        const result = run.results[index] as ToolResult;
        try {
          probe.check(result, probeContext);
        } catch (error) {
          failures.push(
            `${probe.name}: ${(error as Error).message}\n--- output:\n${result.output.slice(0, 2000)}`,
          );
        }
      });
      expect(failures, failures.join("\n\n")).toEqual([]);
      return run;
    },
  };
}
