/** The composition root: builds concrete adapters from config, wires them and listens. */
import { constants } from "node:fs";
import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Writable } from "node:stream";
import { serve } from "@hono/node-server";
import {
  ConfigError,
  createAgentDirectory,
  createDefaultTools,
  createEnvironmentDirectory,
  createMemoryTool,
  createToolsetTools,
  type SandboxProvider,
  type SessionStore,
} from "@outrig/core";
import { createModelFactory } from "@outrig/models";
import {
  checkBubblewrap,
  checkRuncHibernate,
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  createRuncSandboxProvider,
  findDefaultImage,
} from "@outrig/sandboxes";
import {
  AuditCheckpoints,
  createSecretKeyring,
  type EmbeddedPostgres,
  isLivePostmaster,
  loadMasterKey,
  PostgresAgentStore,
  PostgresApiFileStore,
  PostgresEnvironmentStore,
  PostgresFileStore,
  PostgresMemoryStores,
  PostgresSandboxPolicyStore,
  PostgresSecretResolver,
  PostgresSecretStore,
  PostgresSessionResourceTokens,
  PostgresSkillStore,
  PostgresVaultStore,
  resolveDatabase,
} from "@outrig/storage";
import { createApp, listRoutes, type RouteInfo } from "./app.js";
import type { ServerConfig } from "./config.js";
import { saveCredentials } from "./credentials.js";
import { DbosTurnScheduler } from "./durable/dbos-turn-scheduler.js";
import { CachedEgressSecrets } from "./egress/cached-egress-secrets.js";
import { loadEgressTrustedCa } from "./egress/egress-trusted-ca.js";
import { repositoryResourcesOf, toRepositoryEgress } from "./egress/repository-egress.js";
import { SessionEgress } from "./egress/session-egress.js";
import { EventBus } from "./event-bus.js";
import { acquireHomeLock } from "./home-lock.js";
import { type MemoryStoreResource, resolveMemoryStoreResources } from "./memory-store-mounts.js";
import { createOperations } from "./ops/create-operations.js";
import { createLogger, type Logger } from "./ops/logger.js";
import { loadOperationsConfig } from "./ops/operations-config.js";
import { readAptSources } from "./package-layers/apt-layer.js";
import { packageLayerFieldOf } from "./package-layers/package-layer-field.js";
import { PackageLayers } from "./package-layers/package-layers.js";
import { broadcastCancel, broadcastDeleted, listenForNotifications } from "./pg-notifications.js";
import { loadPinnedSkills, pinSkillVersions } from "./pinned-skills.js";
import { Readiness } from "./readiness.js";
import { registerAgentsRoutes } from "./routes/agents-routes.js";
import { registerAuditRoutes } from "./routes/audit-routes.js";
import { registerEgressRoutes } from "./routes/egress-routes.js";
import { registerEnvironmentsRoutes } from "./routes/environments-routes.js";
import { registerFileStoreRoutes } from "./routes/file-store-routes.js";
import { registerFilesApiRoutes } from "./routes/files-api-routes.js";
import { registerKeysRoutes } from "./routes/keys-routes.js";
import { registerMemoryStoresRoutes } from "./routes/memory-stores-routes.js";
import { registerReadinessRoutes } from "./routes/readiness-routes.js";
import { registerSandboxRoutes } from "./routes/sandbox-routes.js";
import { registerSessionShareRoutes } from "./routes/session-share-routes.js";
import { registerSkillsApiRoutes } from "./routes/skills-api-routes.js";
import { registerVaultsRoutes } from "./routes/vaults-routes.js";
import { SandboxLifecycle } from "./sandbox-lifecycle.js";
import { sandboxLimitsOf } from "./sandbox-policy.js";
import { checkFileResources, SessionFiles } from "./session-files.js";
import { SessionManager } from "./session-manager.js";
import { createSearxngWebSearcher } from "./web-search/searxng-web-searcher.js";

