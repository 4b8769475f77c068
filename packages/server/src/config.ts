/** Server configuration, parsed once at startup from the environment. Nothing below the server reads process.env. */
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "@outrig/core";
import { z } from "zod";
import { parseEgressHosts } from "./egress/parse-egress-hosts.js";
import { loadRateLimits, type RateLimits } from "./middleware/rate-limits.js";
import { loadOperationsConfig, type OperationsConfig } from "./ops/operations-config.js";
import { loadSandboxDefaults, type SandboxDefaults } from "./sandbox-policy.js";

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const EnvSchema = z.object({
  OUTRIG_HOME: optionalString,
  OUTRIG_PORT: z.coerce.number().int().min(0).max(65535).default(7070),
  OUTRIG_HOST: z.string().default("127.0.0.1"),
  DATABASE_URL: optionalString,
  ANTHROPIC_API_KEY: optionalString,
  ANTHROPIC_BASE_URL: optionalString,
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString,
  OPENAI_COMPATIBLE_API_KEY: optionalString,
  OPENAI_COMPATIBLE_BASE_URL: optionalString,
  OUTRIG_MAX_STEPS: z.coerce.number().int().min(1).max(10_000).default(200),
  OUTRIG_SANDBOX_IDLE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(15 * 60_000),
  OUTRIG_WORKER_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: "use 1-64 letters, digits, dots, dashes or underscores" })
    .optional(),
  OUTRIG_WORKFLOW_VERSION: optionalString,
  /** Milliseconds without a heartbeat after which a worker counts as dead. */
  OUTRIG_WORKER_DEAD_AFTER_MS: z.coerce.number().int().min(1000).default(10_000),
  /** Freeze a sandbox after this many ms without a tool call (0: never). */
  OUTRIG_STANDBY_AFTER_MS: z.coerce.number().int().min(0).default(100),
  /** Size of each sandbox's /tmp tmpfs in MiB (default 512): /tmp is memory, so it is bounded. */
  OUTRIG_SANDBOX_TMP_MB: z.coerce.number().int().min(1).max(1_048_576).default(512),
  /**
   * `bubblewrap` (default) or `runc`: runc sandboxes can also hibernate (a CRIU checkpoint on disk,
   * memory freed); they need root, runc and CRIU >= 4 (scripts/install-criu.sh).
   */
  OUTRIG_SANDBOX_PROVIDER: z.enum(["bubblewrap", "runc"]).default("bubblewrap"),
  /** Base64 of 32 bytes; otherwise a key file is created in OUTRIG_HOME on first start. */
  OUTRIG_MASTER_KEY: optionalString,
  /** Internal hosts egress may reach at fixed addresses: `git.corp=10.0.0.5,other=127.0.0.1`. */
  OUTRIG_EGRESS_HOSTS: optionalString,
  /** PEM file of extra CAs egress trusts for upstream TLS (a private CA), beside Node's roots. */
  OUTRIG_EGRESS_CA_FILE: optionalString,
  /** How long a stopping server lets running tool calls and model calls finish (ms). */
  OUTRIG_DRAIN_MS: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  /** How often each org's audit head is checkpointed outside the database (ms). */
  OUTRIG_AUDIT_CHECKPOINT_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
  /** A SearXNG-compatible JSON search endpoint for the toolset's web_search (not offered without one). */
  OUTRIG_WEB_SEARCH_URL: optionalString.refine(
    (value) => value === undefined || /^https?:\/\/[^\s]+$/.test(value),
    { message: "use an http(s) URL of a SearXNG-compatible search endpoint" },
  ),
  /** The npm registry environments' `packages.npm` are installed from (its host is the build's only way out). */
  OUTRIG_NPM_REGISTRY: z
    .string()
    .regex(/^https?:\/\/[^\s'"]+$/, { message: "use an http(s) URL of an npm registry" })
    .default("https://registry.npmjs.org/"),
  /** The host's npm package directory (holding bin/npm-cli.js), bound into package build sandboxes. */
  OUTRIG_NPM_CLI_DIR: optionalString,
  /** A package layer build longer than this fails (ms). */
  OUTRIG_PACKAGE_BUILD_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(600_000),
  /** Fault injection for crash tests: SIGKILL this process right after its Nth session-event append. */
  OUTRIG_FAULT_KILL_AFTER_APPEND: z.coerce.number().int().min(1).optional(),
});

