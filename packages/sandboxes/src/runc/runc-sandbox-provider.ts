/**
 * SandboxProvider on runc: one OCI container per sandbox, the same in-sandbox agent as bubblewrap
 * (on a unix socket instead of stdio), standby through `runc pause` and hibernate through
 * `runc checkpoint`/`restore` with CRIU >= 4. Linux and root only. Slower to start than bubblewrap
 * and without quotas or limit reporting; it exists for hibernate (see
 * docs/decisions/2026-12-04-runc-provider-for-hibernate.md).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type BlobStore,
  type CreateSandboxOptions,
  SandboxError,
  type SandboxProvider,
  type SnapshotRef,
} from "@outrig/core";
import { agentMessageBytesFor } from "../bubblewrap/agent-connection.js";
import { describeHostRoot, type HostRootEntry } from "../bubblewrap/bubblewrap-arguments.js";
import { resolveExecutable } from "../bubblewrap/check-bubblewrap.js";
import { executeOnlyNode } from "../bubblewrap/execute-only-node.js";
import { cgroupOwnerName } from "../cgroups/sandbox-cgroup.js";
import { prepareSandboxStateDirectory } from "../host-files/sandbox-state-directory.js";
import { ProviderSnapshots } from "../snapshots/provider-snapshots.js";
import { validateCreateOptions } from "../validate-create-options.js";
import {
  buildRuncConfig,
  HOST_ETC_ENTRIES,
  RUNC_AGENT_KEY_NAME,
  RUNC_AGENT_SOCKET_NAME,
  type RuncBundleLayout,
  writeSkeletonRootfs,
} from "./runc-bundle.js";
import { parseCriuVersion, type RuncCommandOptions, runBinary, runRuncDetached } from "./runc-cli.js";
import { RuncSandbox } from "./runc-sandbox.js";
import {
  describeRuncSweep,
  type RuncSweepResult,
  sweepOrphanedRuncContainers,
} from "./sweep-orphaned-containers.js";

export interface RuncSandboxProviderOptions {
  /** Path of runc, or a name looked up on PATH. Default "runc". */
  readonly runcPath?: string;
  /**
   * Path of a CRIU >= 4 binary (scripts/install-criu.sh builds one). Without it, hibernate() rejects
   * with `sandbox_unsupported`; everything else works.
   */
  readonly criuPath?: string;
  /** A prepared root filesystem (`outrig image build`); default: a skeleton with the host's /usr. */
  readonly rootfsDir?: string;
  /** Where bundles, agent sockets and checkpoints live. Keep it short (unix socket paths ≤ 107 bytes). */
  readonly stateDir?: string;
  /** runc's own state directory (`runc --root`). Default `<stateDir>/runc`. */
  readonly runcRoot?: string;
  readonly nodePath?: string;
  readonly hostname?: string;
  readonly tmpSizeBytes?: number;
  readonly maxFileBytes?: number;
  /** How long create() and a restore wait for the agent. Default 15 s. */
  readonly startTimeoutMs?: number;
  /** Where `snapshot()` stores workspace snapshots (as bubblewrap). Without it, snapshot() rejects. */
  readonly blobStore?: BlobStore;
  /** Blob keys are `<prefix>/<orgId>/<sessionId>/…`. Default "snapshots". */
  readonly snapshotKeyPrefix?: string;
  /** Receives one-line operational notices (e.g. what the orphan sweep deleted). Default: console.warn. */
  readonly log?: (line: string) => void;
}

const AGENT_PATH = fileURLToPath(new URL("../../agent/sandbox-agent.mjs", import.meta.url));
const AGENT_NODE_FLAGS = ["--max-old-space-size=256", "--max-semi-space-size=1", "--v8-pool-size=0"];

