/**
 * Builds the bwrap command line for one sandbox. Pure apart from `describeHostRoot`, which looks at
 * how the host lays out /bin, /lib… once. See the package README for why each flag is there.
 */
import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { posix } from "node:path";

/** Where the host's node binary and the agent file appear inside the sandbox. */
export const SANDBOX_NODE_PATH = "/opt/outrig/bin/node";
export const SANDBOX_AGENT_PATH = "/opt/outrig/agent/sandbox-agent.mjs";
export const SANDBOX_WORKSPACE = "/workspace";
/** Where the directory holding the egress proxy's unix socket appears inside the sandbox. */
export const SANDBOX_EGRESS_DIR = "/run/outrig/egress";
/**
 * Where the journal subdirectory of the session's state directory (the exactly-once journal) is
 * bound, writable; the state directory itself (pid file, markers) stays the host's.
 */
export const SANDBOX_STATE_DIR = "/run/outrig/state";
/** The in-sandbox HTTP proxy address the agent listens on when egress is configured. */
export const SANDBOX_PROXY_URL = "http://127.0.0.1:3128";

/** Files copied into the sandbox's /etc from memory (through pipes), never from the host. */
export interface SandboxDataFile {
  readonly destination: string;
  readonly content: string;
}

export interface SandboxLayout {
  readonly uid: number;
  readonly gid: number;
  readonly userName: string;
  readonly hostname: string;
  readonly nodePath: string;
  readonly agentPath: string;
  readonly workspaceDir: string;
  /** Node flags for the agent process. */
  readonly nodeFlags: readonly string[];
  /** The agent keeps each reply within this many bytes (the host drops a sandbox that does not). */
  readonly maxMessageBytes?: number;
  /** Size limit of the /tmp tmpfs; unlimited (the kernel default) when undefined. */
  readonly tmpSizeBytes?: number;
  readonly hostRoot: readonly HostRootEntry[];
  /** Host paths bound read-only inside, after /workspace (so they may sit below it). */
  readonly readOnlyMounts?: readonly { readonly hostPath: string; readonly sandboxPath: string }[];
  /** Host directories bound writable, after the read-only ones. */
  readonly writableMounts?: readonly { readonly hostPath: string; readonly sandboxPath: string }[];
  /** Extra environment for the agent and so for every command; added after the fixed one. */
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** Host directory holding the egress proxy socket, bound at SANDBOX_EGRESS_DIR. */
  readonly egressDir?: string;
  /**
   * Host directory bound writable at SANDBOX_STATE_DIR for the agent's journal: the journal
   * subdirectory of the session's state directory (see prepareSandboxStateDirectory), never the
   * state directory itself.
   */
  readonly stateDir?: string;
  /** File name of the egress socket inside `egressDir`. */
  readonly egressSocketName?: string;
  /**
   * A compiled seccomp filter (see seccomp-filter.ts), passed to bwrap on the file descriptor after
   * the data files.
   */
  readonly seccompFilter?: Uint8Array;
  /**
   * A prepared root filesystem (`outrig image build`): /usr, the /bin, /lib… entries (`hostRoot` then
   * describes this tree) and /etc's loader cache and alternatives come from it instead of the host.
   */
  readonly rootfsDir?: string;
}

/** A top-level directory like /lib: a symlink into /usr (merged /usr) or a real directory. */
export type HostRootEntry =
  | { readonly name: string; readonly kind: "symlink"; readonly target: string }
  | { readonly name: string; readonly kind: "directory" };

/** Host /etc entries the sandbox may read: the dynamic loader cache, alternatives and TLS roots only. */
export const HOST_ETC_ENTRIES = ["ld.so.cache", "alternatives", "ssl/certs", "ssl/openssl.cnf"];

/** /proc files that show host-wide kernel state; /dev/null is bound over those the kernel has. */
const MASKED_PROC_FILES = ["keys", "key-users", "kcore", "timer_list", "sched_debug"];
/** Of those, the entries that must match the /usr they describe, so they come from the image when one is used. */
const IMAGE_ETC_ENTRIES = new Set(["ld.so.cache", "alternatives"]);

const ROOT_LINK_NAMES = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

export const SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/** Reads how the host's /bin, /lib… relate to /usr. */
export function describeHostRoot(root = "/"): HostRootEntry[] {
  const entries: HostRootEntry[] = [];
  for (const name of ROOT_LINK_NAMES) {
    try {
      const stats = lstatSync(`${root}${name}`);
      if (stats.isSymbolicLink())
        entries.push({ name, kind: "symlink", target: readlinkSync(`${root}${name}`) });
      else if (stats.isDirectory()) entries.push({ name, kind: "directory" });
    } catch {
      // absent on this host
    }
  }
  return entries;
}

/** The synthetic /etc files: a passwd/group naming only the sandbox user, hosts, nsswitch. */
export function sandboxDataFiles(layout: SandboxLayout): SandboxDataFile[] {
  const { uid, gid, userName, hostname } = layout;
  return [
    {
      destination: "/etc/passwd",
      content: [
        "root:x:0:0:root:/nonexistent:/usr/sbin/nologin",
        `${userName}:x:${uid}:${gid}:${userName}:${SANDBOX_WORKSPACE}:/bin/bash`,
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "",
      ].join("\n"),
    },
    {
      destination: "/etc/group",
      content: ["root:x:0:", `${userName}:x:${gid}:`, "nogroup:x:65534:", ""].join("\n"),
    },
    { destination: "/etc/hostname", content: `${hostname}\n` },
    {
      destination: "/etc/hosts",
      content: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    },
    {
      destination: "/etc/nsswitch.conf",
      content: "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nservices: files\n",
    },
  ];
}