/** How often the server checks that its embedded Postgres still runs. */
const POSTMASTER_CHECK_MS = 1_000;

export interface RunningServer {
  readonly url: string;
  readonly sessions: SessionManager;
  /** The plaintext bootstrap key when this start created it (first start only). */
  readonly bootstrapKey: string | null;
  /** The Prometheus scrape URL when OUTRIG_METRICS_LISTEN is set, else null. */
  readonly metricsUrl: string | null;
  /** Sends the trace spans ended so far to the OTLP endpoint (no-op when tracing is off). */
  flushTraces(): Promise<void>;
  /** Every HTTP route the server registered (method and path pattern), for the security suite. */
  readonly routes: readonly RouteInfo[];
  /**
   * Stops taking work (503, no new steps), lets running steps finish for up to OUTRIG_DRAIN_MS, then
   * stops; a step still running is left to its sandbox as after a crash (exit the process soon).
   */
  close(): Promise<void>;
}

export interface StartServerOptions {
  readonly log?: (message: string) => void;
  /**
   * The structured log (requests, session events); default: built from OUTRIG_LOG_LEVEL/FORMAT, or text
   * lines handed to `log` when only that is given.
   */
  readonly logger?: Logger;
  /** Told when the server cannot go on (its embedded Postgres died); `outrig serve` exits non-zero. */
  readonly onFatal?: (message: string) => void;
  /**
   * Tests only: CA certificates egress trusts for upstream TLS instead of the system's roots, for a
   * local upstream standing in for a public host (pinned with OUTRIG_EGRESS_HOSTS), e.g. a git server
   * as github.com. Not a setting: production egress always verifies against the system's roots.
   */
  readonly egressUpstreamCa?: string;
}