export interface ServerConfig {
  readonly home: string;
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly models: {
    readonly anthropic: { readonly apiKey?: string; readonly baseURL?: string };
    readonly openai: { readonly apiKey?: string; readonly baseURL?: string };
    readonly openaiCompatible: { readonly apiKey?: string; readonly baseURL?: string };
  };
  readonly maxSteps: number;
  readonly sandboxIdleMs: number;
  /** Unique, stable id of this worker for the durable engine. */
  readonly workerId: string;
  readonly workflowVersion: string | undefined;
  readonly workerDeadAfterMs: number;
  readonly faultKillAfterAppend: number | undefined;
  /** OUTRIG_DRAIN_MS: how long a stop waits for running steps before leaving them to their sandboxes. */
  readonly drainMs: number;
  readonly masterKey: string | undefined;
  readonly standbyAfterMs: number | undefined;
  /** Size limit of each sandbox's /tmp in bytes. */
  readonly sandboxTmpBytes: number;
  readonly sandboxProvider: "bubblewrap" | "runc";
  /** Host names egress connects to at operator-given addresses (no DNS, no address policy). */
  readonly egressHosts: ReadonlyMap<string, readonly string[]>;
  /** OUTRIG_EGRESS_CA_FILE: extra CAs (PEM) egress trusts for upstream TLS, beside Node's roots. */
  readonly egressCaFile?: string;
  /** Interval of the audit checkpoints in OUTRIG_HOME/audit-checkpoints. */
  readonly auditCheckpointMs: number;
  /** Sandbox limits and idle times (OUTRIG_SANDBOX_*), overridable per org; warm start bound. */
  readonly sandbox: SandboxDefaults;
  /** Requests per second and open event streams per key and per org (OUTRIG_RATE_*). */
  readonly rateLimits: RateLimits;
  /** OUTRIG_WEB_SEARCH_URL: the search backend of the toolset's web_search, if any. */
  readonly webSearchUrl?: string;
  /** Logs, metrics and traces (OUTRIG_LOG_*, OUTRIG_METRICS_LISTEN, OTEL_*); omitted: the defaults. */
  readonly operations?: OperationsConfig;
  /** Environment packages: the npm registry, the host's npm, and the build time limit. */
  readonly packages: {
    readonly npmRegistry: string;
    readonly npmCliDir?: string;
    readonly buildTimeoutMs: number;
  };
}

/** Parses the environment. Throws ConfigError naming the exact key on bad input. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join(".") ?? "environment";
    throw new ConfigError("invalid_config", `Invalid ${key}: ${issue?.message ?? "bad value"}`);
  }
  const values = parsed.data;
  let egressHosts: ReadonlyMap<string, readonly string[]>;
  try {
    egressHosts = parseEgressHosts(values.OUTRIG_EGRESS_HOSTS);
  } catch (error) {
    throw new ConfigError("invalid_config", `Invalid OUTRIG_EGRESS_HOSTS: ${(error as Error).message}`);
  }
  const sandbox = loadSandboxDefaults(env);
  const rateLimits = loadRateLimits(env);
  const operations = loadOperationsConfig(env);
  const definedOnly = <T extends Record<string, string | undefined>>(record: T) =>
    Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as {
      [K in keyof T]?: string;
    };
  const home = path.resolve(values.OUTRIG_HOME ?? path.join(os.homedir(), ".outrig"));
  return {
    home,
    port: values.OUTRIG_PORT,
    host: values.OUTRIG_HOST,
    databaseUrl: values.DATABASE_URL,
    models: {
      anthropic: definedOnly({ apiKey: values.ANTHROPIC_API_KEY, baseURL: values.ANTHROPIC_BASE_URL }),
      openai: definedOnly({ apiKey: values.OPENAI_API_KEY, baseURL: values.OPENAI_BASE_URL }),
      openaiCompatible: definedOnly({
        apiKey: values.OPENAI_COMPATIBLE_API_KEY ?? values.OPENAI_API_KEY,
        baseURL: values.OPENAI_COMPATIBLE_BASE_URL ?? values.OPENAI_BASE_URL,
      }),
    },
    maxSteps: values.OUTRIG_MAX_STEPS,
    sandboxIdleMs: values.OUTRIG_SANDBOX_IDLE_MS,
    // Stable across restarts of the same installation (so it resumes its own work), distinct across homes.
    workerId:
      values.OUTRIG_WORKER_ID ??
      `${os
        .hostname()
        .replace(/[^A-Za-z0-9._-]/g, "-")
        .slice(0, 40)}-${createHash("sha256").update(home).digest("hex").slice(0, 8)}`,
    workflowVersion: values.OUTRIG_WORKFLOW_VERSION,
    workerDeadAfterMs: values.OUTRIG_WORKER_DEAD_AFTER_MS,
    faultKillAfterAppend: values.OUTRIG_FAULT_KILL_AFTER_APPEND,
    drainMs: values.OUTRIG_DRAIN_MS,
    masterKey: values.OUTRIG_MASTER_KEY,
    standbyAfterMs: values.OUTRIG_STANDBY_AFTER_MS === 0 ? undefined : values.OUTRIG_STANDBY_AFTER_MS,
    sandboxTmpBytes: values.OUTRIG_SANDBOX_TMP_MB * 1024 * 1024,
    sandboxProvider: values.OUTRIG_SANDBOX_PROVIDER,
    egressHosts,
    ...(values.OUTRIG_EGRESS_CA_FILE ? { egressCaFile: path.resolve(values.OUTRIG_EGRESS_CA_FILE) } : {}),
    auditCheckpointMs: values.OUTRIG_AUDIT_CHECKPOINT_MS,
    sandbox,
    rateLimits,
    operations,
    ...(values.OUTRIG_WEB_SEARCH_URL ? { webSearchUrl: values.OUTRIG_WEB_SEARCH_URL } : {}),
    packages: {
      npmRegistry: values.OUTRIG_NPM_REGISTRY,
      ...(values.OUTRIG_NPM_CLI_DIR ? { npmCliDir: values.OUTRIG_NPM_CLI_DIR } : {}),
      buildTimeoutMs: values.OUTRIG_PACKAGE_BUILD_TIMEOUT_MS,
    },
  };
}
