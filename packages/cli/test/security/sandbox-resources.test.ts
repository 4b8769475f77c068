/**
 * Resource exhaustion and a sabotaged agent, from inside a real sandbox through a real `outrig serve`
 * (see sandbox-probes.test.ts): mass forking against the pids limit, a fork bomb, a full /tmp and a
 * full workspace quota, `kill -STOP $PPID` and a killed agent. Each is contained and the next call works.
 * Limits are enforced only when the server runs as root (cgroups, the loop-mounted quota).
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bash, isRoot, type Probe, useProbeSuite } from "./probe-kit.js";

/** The pids controller the server's sandboxes are limited by (cgroup v1 or v2). */
const hasPidsController =
  existsSync("/sys/fs/cgroup/pids") ||
  (existsSync("/sys/fs/cgroup/cgroup.controllers") &&
    readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes("pids"));
/** The workspace quota is a loop-mounted ext4 image: root, loop devices and mkfs.ext4. */
const canQuota =
  isRoot &&
  existsSync("/dev/loop-control") &&
  ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"].some((file) => existsSync(file));
const canRun = isRoot && hasPidsController;
if (!canRun)
  console.log("[security] sandbox resource probes skipped: they need root and a pids cgroup controller");

const fillWorkspace: Probe = {
  name: "filling the workspace stops at its disk quota",
  call: () =>
    bash(
      "dd if=/dev/zero of=/workspace/fill bs=1M count=512 2>&1 | grep -o 'No space left on device'; du -m /workspace/fill | cut -f1; rm -f /workspace/fill",
      120_000,
    ),
  check: (result) => {
    expect(result.output).toContain("No space left on device");
    expect(Number(result.output.trim().split("\n").at(-1))).toBeLessThanOrEqual(64);
  },
};

const resourceProbes: Probe[] = [
  {
    name: "a process limit stops mass forking",
    call: () =>
      bash(
        // perl's fork fails at once at the limit (bash would retry each failed fork for ~30 s).
        `perl -e 'my @p; for (1..1500) { my $p = fork(); last unless defined $p; if ($p == 0) { close STDOUT; close STDERR; sleep 60; exit 0 } push @p, $p } print "started=", scalar(@p), "\\n"; kill "KILL", @p; waitpid($_, 0) for @p; print "cleaned\\n"'`,
        60_000,
      ),
    check: (result) => {
      const started = Number(/started=(\d+)/.exec(result.output)?.[1]);
      expect(started).toBeGreaterThan(100);
      expect(started).toBeLessThan(1024);
      expect(result.output).toContain("cleaned");
    },
  },
  {
    name: "a fork bomb is contained and killed",
    // Only once a limit is measured in the sandbox: without one the bomb would load the whole host.
    call: () =>
      bash(
        `n=$(perl -e 'my @p; for (1..1100) { my $p = fork(); last unless defined $p; if ($p == 0) { close STDOUT; sleep 30; exit 0 } push @p, $p } print scalar(@p); kill "KILL", @p; waitpid($_, 0) for @p'); if [ "$n" -lt 1100 ]; then timeout -s KILL 8 bash -c 'b(){ b | b & }; b' >/dev/null 2>&1; sleep 1; echo bomb-over; else echo "no process limit: bomb not run"; fi`,
        120_000,
      ),
    check: (result) => expect(result.output).toContain("bomb-over"),
  },
  {
    name: "the fork bomb's leftovers are killed by the server",
    // Either the bomb was already gone, or this call found the process limit full: then the server
    // kills every command in the sandbox and says so.
    call: () => bash("sleep 2; echo alive", 60_000),
    check: (result) =>
      expect(result.output).toMatch(
        /alive|process limit was reached[^\n]*every running command in the sandbox was killed/,
      ),
  },
  {
    name: "the session goes on after the fork bomb",
    call: () => bash("echo alive; ls /proc | grep -c '^[0-9]'", 60_000),
    check: (result) => {
      expect(result.output).toContain("alive");
      expect(Number(result.output.trim().split("\n").at(-1))).toBeLessThan(50);
    },
  },
  {
    name: "filling /tmp stops at its size limit",
    call: () =>
      bash(
        "dd if=/dev/zero of=/tmp/fill bs=1M count=2048 2>&1 | grep -o 'No space left on device'; du -m /tmp/fill | cut -f1; rm -f /tmp/fill",
        120_000,
      ),
    check: (result) => {
      expect(result.output).toContain("No space left on device");
      expect(Number(result.output.trim().split("\n").at(-1))).toBeLessThanOrEqual(512);
    },
  },
  ...(canQuota ? [fillWorkspace] : []),
  {
    name: "the workspace is writable (again, after it was full)",
    call: () => ({ name: "write", input: { file_path: "/workspace/after-full.txt", content: "ok\n" } }),
    check: (result) => expect(result.isError).toBe(false),
  },
  {
    name: "kill -STOP of the command's parent does not hang the session",
    call: () => bash("kill -STOP $PPID; echo sent", 5_000),
    // The agent cannot answer; the server gives up on it past the timeout and says so.
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).toMatch(/did not answer/);
    },
  },
  {
    name: "the session goes on after its agent was stopped",
    call: () => bash("echo alive-after-stop", 60_000),
    check: (result) => expect(result.output).toContain("alive-after-stop"),
  },
  {
    name: "killing the sandbox agent does not hang the session",
    call: () => bash("kill -KILL $PPID; echo sent", 5_000),
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).not.toContain("sent\n");
    },
  },
  {
    name: "the session goes on after its agent was killed",
    call: () => bash("echo alive-after-kill; cat /workspace/after-full.txt", 60_000),
    check: (result) => expect(result.output).toContain("alive-after-kill\nok"),
  },
];

// A 64 MiB workspace quota for every session (a loop-mounted image; needs root).
const suite = useProbeSuite("sandbox resource probes", {
  env: canQuota ? { OUTRIG_SANDBOX_DISK_BYTES: String(64 * 1024 * 1024) } : {},
});

describe.runIf(canRun)("resource exhaustion and a sabotaged agent", () => {
  it("are contained and the session goes on", async () => {
    await suite.runProbes(resourceProbes);
  }, 600_000);
});

describe.runIf(canRun)("the planted marker", () => {
  it("is in no event of any probing session", () => {
    suite.countProbe();
    expect(suite.runs.length).toBeGreaterThanOrEqual(1);
    for (const run of suite.runs) expect(JSON.stringify(run.events)).not.toContain(suite.harness().marker);
    expect(suite.leaks).toEqual([]);
  });
});