export async function startServer(
  config: ServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const operations = createOperations(config.operations ?? loadOperationsConfig({}), {
    serviceInstanceId: config.workerId,
    // A caller that takes the messages (tests, embedders) takes the request and event lines too.
    ...(options.logger || options.log
      ? {
          logger:
            options.logger ??
            createLogger({
              destination: lineWriter(options.log),
              format: "text",
              ...(config.operations ? { level: config.operations.logLevel } : {}),
            }),
        }
      : {}),
  });
  const log = options.log ?? ((message: string) => operations.logger.info(message));
  // The AI SDK logs a warning per call for model ids it does not know (every fake or new model): noise in a server log.
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
  await fs.mkdir(config.home, { recursive: true, mode: 0o700 });
  // Before anything else touches the home (its Postgres, sandboxes, worker id): one server per home.
  const homeLock = await acquireHomeLock(config.home);
  await fs.mkdir(path.join(config.home, "workspaces"), { recursive: true, mode: 0o700 });

  // Fail at startup, in one line, when the sandbox tool is missing.
  const sandboxProvider = await createSandboxProvider(config, log);
  const modelFactory = operations.observeModelFactory(createModelFactory(config.models));
  const resolved = await resolveDatabase({ databaseUrl: config.databaseUrl, outrigHome: config.home, log });
  // Every session event this process stores is logged, counted and (with tracing) turned into spans.
  const database = { ...resolved, sessions: operations.observeSessionStore(resolved.sessions) };
  operations.countSessionsWith(async () => {
    const result = await database.pool.query<{ status: string; count: string }>(
      "SELECT status, count(*) AS count FROM sessions WHERE archived_at IS NULL GROUP BY status",
    );
    return result.rows.map((row) => ({ status: row.status, count: Number(row.count) }));
  });
  const bus = new EventBus();
  const scheduler = new DbosTurnScheduler({
    databaseUrl: database.url,
    workerId: config.workerId,
    ...(config.workflowVersion ? { applicationVersion: config.workflowVersion } : {}),
    workers: database.workers,
    deadAfterMs: config.workerDeadAfterMs,
    log,
  });
  const store = config.faultKillAfterAppend
    ? killAfterAppends(database.sessions, config.faultKillAfterAppend, log)
    : database.sessions;
  const masterKey = await loadMasterKey({
    ...(config.masterKey ? { masterKey: config.masterKey } : {}),
    keyFile: path.join(config.home, "master.key"),
  });
  const egressSecrets = new CachedEgressSecrets(
    new PostgresSecretResolver(database.pool, createSecretKeyring(masterKey)),
  );
  // Filled in once the API listens; egress refuses to connect to it, whatever a policy allows.
  const apiEndpoints: { address: string; port: number }[] = [];
  // Vaults and credentials; their values are rows of the same encrypted store egress resolves.
  const vaultStore = new PostgresVaultStore(database.pool, createSecretKeyring(masterKey), {
    audit: database.audit,
  });
  // github_repository tokens: sealed like vault values, read back only by egress.
  const resourceTokens = new PostgresSessionResourceTokens(database.pool, createSecretKeyring(masterKey));
  const environments = new PostgresEnvironmentStore(database.pool);
  const environmentDirectory = createEnvironmentDirectory(environments);
  const egress = await SessionEgress.create({
    home: config.home,
    // A session's environment narrows the org's allowlist; sessions made before environments keep it.
    environmentOf: async (orgId, sessionId) => {
      const environmentId = (await database.sessions.getSession(orgId, sessionId))?.managed?.environmentId;
      return environmentId ? await environmentDirectory.get(orgId, environmentId) : null;
    },
    masterKey: masterKey.key,
    policies: database.egressPolicies,
    secrets: egressSecrets,
    vaultCredentials: (orgId, userId, vaultIds, options) =>
      vaultStore.credentialsForSession(orgId, userId, vaultIds, options),
    audit: operations.observeEgressAudit(database.audit),
    repositoryTokens: async (orgId, sessionId) => {
      const tokens = await resourceTokens.tokensOf(orgId, sessionId);
      if (tokens.size === 0) return toRepositoryEgress([], tokens);
      const resources = (await database.sessions.getSession(orgId, sessionId))?.managed?.resources ?? [];
      return toRepositoryEgress(repositoryResourcesOf(resources), tokens);
    },
    pinnedHosts: config.egressHosts,
    ...(config.egressCaFile ? { upstreamCa: await loadEgressTrustedCa(config.egressCaFile) } : {}),
    ownEndpoints: () => apiEndpoints,
    ...(options.egressUpstreamCa ? { upstreamCa: options.egressUpstreamCa } : {}),
    log,
  });
  // Signed heads of every org's audit chain, outside the database (see docs/security.md).
  const auditCheckpoints = new AuditCheckpoints({
    log: database.audit,
    directory: path.join(config.home, "audit-checkpoints"),
    masterKey: masterKey.key,
    report: log,
  });
  auditCheckpoints.start(config.auditCheckpointMs);
  const sandboxPolicies = new PostgresSandboxPolicyStore(database.pool);
  const sandboxLifecycle = new SandboxLifecycle({
    defaults: config.sandbox.policy,
    policies: sandboxPolicies,
    blobStore: createLocalDirectoryBlobStore(path.join(config.home, "snapshots")),
    warmPoolSize: config.sandbox.warmPoolSize,
    home: config.home,
    store: database.sessions,
    log,
  });
  // The Files API's bytes; like snapshots, in the server's home (an object store is a BlobStore away).
  const apiFiles = new PostgresApiFileStore(
    database.pool,
    createLocalDirectoryBlobStore(path.join(config.home, "files")),
  );
  // Memory stores: one registry for the routes and the sessions that mount them.
  const memoryStores = new PostgresMemoryStores(
    database.pool,
    new PostgresFileStore(database.pool, { audit: database.audit }),
  );
  const webSearcher = config.webSearchUrl
    ? createSearxngWebSearcher({ url: config.webSearchUrl })
    : undefined;
  // An environment's packages: one layer per (org, base image, packages) on this host, built through egress.
  const baseImage = findDefaultImage(config.home);
  const aptSources = baseImage ? readAptSources(baseImage.rootfsDir) : undefined;
  const packageLayers = new PackageLayers({
    home: config.home,
    provider: sandboxProvider,
    baseImageId: baseImage?.manifest.contentHash ?? `host-node-${process.version}`,
    ...(aptSources ? { apt: aptSources } : {}),
    npmRegistry: config.packages.npmRegistry,
    npmCliDir:
      config.packages.npmCliDir ??
      path.resolve(path.dirname(process.execPath), "..", "lib", "node_modules", "npm"),
    egress,
    timeoutMs: config.packages.buildTimeoutMs,
    limitsFor: async (orgId) => sandboxLimitsOf(await sandboxLifecycle.policyFor(orgId)),
    log,
  });
  const sessions = new SessionManager({
    packageLayers: {
      layers: packageLayers,
      packagesOf: async (session) => {
        const environmentId = session.managed?.environmentId;
        const environment = environmentId
          ? await environmentDirectory.get(session.orgId, environmentId)
          : null;
        return environment?.kind === "cloud" ? environment.packages : null;
      },
    },
    // Agent sessions run the toolset's own tools; web_fetch goes out through the session's egress.
    toolset: (session, agent) =>
      createToolsetTools(agent.toolset, {
        webFetcher: egress.webFetcher({ id: session.id, orgId: session.orgId, userId: session.userId }),
        ...(webSearcher ? { webSearcher } : {}),
      }),
    sessionFiles: (session) =>
      new SessionFiles({
        files: apiFiles,
        orgId: session.orgId,
        sessionId: session.id,
        directory: path.join(config.home, "session-files", session.id),
        log,
      }),
    // An agent session's /skills: the skill versions it pinned at create (apiSkills is built below).
    pinnedSkills: (orgId, skills) => loadPinnedSkills(apiSkills, orgId, skills),
    memoryStores: {
      stores: memoryStores,
      resourcesOf: async (session) =>
        (session.managed?.resources ?? []).filter(
          (resource): resource is MemoryStoreResource & Record<string, unknown> =>
            resource.type === "memory_store",
        ),
    },
    sandboxLifecycle,
    scheduler,
    policies: database.policies,
    broadcastCancel: (sessionId) => broadcastCancel(database.pool, sessionId),
    files: {
      store: new PostgresFileStore(database.pool, { audit: database.audit }),
      roleOf: (orgId, userId) => database.auth.userRole(orgId, userId),
    },
    store,
    modelFactory,
    sandboxProvider,
    tools: [...createDefaultTools(), createMemoryTool()],
    bus,
    home: config.home,
    limits: { maxSteps: config.maxSteps, maxModelAttempts: 6 },
    sandboxIdleMs: config.sandboxIdleMs,
    standbyAfterMs: config.standbyAfterMs,
    log,
    egress,
    shares: (orgId, sessionId, userId) => database.shares.roleOf(orgId, sessionId, userId),
    audit: async (orgId, entry) => {
      await database.audit.append(orgId, entry);
    },
  });
  const readiness = new Readiness(
    {
      database: async () => {
        await database.pool.query("SELECT 1");
      },
      sandbox: () => probeSandboxProvider(config),
      egress: async () => {
        await fs.access(path.join(config.home, "egress"), constants.W_OK);
        await fs.access(path.join(config.home, "egress-ca", "ca-bundle.pem"), constants.R_OK);
      },
    },
    log,
  );
  const secretStore = new PostgresSecretStore(database.pool, createSecretKeyring(masterKey), {
    audit: database.audit,
  });
  const agents = new PostgresAgentStore(database.pool);
  const apiSkills = new PostgresSkillStore(
    database.pool,
    new PostgresFileStore(database.pool, { audit: database.audit }),
  );
  const app = createApp({
    auth: database.auth,
    policies: {
      get: (orgId) => database.policies.get(orgId),
      put: async (orgId, policy, actor) => {
        await database.policies.put(orgId, policy, actor);
        sessions.invalidatePolicy(orgId);
      },
    },
    sessions,
    store: database.sessions,
    bus,
    log,
    requestObserver: operations.requestObserver,
    rateLimits: config.rateLimits,
    managed: {
      announceDeleted: (sessionId) => broadcastDeleted(database.pool, sessionId),
      agents: createAgentDirectory(agents),
      environments: environmentDirectory,
      // An attached memory store or file must be the org's (another org's is a 404, as if absent).
      checkResource: async (orgId, resource) => {
        if (resource.type === "memory_store") {
          const [mounted] = await resolveMemoryStoreResources({
            memoryStores,
            orgId,
            resources: [resource],
            isNewSession: true,
          });
          // Where the session sees it: under the store's name, as the mount puts it.
          return mounted ? { mount_path: `${mounted.mountPath}/` } : undefined;
        }
        if (resource.type === "file") await checkFileResources(apiFiles, orgId, [resource]);
        return undefined;
      },
      readMessageFile: async (orgId, fileId) => {
        const found = await apiFiles.read(orgId, fileId);
        return found && { mimeType: found.record.mimeType, content: found.content };
      },
      pinSkills: (orgId, skills) => pinSkillVersions(apiSkills, orgId, skills),
      checkVaults: async (caller, vaultIds) => {
        await vaultStore.credentialsForSession(caller.orgId, caller.userId, vaultIds);
      },
      storeResourceToken: async (orgId, sessionId, resourceId, token) => {
        await resourceTokens.set(orgId, sessionId, resourceId, token);
        egress.invalidateRepositoryTokens(sessionId);
      },
      deleteResourceToken: async (orgId, sessionId, resourceId) => {
        await resourceTokens.delete(orgId, sessionId, resourceId);
        egress.invalidateRepositoryTokens(sessionId);
      },
    },
    extraRoutes: [
      (routes) =>
        registerFileStoreRoutes(routes, {
          files: new PostgresFileStore(database.pool, { audit: database.audit }),
        }),
      (routes) => registerFilesApiRoutes(routes, { files: apiFiles }),
      (routes) => registerSkillsApiRoutes(routes, { skills: apiSkills }),
      (routes) => registerMemoryStoresRoutes(routes, { memoryStores }),
      (routes) =>
        registerSandboxRoutes(routes, {
          policies: {
            get: (orgId) => sandboxPolicies.get(orgId),
            put: async (orgId, policy) => {
              await sandboxPolicies.put(orgId, policy);
              await database.audit.append(orgId, {
                kind: "policy_change",
                data: { policy: "sandbox", value: policy },
              });
              sessions.invalidateSandboxPolicy(orgId);
            },
          },
          defaults: config.sandbox.policy,
          sessions,
        }),
      (routes) =>
        registerVaultsRoutes(routes, {
          vaults: vaultStore,
          onChange: (orgId) => egressSecrets.invalidate(orgId),
        }),
      (routes) => registerAuditRoutes(routes, { audit: database.audit, checkpoints: auditCheckpoints }),
      (routes) =>
        registerSessionShareRoutes(routes, {
          sessions,
          shares: database.shares,
          audit: async (orgId, entry) => {
            await database.audit.append(orgId, entry);
          },
        }),
      (routes) =>
        registerKeysRoutes(routes, {
          auth: database.auth,
          audit: async (orgId, entry) => {
            await database.audit.append(orgId, entry);
          },
        }),
      (routes) =>
        registerEgressRoutes(routes, {
          policies: database.egressPolicies,
          audit: database.audit,
          secrets: secretStore,
          onChange: (orgId) => egress.invalidatePolicy(orgId),
        }),
      (routes) => registerReadinessRoutes(routes, { readiness }),
      (routes) => registerAgentsRoutes(routes, { agents }),
      (routes) =>
        registerEnvironmentsRoutes(routes, {
          environments,
          egressPolicies: database.egressPolicies,
          extraFields: (orgId, environment) => packageLayerFieldOf(packageLayers, orgId, environment),
          // An environment a live (not archived) session runs in cannot be deleted (409).
          isInUse: async (orgId, environmentId) => {
            const result = await database.pool.query(
              "SELECT 1 FROM sessions WHERE org_id = $1 AND environment_id = $2 AND archived_at IS NULL LIMIT 1",
              [orgId, environmentId],
            );
            return (result.rowCount ?? 0) > 0;
          },
        }),
    ],
  });
  const notifications = await listenForNotifications(database.url, {
    onSessionEvents: (sessionId, lastSeq) => {
      if (bus.subscriberCount(sessionId) > 0) bus.publish(sessionId, { type: "poke", seq: lastSeq });
    },
    onCancel: (sessionId) => sessions.abortLocal(sessionId),
    onDeleted: (sessionId) => {
      if (bus.subscriberCount(sessionId) > 0)
        bus.publish(sessionId, { type: "session.gone", at: new Date().toISOString() });
    },
    log,
  });
  await sessions.start();
  // The Prometheus listener (OUTRIG_METRICS_LISTEN) before the API's: a taken port fails the start.
  const metricsUrl = await operations.listen().catch(async (error: Error) => {
    await auditCheckpoints.close();
    await database.close();
    await homeLock.release();
    throw new Error(`cannot listen on OUTRIG_METRICS_LISTEN: ${error.message}`, { cause: error });
  });

  const server = serve({ fetch: readiness.gate(app.fetch), port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", (error) => reject(error));
  }).catch(async (error: NodeJS.ErrnoException) => {
    await auditCheckpoints.close();
    await database.close();
    await homeLock.release();
    const reason =
      error.code === "EADDRINUSE" ? `port ${config.port} is already in use (set OUTRIG_PORT)` : error.message;
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${reason}`, { cause: error });
  });
  const address = server.address() as AddressInfo;
  apiEndpoints.push({ address: address.address, port: address.port });
  const url = `http://${config.host}:${address.port}`;

  const bootstrapKey = (await database.auth.bootstrap()).apiKey;
  if (bootstrapKey) {
    const file = await saveCredentials(config.home, { server: url, apiKey: bootstrapKey });
    log(`created org "default" with an admin API key (shown once, saved to ${file}):`);
    console.log(bootstrapKey);
  }
  await homeLock.setUrl(url);
  const stopWatching = database.embedded
    ? watchEmbeddedPostgres(database.embedded, () => {
        const message = `the embedded Postgres (pid ${database.embedded?.pid}) exited; this server cannot go on without it (its next start restarts it)`;
        readiness.fail("database", "embedded Postgres exited");
        readiness.stopTaking();
        log(message);
        options.onFatal?.(message);
      })
    : () => undefined;
  log(`worker ${config.workerId} listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    sessions,
    bootstrapKey,
    metricsUrl,
    flushTraces: () => operations.flush(),
    routes: listRoutes(app),
    close() {
      closing ??= (async () => {
        readiness.stopTaking();
        const running = await sessions.drain(config.drainMs);
        if (running > 0) {
          log(
            `stopping with ${running} step(s) still running after ${config.drainMs} ms (OUTRIG_DRAIN_MS): their sandboxes finish their calls, and the next start records the results`,
          );
        }
        stopWatching();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await notifications.close();
        await sessions.close();
        await egress.close();
        // SSE streams are long-lived; end them so close() does not wait for clients.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        await stopped;
        // A sandbox with a call in flight must outlive this process (like after a crash).
        if (running === 0) await sandboxProvider.close();
        await auditCheckpoints.close();
        await operations.close();
        await database.close();
        if (running === 0) await homeLock.release();
      })();
      return closing;
    },
  };
}

/** A stream that hands each line written to it to `log`, without its newline. */
function lineWriter(log: ((message: string) => void) | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) log?.(line);
      callback();
    },
  });
}

/** Polls the embedded postmaster; calls `onExit` once when it is gone. Returns a stop function. */
function watchEmbeddedPostgres(embedded: EmbeddedPostgres, onExit: () => void): () => void {
  let isChecking = false;
  const timer = setInterval(() => {
    if (isChecking) return;
    isChecking = true;
    void isLivePostmaster(embedded.pid, embedded.clusterDir)
      .then((isLive) => {
        if (isLive) return;
        clearInterval(timer);
        onExit();
      })
      .finally(() => {
        isChecking = false;
      });
  }, POSTMASTER_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** The sandbox provider can start sandboxes: its tool is there and the workspaces are writable. */
async function probeSandboxProvider(config: ServerConfig): Promise<void> {
  if (config.sandboxProvider === "bubblewrap") await checkBubblewrap();
  await fs.access(path.join(config.home, "workspaces"), constants.W_OK);
}

/**
 * The sandbox provider named by OUTRIG_SANDBOX_PROVIDER, on the prepared root filesystem
 * (`outrig image build`) when one is built, else on the host's /usr. Fails in one line when a
 * needed tool is missing.
 */
async function createSandboxProvider(
  config: ServerConfig,
  log: (message: string) => void,
): Promise<SandboxProvider> {
  if (config.sandboxProvider === "bubblewrap") await checkBubblewrap();
  const image = findDefaultImage(config.home);
  log(
    image
      ? `sandbox root: image ${image.imageDir} (${image.manifest.contentHash})`
      : "sandbox root: host /usr",
  );
  const common = { tmpSizeBytes: config.sandboxTmpBytes, ...(image ? { rootfsDir: image.rootfsDir } : {}) };
  if (config.sandboxProvider === "bubblewrap") {
    // The agent's node copy lives in the home too: nothing of a home accumulates outside it.
    const provider = createBubblewrapSandboxProvider({
      ...common,
      agentNodeDirectory: path.join(config.home, "agent-node"),
    });
    // Frozen sandboxes a crashed server left are killed now, not at this server's first sandbox.
    void provider.sweepOrphans();
    return provider;
  }
  const support = await checkRuncHibernate();
  if (!support.isSupported) {
    throw new ConfigError(
      "invalid_config",
      `OUTRIG_SANDBOX_PROVIDER=runc cannot be used: ${support.reason}; runc sandboxes need root, "apt-get install -y runc iptables" and CRIU >= 4 (bash scripts/install-criu.sh)`,
    );
  }
  log(
    `sandbox provider: runc with CRIU ${support.criuVersion} (${support.criuPath}); sandboxes can hibernate`,
  );
  const provider = createRuncSandboxProvider({
    ...common,
    runcPath: support.runcPath,
    criuPath: support.criuPath,
    stateDir: path.join(config.home, "runc"),
  });
  void provider.sweepOrphans();
  return provider;
}

/** Crash-test hook: a store whose Nth successful append is followed by SIGKILL of this process. */
function killAfterAppends(store: SessionStore, limit: number, log: (message: string) => void): SessionStore {
  let count = 0;
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== "appendEvents" || typeof value !== "function") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return async (...args: Parameters<SessionStore["appendEvents"]>) => {
        const stored = await store.appendEvents(...args);
        // Step boundaries only: a sandbox start is bookkeeping, and killing there would just repeat it.
        if (args[1].every((event) => event.type.startsWith("sandbox."))) return stored;
        count += 1;
        if (count === limit) {
          log(`fault injection: SIGKILL after append ${count}`);
          process.kill(process.pid, "SIGKILL");
        }
        return stored;
      };
    },
  });
}
