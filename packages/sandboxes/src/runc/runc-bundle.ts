/**
 * The OCI bundle of one runc sandbox: config.json and, without a prepared image, a skeleton rootfs
 * whose /usr, /bin, /lib… are the host's, bound read-only. Kept small on purpose: every mount is work
 * for CRIU at checkpoint and restore time.
 */
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  agentMessageBound,
  HOST_ETC_ENTRIES,
  type HostRootEntry,
  SANDBOX_AGENT_PATH,
  SANDBOX_EGRESS_DIR,
  SANDBOX_NODE_PATH,
  SANDBOX_STATE_DIR,
  SANDBOX_WORKSPACE,
  type SandboxLayout,
  sandboxDataFiles,
  sandboxEnvironment,
} from "../bubblewrap/bubblewrap-arguments.js";
import { SECCOMP_DENIED_SYSCALLS } from "../bubblewrap/seccomp-filter.js";

/** Where the directory holding the agent's unix socket appears inside the sandbox. */
export const RUNC_AGENT_DIR = "/run/outrig/agent";
export const RUNC_AGENT_SOCKET_NAME = "agent.sock";
/** The channel key file (hex) the agent reads and deletes before it listens (see AgentConnection). */
export const RUNC_AGENT_KEY_NAME = "agent.key";

export interface RuncBundleLayout extends SandboxLayout {
  /** Host directory holding the agent's socket, bound writable at RUNC_AGENT_DIR. */
  readonly agentDir: string;
  /** A prepared root filesystem (e.g. `outrig image build`), or undefined for the host-based skeleton. */
  readonly rootfsDir?: string;
  /** Which host /etc entries exist (checked by the caller), bound read-only into the skeleton's /etc. */
  readonly hostEtcEntries: readonly { readonly name: string; readonly isDirectory: boolean }[];
  readonly memoryBytes?: number;
  readonly pids?: number;
  readonly cpus?: number;
  /** Path of a CRIU config file for the `org.criu.config` annotation (e.g. `network-lock nftables`). */
  readonly criuConfigPath?: string;
  /** The owning server (`cgroupOwnerName()`), written as the `org.outrig.owner` annotation for the orphan sweep. */
  readonly owner?: string;
}

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

function bind(source: string, destination: string, readOnly: boolean): OciMount {
  return {
    destination,
    type: "bind",
    source,
    options: ["rbind", readOnly ? "ro" : "rw", "nosuid", "nodev"],
  };
}

/**
 * The command runc starts: bash as pid 1, which reaps orphaned commands (node would leave them as
 * zombies that count against the pids limit), with the agent as its child; the container's stdio
 * is reopened on its own /dev/null (CRIU refuses host pipes and files). bash exits with the agent.
 */
export function runcAgentCommand(layout: RuncBundleLayout): string[] {
  const egress =
    layout.egressSocketName === undefined
      ? []
      : ["--egress-socket", `${SANDBOX_EGRESS_DIR}/${layout.egressSocketName}`];
  const journal = layout.stateDir === undefined ? [] : ["--journal", `${SANDBOX_STATE_DIR}/journal.ndjson`];
  const agent = [
    SANDBOX_NODE_PATH,
    ...layout.nodeFlags,
    SANDBOX_AGENT_PATH,
    "--listen",
    `${RUNC_AGENT_DIR}/${RUNC_AGENT_SOCKET_NAME}`,
    "--key-file",
    `${RUNC_AGENT_DIR}/${RUNC_AGENT_KEY_NAME}`,
    ...egress,
    ...journal,
    ...agentMessageBound(layout),
  ];
  const quoted = agent.map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(" ");
  // CRIU cannot checkpoint fds that point at host files or pipes: stdio is reopened inside.
  return ["/bin/bash", "-c", `exec </dev/null >/dev/null 2>&1; ${quoted} & wait $!`];
}

