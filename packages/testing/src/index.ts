export { FakeSandboxProvider } from "./fake-sandbox-provider.js";
export { gitHttpBackend } from "./git-http-backend.js";
export { LocalDirectoryFileSystem } from "./local-directory-file-system.js";
export { MemoryFileSystem, type MemoryFileSystemOptions } from "./memory-file-system.js";
export { createCrashingStore, MemorySessionStore, SimulatedCrash } from "./memory-session-store.js";
export { describeSandboxProviderConformance } from "./sandbox-conformance.js";
export { ScriptedModel, type ScriptedStep } from "./scripted-model.js";
export { createTestDatabase, type TestDatabase, testDatabaseAdminUrl } from "./test-database.js";
export {
  type RecordedRequest,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from "./upstream-server.js";
