export { PostgresAgentStore } from "./agents/postgres-agent-store.js";
export {
  type ApiFileRecord,
  type CreateApiFileInput,
  type ListApiFilesOptions,
  PostgresApiFileStore,
  type StagedApiFileContent,
} from "./api-files/postgres-api-file-store.js";
export {
  type AnchoredAuditReport,
  AuditCheckpoints,
  type AuditCheckpointsOptions,
} from "./audit/audit-checkpoints.js";
export { canonicalJson, type JsonValue } from "./audit/canonical-json.js";
export {
  AUDIT_KINDS,
  type AuditChainProblem,
  type AuditChainReport,
  type AuditCheckpointMark,
  type AuditEntry,
  type AuditEntryInput,
  type AuditKind,
  type AuditListOptions,
  GENESIS_HASH,
  hashEntry,
  type LockedAuditHead,
  lockAuditHeadSql,
  PostgresAuditLog,
  type PostgresAuditLogOptions,
  toLockedHead,
  type VerifyAuditChainOptions,
} from "./audit/postgres-audit-log.js";
export {
  type AuditedSession,
  auditEntriesForEvents,
  auditedInput,
  isAuditedEvent,
  MAX_AUDITED_INPUT_BYTES,
} from "./audit/session-audit-entries.js";
export {
  API_KEY_PREFIX,
  type ApiKeyRecord,
  type BootstrapResult,
  type CreatedApiKey,
  DEFAULT_ORG_NAME,
  hashApiKey,
  type OrgRecord,
  PostgresAuthStore,
  type Principal,
  USER_ROLES,
  type UserRecord,
  type UserRole,
} from "./auth/postgres-auth-store.js";
export { type CreateDatabaseOptions, createDatabase, type Database } from "./create-database.js";
export { PostgresEgressPolicyStore } from "./egress/postgres-egress-policy-store.js";
export {
  type PostgresBinaries,
  ROOT_SHARED_DIR,
  resolvePostgresBinaries,
} from "./embedded/postgres-binaries.js";
export { isLivePostmaster, readPostmasterPid } from "./embedded/postmaster-pid.js";
export {
  DEFAULT_EMBEDDED_PORT,
  type EmbeddedPostgres,
  type StartEmbeddedPostgresOptions,
  startEmbeddedPostgres,
} from "./embedded/start-embedded-postgres.js";
export { PostgresEnvironmentStore } from "./environments/postgres-environment-store.js";
export { type BlameLine, type BlameVersion, blameVersions } from "./files/blame.js";
export {
  createDatabaseMounts,
  type DatabaseMountInfo,
  type DatabaseMountsOptions,
  databaseMountInfo,
  type FilesRole,
  MEMORIES_PREFIX,
  MEMORIES_ROOT_READ_ONLY,
  ORG_MEMORIES_NAMESPACE,
  ORG_MEMORIES_PREFIX,
  SKILLS_NAMESPACE,
  SKILLS_PREFIX,
  SKILLS_WRITE_DENIED,
  USER_MEMORIES_PREFIX,
  userMemoriesNamespace,
} from "./files/create-database-mounts.js";
export {
  createMountMirror,
  type MirrorApplyEvent,
  type MountMirror,
  type MountMirrorOptions,
} from "./files/create-mount-mirror.js";
export { DatabaseFileSystem, type DatabaseFileSystemOptions } from "./files/database-file-system.js";
export {
  ancestorsOf,
  MAX_FILE_NAME_BYTES,
  MAX_FILE_PATH_BYTES,
  normalizeFilePath,
} from "./files/file-paths.js";
export { checkSkillFileWrite, type ImportSkillOptions, importSkill } from "./files/import-skill.js";
export {
  DEFAULT_MAX_FILE_BYTES,
  FILE_CHANGES_CHANNEL,
  type FileAuthor,
  type FileChange,
  type FileChangeSubscription,
  type FileHead,
  type FileLookup,
  type FileScope,
  type FileVersionRecord,
  type FileWriteOptions,
  type FileWriteResult,
  PostgresFileStore,
  type PostgresFileStoreOptions,
  type StoredFile,
} from "./files/postgres-file-store.js";
export { createId, type IdPrefix, randomBase62 } from "./ids/create-id.js";
export {
  type CommittedChange,
  MemoryDirectorySync,
  type MemoryDirectorySyncOptions,
  type PushResult,
} from "./memory-stores/memory-directory-sync.js";
export {
  type MemoryListItem,
  type MemoryRecord,
  type MemoryStoreRecord,
  type MemoryVersionRecord,
  memoryStoreNamespace,
  PostgresMemoryStores,
} from "./memory-stores/postgres-memory-stores.js";
export {
  loadMigrations,
  type Migration,
  type MigrationResult,
  runMigrations,
} from "./migrations/run-migrations.js";
export {
  PostgresPolicyStore,
  type PostgresPolicyStoreOptions,
  PostgresWorkerRegistry,
  type WorkerRecord,
} from "./policies/postgres-policy-store.js";
export { PostgresSandboxPolicyStore } from "./policies/postgres-sandbox-policy-store.js";
export {
  EMBEDDED_DATABASE_NAME,
  ensureDatabase,
  type ResolveDatabaseOptions,
  type ResolvedDatabase,
  resolveDatabase,
} from "./resolve-database.js";
export {
  type LoadMasterKeyOptions,
  loadMasterKey,
  MASTER_KEY_BYTES,
  type MasterKey,
  masterKeyFromBase64,
  masterKeyId,
} from "./secrets/master-key.js";
export {
  MAX_SECRET_BYTES,
  PostgresSecretResolver,
  PostgresSecretStore,
  type PostgresSecretStoreOptions,
  SECRET_NAME_PATTERN,
  type SecretActor,
  type SecretMetadata,
  type SecretOwner,
  type SecretScope,
} from "./secrets/postgres-secret-store.js";
export {
  createSecretKeyring,
  type SealedSecret,
  type SecretBinding,
  type SecretKeyring,
} from "./secrets/secret-cipher.js";
export { PostgresSessionResourceTokens } from "./sessions/postgres-session-resource-tokens.js";
export {
  PostgresSessionShareStore,
  type SessionShare,
  SHARE_ROLES,
  type ShareRole,
} from "./sessions/postgres-session-share-store.js";
export {
  PostgresSessionStore,
  type PostgresSessionStoreOptions,
  SESSION_EVENT_SCHEMA_VERSION,
} from "./sessions/postgres-session-store.js";
export {
  PostgresSkillStore,
  type SkillRecord,
  type SkillVersionRecord,
} from "./skills/postgres-skill-store.js";
export {
  MAX_SKILL_UPLOAD_FILES,
  type SkillUpload,
  toSkillUpload,
  type UploadedSkillFile,
} from "./skills/skill-upload.js";
export {
  type CredentialAuth,
  type CredentialChange,
  type CredentialRecord,
  type CredentialValues,
  type ListPosition,
  PostgresVaultStore,
  type PostgresVaultStoreOptions,
  type SessionVaultCredentials,
  type VaultCaller,
  type VaultRecord,
  type VaultScope,
  valueName,
} from "./vaults/postgres-vault-store.js";