/** config.json for `runc run` and `runc restore`. Pure. */
export function buildRuncConfig(layout: RuncBundleLayout, rootPath: string): Record<string, unknown> {
  const mounts: OciMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
      destination: "/tmp",
      type: "tmpfs",
      source: "tmpfs",
      options: [
        "nosuid",
        "nodev",
        "mode=1777",
        ...(layout.tmpSizeBytes === undefined ? [] : [`size=${layout.tmpSizeBytes}`]),
      ],
    },
  ];
  if (layout.rootfsDir === undefined) {
    mounts.push(bind("/usr", "/usr", true));
    for (const entry of layout.hostRoot)
      if (entry.kind === "directory") mounts.push(bind(`/${entry.name}`, `/${entry.name}`, true));
    for (const entry of layout.hostEtcEntries)
      mounts.push(bind(`/etc/${entry.name}`, `/etc/${entry.name}`, true));
  }
  mounts.push(
    bind(layout.nodePath, SANDBOX_NODE_PATH, true),
    bind(layout.agentPath, SANDBOX_AGENT_PATH, true),
    bind(layout.workspaceDir, SANDBOX_WORKSPACE, false),
    bind(layout.agentDir, RUNC_AGENT_DIR, false),
  );
  for (const mount of layout.readOnlyMounts ?? []) mounts.push(bind(mount.hostPath, mount.sandboxPath, true));
  for (const mount of layout.writableMounts ?? [])
    mounts.push(bind(mount.hostPath, mount.sandboxPath, false));
  if (layout.egressDir !== undefined) mounts.push(bind(layout.egressDir, SANDBOX_EGRESS_DIR, true));
  if (layout.stateDir !== undefined) mounts.push(bind(layout.stateDir, SANDBOX_STATE_DIR, false));

  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: "rwm" }],
  };
  if (layout.memoryBytes !== undefined) resources.memory = { limit: Math.floor(layout.memoryBytes) };
  if (layout.pids !== undefined) resources.pids = { limit: Math.floor(layout.pids) };
  if (layout.cpus !== undefined)
    resources.cpu = { quota: Math.round(layout.cpus * 100_000), period: 100_000 };

  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: runcAgentCommand(layout),
      env: Object.entries(sandboxEnvironment(layout)).map(([name, value]) => `${name}=${value}`),
      cwd: SANDBOX_WORKSPACE,
      // Root inside, but without any capability: it can neither mount nor reach past DAC checks.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootPath, readonly: true },
    hostname: layout.hostname,
    mounts,
    annotations: {
      ...(layout.criuConfigPath === undefined ? {} : { "org.criu.config": layout.criuConfigPath }),
      ...(layout.owner === undefined ? {} : { "org.outrig.owner": layout.owner }),
    },
    linux: {
      resources,
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      ...runcSeccomp(),
    },
  };
}

/** runc's names for the architectures of the bubblewrap filter's tables. */
const RUNC_ARCHITECTURES: Readonly<Record<string, string>> = {
  x64: "SCMP_ARCH_X86_64",
  arm64: "SCMP_ARCH_AARCH64",
};

/**
 * The same deny list as bubblewrap's filter (seccomp-filter.ts), in OCI form: EPERM for each denied
 * call, everything else allowed; only the native ABI is listed, so a foreign one gets no syscalls.
 */
function runcSeccomp(arch: string = process.arch): { seccomp?: Record<string, unknown> } {
  const architecture = RUNC_ARCHITECTURES[arch];
  if (architecture === undefined) return {};
  return {
    seccomp: {
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: [architecture],
      syscalls: [{ names: [...SECCOMP_DENIED_SYSCALLS], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
    },
  };
}

/**
 * Writes the skeleton rootfs under `rootDir`: mount points for the host's /usr and top-level
 * directories, symlinks for merged-/usr links, the synthetic /etc files, and the agent's mount points.
 */
export async function writeSkeletonRootfs(
  rootDir: string,
  layout: RuncBundleLayout,
  hostRoot: readonly HostRootEntry[],
): Promise<void> {
  for (const directory of ["usr", "etc", "proc", "dev", "tmp", "workspace", "opt/outrig/bin", "run/outrig"])
    await mkdir(join(rootDir, directory), { recursive: true });
  for (const entry of hostRoot) {
    if (entry.kind === "symlink") await symlink(entry.target, join(rootDir, entry.name));
    else await mkdir(join(rootDir, entry.name), { recursive: true });
  }
  for (const entry of layout.hostEtcEntries) {
    const target = join(rootDir, "etc", entry.name);
    if (entry.isDirectory) await mkdir(target, { recursive: true });
    else {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, "");
    }
  }
  for (const file of sandboxDataFiles(layout)) await writeFile(join(rootDir, file.destination), file.content);
  for (const file of [SANDBOX_NODE_PATH, SANDBOX_AGENT_PATH]) {
    await mkdir(join(rootDir, dirname(file)), { recursive: true });
    await writeFile(join(rootDir, file), "");
  }
}

export { HOST_ETC_ENTRIES };
