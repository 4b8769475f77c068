/**
 * Per-org sandbox policy: limits for new sandboxes and the idle times of the lifecycle
 * (running → standby → hibernated → cold → destroyed). An org's stored policy overrides the
 * server's defaults field by field; a field it omits keeps the default.
 */
import { ConfigError } from "@outrig/core";
import { z } from "zod";

const MIB = 1024 * 1024;
const DAY_MS = 24 * 3600_000;
const MAX_IDLE_MS = 365 * DAY_MS;

/** What PUT /v1/sandbox-policy accepts and the database stores. Every field is optional. */
export const SandboxPolicy = z
  .strictObject({
    memoryBytes: z
      .number()
      .int()
      .min(16 * MIB)
      .max(2 ** 50),
    pids: z.number().int().min(16).max(4_194_304),
    cpus: z.number().min(0.01).max(1024),
    diskBytes: z
      .number()
      .int()
      .min(MIB)
      .max(2 ** 50),
    commandTimeoutMs: z.number().int().min(100).max(DAY_MS),
    standbyAfterMs: z.number().int().min(10).max(MAX_IDLE_MS),
    hibernateAfterMs: z.number().int().min(100).max(MAX_IDLE_MS),
    coldAfterMs: z.number().int().min(100).max(MAX_IDLE_MS),
    destroyAfterMs: z.number().int().min(100).max(MAX_IDLE_MS),
  })
  .partial()
  .superRefine((policy, context) => {
    const order = ["standbyAfterMs", "hibernateAfterMs", "coldAfterMs", "destroyAfterMs"] as const;
    const given = order.filter((key) => policy[key] !== undefined);
    for (let index = 1; index < given.length; index += 1) {
      const earlier = given[index - 1] as (typeof order)[number];
      const later = given[index] as (typeof order)[number];
      if ((policy[later] as number) < (policy[earlier] as number))
        context.addIssue({
          code: "custom",
          path: [later],
          message: `must not be less than ${earlier} (idle states follow each other)`,
        });
    }
  });
export type SandboxPolicy = z.infer<typeof SandboxPolicy>;

/** The policy in force: defaults merged with the org's policy. Undefined limits/times: none/never. */
export interface EffectiveSandboxPolicy {
  readonly memoryBytes?: number;
  readonly pids?: number;
  readonly cpus?: number;
  readonly diskBytes?: number;
  readonly commandTimeoutMs?: number;
  readonly standbyAfterMs?: number;
  readonly hibernateAfterMs?: number;
  readonly coldAfterMs: number;
  readonly destroyAfterMs: number;
}

export function mergeSandboxPolicy(
  defaults: EffectiveSandboxPolicy,
  policy: SandboxPolicy | null | undefined,
): EffectiveSandboxPolicy {
  const merged: Record<string, number | undefined> = { ...defaults };
  for (const [key, value] of Object.entries(policy ?? {})) if (value !== undefined) merged[key] = value;
  return merged as unknown as EffectiveSandboxPolicy;
}

/** The limits part, as the sandbox provider takes it. */
export function sandboxLimitsOf(policy: EffectiveSandboxPolicy) {
  const { memoryBytes, pids, cpus, diskBytes } = policy;
  return Object.fromEntries(
    Object.entries({ memoryBytes, pids, cpus, diskBytes }).filter(([, value]) => value !== undefined),
  ) as { memoryBytes?: number; pids?: number; cpus?: number; diskBytes?: number };
}

const positiveInteger = (minimum: number) =>
  z.coerce
    .number()
    .int()
    .min(minimum)
    .max(2 ** 50);

/**
 * Limits every sandbox gets unless the operator or an org sets others: enough for builds and test
 * suites, small enough that one session cannot take the machine's memory or all its cores, and a
 * command time limit equal to the longest timeout the Bash tool accepts (10 min), so no call path
 * runs a command for longer. An org's policy may raise or lower each one.
 */
export const DEFAULT_SANDBOX_LIMITS = {
  memoryBytes: 1024 * MIB,
  cpus: 1,
  pids: 1024,
  commandTimeoutMs: 10 * 60_000,
} as const;

const SandboxEnv = z.object({
  OUTRIG_SANDBOX_MEMORY_BYTES: positiveInteger(16 * MIB).default(DEFAULT_SANDBOX_LIMITS.memoryBytes),
  OUTRIG_SANDBOX_PIDS: positiveInteger(16).default(DEFAULT_SANDBOX_LIMITS.pids),
  OUTRIG_SANDBOX_CPUS: z.coerce.number().min(0.01).max(1024).default(DEFAULT_SANDBOX_LIMITS.cpus),
  OUTRIG_SANDBOX_DISK_BYTES: positiveInteger(MIB).optional(),
  OUTRIG_COMMAND_TIMEOUT_MS: positiveInteger(100).default(DEFAULT_SANDBOX_LIMITS.commandTimeoutMs),
  /** 0: never freeze. */
  OUTRIG_STANDBY_AFTER_MS: z.coerce.number().int().min(0).default(100),
  /** Checkpoint (CRIU) after this long idle, where the provider can; 0: never. Default 5 min. */
  OUTRIG_HIBERNATE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 50)
    .default(5 * 60_000),
  /** The cold time: final snapshot, processes killed, local workspace dropped. */
  OUTRIG_SANDBOX_IDLE_MS: positiveInteger(1000).default(15 * 60_000),
  OUTRIG_SANDBOX_DESTROY_AFTER_MS: positiveInteger(1000).default(7 * DAY_MS),
  /** How many pre-started (warm) session sandboxes may wait for their first tool call. 0: none. */
  OUTRIG_WARM_POOL_SIZE: z.coerce.number().int().min(0).max(10_000).default(4),
});

export interface SandboxDefaults {
  readonly policy: EffectiveSandboxPolicy;
  readonly warmPoolSize: number;
}

/** Reads the sandbox defaults from the environment; throws ConfigError naming the bad variable. */
export function loadSandboxDefaults(env: Readonly<Record<string, string | undefined>>): SandboxDefaults {
  const present = Object.fromEntries(
    Object.keys(SandboxEnv.shape)
      .map((key) => [key, env[key]?.trim()])
      .filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = SandboxEnv.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join(".") ?? "environment";
    throw new ConfigError("invalid_config", `Invalid ${key}: ${issue?.message ?? "bad value"}`);
  }
  const values = parsed.data;
  return {
    policy: {
      memoryBytes: values.OUTRIG_SANDBOX_MEMORY_BYTES,
      pids: values.OUTRIG_SANDBOX_PIDS,
      cpus: values.OUTRIG_SANDBOX_CPUS,
      diskBytes: values.OUTRIG_SANDBOX_DISK_BYTES,
      commandTimeoutMs: values.OUTRIG_COMMAND_TIMEOUT_MS,
      standbyAfterMs: values.OUTRIG_STANDBY_AFTER_MS === 0 ? undefined : values.OUTRIG_STANDBY_AFTER_MS,
      hibernateAfterMs: values.OUTRIG_HIBERNATE_AFTER_MS === 0 ? undefined : values.OUTRIG_HIBERNATE_AFTER_MS,
      coldAfterMs: values.OUTRIG_SANDBOX_IDLE_MS,
      destroyAfterMs: values.OUTRIG_SANDBOX_DESTROY_AFTER_MS,
    },
    warmPoolSize: values.OUTRIG_WARM_POOL_SIZE,
  };
}
