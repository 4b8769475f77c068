export {
  type LifecycleBenchOptions,
  type LifecycleBenchResult,
  runLifecycleBench,
} from "./bench/lifecycle-bench.js";
export { AgentConnection, type AgentErrorBody, AgentRequestError } from "./bubblewrap/agent-connection.js";
export {
  buildBubblewrapArguments,
  SANDBOX_AGENT_PATH,
  SANDBOX_NODE_PATH,
  SANDBOX_PATH,
  SANDBOX_WORKSPACE,
  type SandboxLayout,
} from "./bubblewrap/bubblewrap-arguments.js";
export {
  BubblewrapSandbox,
  type FileCallResult,
  type SandboxAgentInfo,
} from "./bubblewrap/bubblewrap-sandbox.js";
export {
  BubblewrapSandboxProvider,
  type BubblewrapSandboxProviderOptions,
  createBubblewrapSandboxProvider,
} from "./bubblewrap/bubblewrap-sandbox-provider.js";
export {
  BUBBLEWRAP_MISSING_MESSAGE,
  type BubblewrapInfo,
  checkBubblewrap,
} from "./bubblewrap/check-bubblewrap.js";
export {
  ensureWorkspaceQuota,
  isMountPoint,
  type WorkspaceQuota,
  workspaceQuotaImagePath,
} from "./bubblewrap/workspace-quota.js";
export {
  type CgroupDriver,
  cgroupOwnerName,
  type DetectCgroupsOptions,
  detectCgroups,
  isCgroupDriver,
  parseProcCgroup,
  type SandboxCgroup,
} from "./cgroups/sandbox-cgroup.js";
export {
  type CgroupSweepResult,
  describeCgroupSweep,
  isOwnerAlive,
  type SweepOrphanedCgroupsOptions,
  type SweptCgroupLayout,
  sweepOrphanedCgroups,
} from "./cgroups/sweep-orphaned-cgroups.js";
export {
  prepareSandboxStateDirectory,
  readSandboxPidFile,
  SANDBOX_JOURNAL_DIRECTORY,
  SANDBOX_PID_FILE,
  sandboxJournalDirectory,
  sandboxJournalPath,
  writeSandboxPidFile,
} from "./host-files/sandbox-state-directory.js";
export {
  appendUntrustedFile,
  readFileHead,
  readUntrustedFile,
  replaceUntrustedFile,
  UntrustedFileError,
} from "./host-files/untrusted-files.js";
export {
  type BuildImageOptions,
  buildImage,
  DEBOOTSTRAP_MISSING_MESSAGE,
  DEFAULT_IMAGE_MIRROR,
  hashTree,
  IMAGE_PACKAGES,
  ImageBuildError,
} from "./image/build-image.js";
export {
  defaultImageDir,
  findDefaultImage,
  type ImageInfo,
  type ImageManifest,
  readImage,
} from "./image/rootfs-image.js";
export {
  createWarmPool,
  type WarmPool,
  type WarmPoolOptions,
  type WarmPoolTemplate,
} from "./pool/warm-pool.js";
export { RuncSandbox } from "./runc/runc-sandbox.js";
export {
  checkRuncHibernate,
  createRuncSandboxProvider,
  type RuncHibernateSupport,
  RuncSandboxProvider,
  type RuncSandboxProviderOptions,
} from "./runc/runc-sandbox-provider.js";
export {
  RUNC_OWNER_ANNOTATION,
  type RuncListEntry,
  type RuncSweepResult,
  sweepOrphanedRuncContainers,
} from "./runc/sweep-orphaned-containers.js";
export {
  createLocalDirectoryBlobStore,
  LocalDirectoryBlobStore,
} from "./snapshots/local-directory-blob-store.js";
export {
  restoreWorkspace,
  type SnapshotCallOptions,
  scanWorkspace,
  scanWorkspaceInProcess,
  WorkspaceSnapshotter,
  type WorkspaceSnapshotterOptions,
} from "./snapshots/workspace-snapshotter.js";
