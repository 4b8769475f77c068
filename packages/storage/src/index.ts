export {
  API_KEY_PREFIX,
  type BootstrapResult,
  type CreatedApiKey,
  DEFAULT_ORG_NAME,
  hashApiKey,
  type OrgRecord,
  PostgresAuthStore,
  type Principal,
  type UserRecord,
  type UserRole,
} from "./auth/postgres-auth-store.js";
export { type CreateDatabaseOptions, createDatabase, type Database } from "./create-database.js";
export {
  DEFAULT_EMBEDDED_PORT,
  type EmbeddedPostgres,
  type StartEmbeddedPostgresOptions,
  startEmbeddedPostgres,
} from "./embedded/start-embedded-postgres.js";
export { createId, type IdPrefix, randomBase62 } from "./ids/create-id.js";
export {
  loadMigrations,
  type Migration,
  type MigrationResult,
  runMigrations,
} from "./migrations/run-migrations.js";
export {
  EMBEDDED_DATABASE_NAME,
  ensureDatabase,
  type ResolveDatabaseOptions,
  type ResolvedDatabase,
  resolveDatabase,
} from "./resolve-database.js";
export {
  PostgresSessionStore,
  type PostgresSessionStoreOptions,
  SESSION_EVENT_SCHEMA_VERSION,
} from "./sessions/postgres-session-store.js";