/** The fixed environment of every process in the sandbox (bwrap starts from an empty one). */
export function sandboxEnvironment(layout: SandboxLayout): Record<string, string> {
  const proxy: Record<string, string> =
    layout.egressDir === undefined
      ? {}
      : {
          HTTP_PROXY: SANDBOX_PROXY_URL,
          HTTPS_PROXY: SANDBOX_PROXY_URL,
          http_proxy: SANDBOX_PROXY_URL,
          https_proxy: SANDBOX_PROXY_URL,
          NO_PROXY: "localhost,127.0.0.1",
          no_proxy: "localhost,127.0.0.1",
        };
  return {
    // On an image, node is only at SANDBOX_NODE_PATH: put its directory on PATH, last.
    PATH:
      layout.rootfsDir === undefined ? SANDBOX_PATH : `${SANDBOX_PATH}:${posix.dirname(SANDBOX_NODE_PATH)}`,
    HOME: SANDBOX_WORKSPACE,
    LANG: "C.UTF-8",
    TERM: "dumb",
    USER: layout.userName,
    ...proxy,
    ...layout.extraEnv,
  };
}

/**
 * bwrap options (no command: `--args FD` only carries options). Data file i is read from file descriptor `firstDataFd + i`.
 * Order matters: mounts first, `--remount-ro /` last so the root tmpfs (and /etc, /opt in it) is
 * read-only while /tmp and /workspace stay writable.
 */
export function buildBubblewrapArguments(layout: SandboxLayout, firstDataFd: number): string[] {
  // "" is the host's root; TLS roots (/etc/ssl) always come from the host, which the egress proxy trusts.
  const root = layout.rootfsDir === undefined ? "" : posix.resolve(layout.rootfsDir);
  const args = [
    // Namespaces: mount, pid, net, ipc, uts, cgroup and user; the user namespace is explicit so that
    // --disable-userns can forbid nested ones (a common kernel attack surface).
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    // No --die-with-parent: when the server dies, the agent sees its pipe close, finishes the keyed
    // calls in flight (journaling them) and exits, so a crash never leaves a command half-run.
    "--new-session",
    "--cap-drop",
    "ALL",
    "--uid",
    String(layout.uid),
    "--gid",
    String(layout.gid),
    "--hostname",
    layout.hostname,
    "--ro-bind",
    `${root}/usr`,
    "/usr",
  ];
  for (const entry of layout.hostRoot) {
    if (entry.kind === "symlink") args.push("--symlink", entry.target, `/${entry.name}`);
    else args.push("--ro-bind", `${root}/${entry.name}`, `/${entry.name}`);
  }
  for (const entry of HOST_ETC_ENTRIES) {
    const source = IMAGE_ETC_ENTRIES.has(entry) ? root : "";
    args.push("--ro-bind-try", `${source}/etc/${entry}`, `/etc/${entry}`);
  }
  sandboxDataFiles(layout).forEach((file, index) => {
    args.push("--perms", "0644", "--ro-bind-data", String(firstDataFd + index), file.destination);
  });
  // /proc/sys read-only: the sandbox user maps to the server's uid, which may be root, and most
  // sysctls are global (a writable kernel.core_pattern is a host root shell).
  args.push("--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys");
  // Masked like a container runtime does: the kernel keyring list names the host's keyrings.
  for (const name of MASKED_PROC_FILES)
    if (existsSync(`/proc/${name}`)) args.push("--ro-bind", "/dev/null", `/proc/${name}`);
  args.push("--dev", "/dev");
  if (layout.tmpSizeBytes !== undefined) args.push("--size", String(layout.tmpSizeBytes));
  args.push(
    "--tmpfs",
    "/tmp",
    "--ro-bind",
    layout.nodePath,
    SANDBOX_NODE_PATH,
    "--ro-bind",
    layout.agentPath,
    SANDBOX_AGENT_PATH,
    "--bind",
    layout.workspaceDir,
    SANDBOX_WORKSPACE,
  );
  for (const mount of layout.readOnlyMounts ?? []) args.push("--ro-bind", mount.hostPath, mount.sandboxPath);
  for (const mount of layout.writableMounts ?? []) args.push("--bind", mount.hostPath, mount.sandboxPath);
  if (layout.egressDir !== undefined) args.push("--ro-bind", layout.egressDir, SANDBOX_EGRESS_DIR);
  if (layout.stateDir !== undefined) args.push("--bind", layout.stateDir, SANDBOX_STATE_DIR);
  if (layout.seccompFilter !== undefined)
    args.push("--seccomp", String(firstDataFd + sandboxDataFiles(layout).length));
  args.push("--remount-ro", "/", "--chdir", SANDBOX_WORKSPACE, "--clearenv");
  for (const [name, value] of Object.entries(sandboxEnvironment(layout))) args.push("--setenv", name, value);
  return args;
}

/** The command bwrap runs inside the sandbox: the agent on the bind-mounted node. */
export function sandboxAgentCommand(layout: SandboxLayout): string[] {
  const egress =
    layout.egressSocketName === undefined
      ? []
      : ["--egress-socket", `${SANDBOX_EGRESS_DIR}/${layout.egressSocketName}`];
  const journal = layout.stateDir === undefined ? [] : ["--journal", `${SANDBOX_STATE_DIR}/journal.ndjson`];
  return [
    SANDBOX_NODE_PATH,
    ...layout.nodeFlags,
    SANDBOX_AGENT_PATH,
    ...egress,
    ...journal,
    ...agentMessageBound(layout),
  ];
}

/** The agent's `--max-message-bytes` argument, when the layout sets a bound. */
export function agentMessageBound(layout: SandboxLayout): string[] {
  return layout.maxMessageBytes === undefined ? [] : ["--max-message-bytes", String(layout.maxMessageBytes)];
}
