import { describe, expect, it } from "vitest";
import { loadSandboxDefaults, mergeSandboxPolicy, SandboxPolicy, sandboxLimitsOf } from "./sandbox-policy.js";

describe("SandboxPolicy", () => {
  it("accepts partial policies and merges them over the defaults", () => {
    const policy = SandboxPolicy.parse({ memoryBytes: 128 * 1024 * 1024, coldAfterMs: 60_000 });
    const defaults = loadSandboxDefaults({}).policy;
    const merged = mergeSandboxPolicy(defaults, policy);
    expect(merged).toMatchObject({
      memoryBytes: 128 * 1024 * 1024,
      pids: 1024,
      coldAfterMs: 60_000,
      standbyAfterMs: 100,
    });
    expect(sandboxLimitsOf(merged)).toEqual({ memoryBytes: 128 * 1024 * 1024, pids: 1024, cpus: 1 });
    expect(mergeSandboxPolicy(defaults, null)).toEqual(defaults);
  });

  it.each([
    [{ pids: 0 }],
    [{ pids: 1.5 }],
    [{ cpus: 0 }],
    [{ memoryBytes: 1024 }],
    [{ diskBytes: "1G" }],
    [{ commandTimeoutMs: null }],
    [{ unknown: 1 }],
    [{ "pids\u0000": 10 }],
    [{ hibernateAfterMs: 10_000, coldAfterMs: 5_000 }],
    [{ coldAfterMs: 10_000, destroyAfterMs: 5_000 }],
  ])("rejects %j", (input) => {
    expect(SandboxPolicy.safeParse(input).success).toBe(false);
  });
});

describe("loadSandboxDefaults", () => {
  it("reads the environment, with pids 1024 and a week before destroy by default", () => {
    const defaults = loadSandboxDefaults({
      OUTRIG_SANDBOX_MEMORY_BYTES: "536870912",
      OUTRIG_SANDBOX_CPUS: "1.5",
      OUTRIG_SANDBOX_IDLE_MS: "60000",
      OUTRIG_STANDBY_AFTER_MS: "0",
      OUTRIG_WARM_POOL_SIZE: "2",
    });
    expect(defaults.policy).toMatchObject({
      memoryBytes: 536870912,
      cpus: 1.5,
      pids: 1024,
      coldAfterMs: 60_000,
      destroyAfterMs: 7 * 24 * 3600_000,
    });
    expect(defaults.policy.standbyAfterMs).toBeUndefined();
    expect(defaults.warmPoolSize).toBe(2);
  });

  it("limits memory, CPU, processes and command time when the operator sets nothing", () => {
    const defaults = loadSandboxDefaults({}).policy;
    expect(defaults).toMatchObject({
      memoryBytes: 1024 * 1024 * 1024,
      cpus: 1,
      pids: 1024,
      commandTimeoutMs: 600_000,
    });
    expect(sandboxLimitsOf(defaults)).toEqual({ memoryBytes: 1024 * 1024 * 1024, cpus: 1, pids: 1024 });
    // An org's policy still overrides each default.
    expect(
      mergeSandboxPolicy(defaults, SandboxPolicy.parse({ memoryBytes: 4 * 1024 ** 3, cpus: 2 })),
    ).toMatchObject({ memoryBytes: 4 * 1024 ** 3, cpus: 2, commandTimeoutMs: 600_000 });
  });

  it.each([
    ["OUTRIG_SANDBOX_PIDS", "lots"],
    ["OUTRIG_SANDBOX_MEMORY_BYTES", "12"],
    ["OUTRIG_SANDBOX_CPUS", "-1"],
    ["OUTRIG_SANDBOX_DISK_BYTES", "1.5"],
    ["OUTRIG_COMMAND_TIMEOUT_MS", "abc"],
    ["OUTRIG_SANDBOX_DESTROY_AFTER_MS", "5"],
    ["OUTRIG_WARM_POOL_SIZE", "-3"],
  ])("names %s when its value %j is bad", (name, value) => {
    expect(() => loadSandboxDefaults({ [name]: value })).toThrow(new RegExp(`Invalid ${name}`));
  });
});