export class RuncSandboxProvider implements SandboxProvider {
  readonly id = "runc";
  readonly #options: RuncSandboxProviderOptions;
  readonly #sandboxes = new Set<RuncSandbox>();
  readonly #stateDir: string;
  #hostRoot: HostRootEntry[] | undefined;
  #isClosed = false;
  /** Workspace dir → the snapshot it was restored from, so its next snapshot is incremental. */
  readonly #snapshots: ProviderSnapshots;
  /** This server, as named in each container's owner annotation. */
  readonly #owner = cgroupOwnerName();
  /** The sweep started by the first create() (see sweepOrphans). */
  #firstSweep: Promise<RuncSweepResult | undefined> | undefined;

  constructor(options: RuncSandboxProviderOptions = {}) {
    this.#options = options;
    this.#snapshots = new ProviderSnapshots(options.blobStore, options.snapshotKeyPrefix);
    this.#stateDir = resolve(options.stateDir ?? join(tmpdir(), "outrig-runc"));
  }

  /** True when a CRIU binary was configured (hibernate available). */
  get canHibernate(): boolean {
    return this.#options.criuPath !== undefined;
  }

  async create(options: CreateSandboxOptions): Promise<RuncSandbox> {
    if (this.#isClosed) throw new SandboxError("sandbox_unavailable", "the sandbox provider is closed");
    const runcPath = resolveExecutable(this.#options.runcPath ?? "runc");
    if (runcPath === undefined)
      throw new SandboxError("sandbox_unavailable", 'runc is not installed: run "apt-get install -y runc"');
    if (process.getuid?.() !== 0)
      throw new SandboxError("sandbox_unavailable", "the runc provider needs root");
    validateCreateOptions(options);
    const workspaceDir = resolve(options.workspaceDir);
    await mkdir(workspaceDir, { recursive: true, mode: 0o755 });
    for (const mount of [...(options.readOnlyMounts ?? []), ...(options.writableMounts ?? [])]) {
      await stat(mount.hostPath).catch((error: unknown) => {
        throw new SandboxError(
          "sandbox_invalid_options",
          `read-only mount source is missing: ${mount.hostPath}`,
          {
            cause: error,
          },
        );
      });
    }
    this.#hostRoot ??= describeHostRoot();
    // Execute-only: the agent is then non-dumpable, out of reach of the commands it runs.
    const nodePath = await executeOnlyNode(resolve(this.#options.nodePath ?? process.execPath), {
      log: this.#options.log,
    });
    const id = `outrig-${randomUUID().slice(0, 8)}`;
    const directory = join(this.#stateDir, id);
    const bundleDir = join(directory, "bundle");
    const agentDir = join(directory, "agent");
    const runcRoot = this.#runcRoot();
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    await mkdir(runcRoot, { recursive: true, mode: 0o700 });
    // Not awaited: the sweep never deletes a container of this server, so create() need not wait.
    this.#firstSweep ??= this.#sweep({ runcPath, stateRoot: runcRoot });
    // Only the journal subdirectory is bound: the state directory itself stays the host's.
    const journalDir =
      options.stateDir === undefined
        ? undefined
        : await prepareSandboxStateDirectory(resolve(options.stateDir));
    const rootfsDir = this.#options.rootfsDir === undefined ? undefined : resolve(this.#options.rootfsDir);
    let criuConfigPath: string | undefined;
    if (
      this.#options.criuPath !== undefined &&
      resolveExecutable("iptables-restore", STANDARD_PATH) === undefined
    ) {
      // runc's CRIU RPC locks the network with iptables by default; without it, use nftables.
      criuConfigPath = join(directory, "criu.conf");
      await writeFile(criuConfigPath, "network-lock nftables\n");
    }
    const limits = options.limits ?? {};
    const layout: RuncBundleLayout = {
      uid: 0,
      gid: 0,
      userName: "sandbox",
      hostname: this.#options.hostname ?? "sandbox",
      nodePath,
      agentPath: AGENT_PATH,
      workspaceDir,
      nodeFlags: AGENT_NODE_FLAGS,
      maxMessageBytes: agentMessageBytesFor(this.#options.maxFileBytes ?? 32 * 1024 * 1024),
      tmpSizeBytes: this.#options.tmpSizeBytes,
      hostRoot: this.#hostRoot,
      readOnlyMounts: options.readOnlyMounts?.map((mount) => ({
        hostPath: resolve(mount.hostPath),
        sandboxPath: posix.normalize(mount.sandboxPath),
      })),
      writableMounts: options.writableMounts?.map((mount) => ({
        hostPath: resolve(mount.hostPath),
        sandboxPath: posix.normalize(mount.sandboxPath),
      })),
      extraEnv: options.env,
      egressDir:
        options.egressSocketPath === undefined ? undefined : dirname(resolve(options.egressSocketPath)),
      egressSocketName:
        options.egressSocketPath === undefined ? undefined : basename(options.egressSocketPath),
      stateDir: journalDir,
      agentDir,
      rootfsDir,
      hostEtcEntries: HOST_ETC_ENTRIES.filter((name) => existsSync(`/etc/${name}`)).map((name) => ({
        name,
        isDirectory: statSync(`/etc/${name}`).isDirectory(),
      })),
      memoryBytes: limits.memoryBytes,
      pids: limits.pids,
      cpus: limits.cpus,
      criuConfigPath,
      owner: this.#owner,
    };
    const rootPath = rootfsDir ?? join(directory, "rootfs");
    // The socket's directory is writable inside: the key lets the host tell the agent from an impostor.
    const channelKey = randomBytes(32);
    try {
      await writeFile(join(agentDir, RUNC_AGENT_KEY_NAME), channelKey.toString("hex"), { mode: 0o600 });
      if (rootfsDir === undefined) await writeSkeletonRootfs(rootPath, layout, this.#hostRoot);
      await mkdir(bundleDir, { recursive: true });
      await writeFile(
        join(bundleDir, "config.json"),
        JSON.stringify(buildRuncConfig(layout, rootPath), null, 2),
      );
    } catch (error) {
      await rm(directory, { recursive: true, force: true }).catch(() => undefined);
      throw new SandboxError("sandbox_unavailable", `cannot write the runc bundle: ${String(error)}`, {
        cause: error,
      });
    }
    const runc = { runcPath, stateRoot: runcRoot, criuPath: this.#options.criuPath };
    const sandbox = new RuncSandbox({
      id,
      directory,
      bundleDir,
      socketPath: join(agentDir, RUNC_AGENT_SOCKET_NAME),
      channelKey,
      workspaceDir,
      runc,
      maxFileBytes: this.#options.maxFileBytes ?? 32 * 1024 * 1024,
      connectTimeoutMs: this.#options.startTimeoutMs ?? 15_000,
      snapshotter: this.#snapshots.snapshotterFor(options, workspaceDir),
      onDestroyed: (destroyed) => this.#sandboxes.delete(destroyed),
    });
    this.#sandboxes.add(sandbox);
    try {
      await runRuncDetached(runc, ["run", "--detach", "--bundle", bundleDir, id]);
      await sandbox.connect();
    } catch (error) {
      await sandbox.destroy();
      throw error instanceof SandboxError
        ? error
        : new SandboxError("sandbox_unavailable", `sandbox failed to start: ${String(error)}`, {
            cause: error,
          });
    }
    return sandbox;
  }

  /**
   * Unpacks snapshot `ref` from the provider's BlobStore into `directory` (a fresh workspace dir for a
   * replacement sandbox); a sandbox created on it then snapshots incrementally on top of `ref`.
   */
  async restoreWorkspace(ref: SnapshotRef, directory: string): Promise<void> {
    await this.#snapshots.restore(ref, directory);
  }

  /**
   * Deletes the paused, created and stopped containers that servers which are gone left in this
   * provider's runc root (see sweep-orphaned-containers.ts); running ones are left. Runs by itself
   * once, at the first create(). Logs one line when it did anything; never throws. Resolves undefined
   * when runc is not installed.
   */
  sweepOrphans(): Promise<RuncSweepResult | undefined> {
    const runcPath = resolveExecutable(this.#options.runcPath ?? "runc");
    if (runcPath === undefined) return Promise.resolve(undefined);
    return this.#sweep({ runcPath, stateRoot: this.#runcRoot() });
  }

  async #sweep(runc: RuncCommandOptions): Promise<RuncSweepResult | undefined> {
    const log = this.#options.log ?? console.warn;
    try {
      const result = await sweepOrphanedRuncContainers(runc, { stateDir: this.#stateDir });
      const line = describeRuncSweep(result);
      if (line !== undefined) log(line);
      return result;
    } catch (error) {
      log(`outrig sandboxes: the orphaned runc container sweep failed: ${String(error)}`);
      return undefined;
    }
  }

  #runcRoot(): string {
    return resolve(this.#options.runcRoot ?? join(this.#stateDir, "runc"));
  }

  /** Destroys every sandbox this provider started; later create() calls fail. */
  async close(): Promise<void> {
    this.#isClosed = true;
    await Promise.all([...this.#sandboxes].map((sandbox) => sandbox.destroy()));
    await this.#firstSweep;
  }
}

export function createRuncSandboxProvider(options: RuncSandboxProviderOptions = {}): RuncSandboxProvider {
  return new RuncSandboxProvider(options);
}

const STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What checkRuncHibernate found: usable paths, or why hibernate cannot work here. */
export type RuncHibernateSupport =
  | {
      readonly isSupported: true;
      readonly runcPath: string;
      readonly criuPath: string;
      readonly criuVersion: string;
    }
  | { readonly isSupported: false; readonly reason: string };

/**
 * Checks that runc exists and that a CRIU >= 4 binary passes `criu check` on this kernel. Looks at
 * `criuPath`, then $OUTRIG_CRIU, then /var/cache/outrig-ci/criu-4.1.1/criu, then `criu` on PATH.
 */
export async function checkRuncHibernate(
  options: { readonly runcPath?: string; readonly criuPath?: string } = {},
): Promise<RuncHibernateSupport> {
  if (process.platform !== "linux" || process.getuid?.() !== 0)
    return { isSupported: false, reason: "runc and CRIU need Linux and root" };
  const runcPath = resolveExecutable(options.runcPath ?? "runc");
  if (runcPath === undefined)
    return { isSupported: false, reason: "runc is not installed (apt-get install runc)" };
  if (
    resolveExecutable("ip", STANDARD_PATH) === undefined ||
    resolveExecutable("nsenter", STANDARD_PATH) === undefined
  )
    return { isSupported: false, reason: "ip or nsenter is missing (apt-get install iproute2 util-linux)" };
  const candidates = [
    options.criuPath,
    process.env.OUTRIG_CRIU,
    "/var/cache/outrig-ci/criu-4.1.1/criu",
    resolveExecutable("criu", STANDARD_PATH),
  ].filter((path): path is string => path !== undefined && path !== "" && isAbsolute(path));
  const problems: string[] = [];
  for (const criuPath of candidates) {
    if (!existsSync(criuPath)) continue;
    const version = parseCriuVersion(await runBinary(criuPath, ["--version"], 10_000).catch(() => ""));
    if (version === undefined || Number.parseInt(version, 10) < 4) {
      problems.push(`${criuPath} is CRIU ${version ?? "?"} (need >= 4)`);
      continue;
    }
    try {
      await runBinary(criuPath, ["check"], 30_000);
    } catch (error) {
      problems.push(`${criuPath} check failed: ${(error as Error).message}`);
      continue;
    }
    return { isSupported: true, runcPath, criuPath, criuVersion: version };
  }
  return {
    isSupported: false,
    reason:
      problems.length > 0
        ? problems.join("; ")
        : "no CRIU binary found (run scripts/install-criu.sh or set OUTRIG_CRIU)",
  };
}
