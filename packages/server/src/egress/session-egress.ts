/**
 * Egress for this worker's sessions: one proxy, one unix socket per session in its own directory
 * (`<home>/egress/<sessionId>/proxy.sock`; the socket is how a request is attributed to org, user
 * and session), the deployment CA in `<home>/egress-ca`, and what each sandbox needs to use it: the
 * CA bundle bound over its roots, proxy and CA variables, placeholders and canaries in its env.
 * Every request is one entry in the org's audit log (naming any secret injected into it); refusals
 * during a command are appended to its stderr.
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { EnvironmentConfig, ExecResult, NetworkAccess, ReadOnlyMount, WebFetcher } from "@outrig/core";
import {
  type CertificateAuthority,
  createEgressProxy,
  type EgressAuditEvent,
  type EgressContext,
  type EgressListener,
  type EgressPolicy,
  type EgressProxy,
  type EgressSecrets,
  loadCertificateAuthority,
  type OwnEndpoint,
  secretPlaceholder,
  toAuditEntry,
  writeCaBundle,
} from "@outrig/egress";
import type { EgressPolicyBody } from "@outrig/protocol";
import type { AuditEntryInput, SessionVaultCredentials } from "@outrig/storage";
import { canariesFor } from "./canaries.js";
import { createEgressWebFetcher } from "./egress-web-fetcher.js";
import { environmentEgressPolicy } from "./environment-egress-policy.js";
import {
  NO_REPOSITORY_EGRESS,
  REPOSITORY_SECRET_PREFIX,
  type RepositoryEgress,
} from "./repository-egress.js";
import { NO_VAULT_EGRESS, toVaultEgress, type VaultEgress } from "./vault-egress.js";

/** Where the sandbox's TLS roots live (Debian layout; curl, git and OpenSSL read it by default). */
export const SANDBOX_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
export const SANDBOX_PROXY_URL = "http://127.0.0.1:3128";
export const EGRESS_ALLOWLIST_HINT = "an org admin can add it (PUT /v1/egress-policy)";
const POLICY_CACHE_MS = 1000;
const REFUSALS_KEPT = 200;
const REFUSAL_LINES_PER_COMMAND = 10;
const SESSION_ID = /^[A-Za-z0-9_-]{1,100}$/;
/** Variables a credential placeholder must never replace. */
const RESERVED_ENV = new Set([
  "PATH",
  "HOME",
  "LANG",
  "TERM",
  "USER",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "http_proxy",
  "https_proxy",
  "NO_PROXY",
  "no_proxy",
  "SSL_CERT_FILE",
  "GIT_SSL_CAINFO",
  "NODE_EXTRA_CA_CERTS",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
]);

/** What a session's sandbox is created with so that egress works for it. */
export interface SandboxEgressOptions {
  readonly readOnlyMounts: readonly ReadOnlyMount[];
  readonly env: Readonly<Record<string, string>>;
  readonly egressSocketPath: string;
}

/** A session as egress sees it: `vaultIds` are the session's `vault_ids` (its credentials). */
export interface EgressSession {
  readonly id: string;
  readonly orgId: string;
  readonly userId: string;
  readonly vaultIds?: readonly string[];
}

/** The small surface SessionManager uses (and tests can fake). */
export interface SandboxEgressHook {
  sandboxOptions(session: EgressSession): Promise<SandboxEgressOptions>;
  /** Runs a command and appends the egress refusals that happened meanwhile to its stderr. */
  explainRefusals(sessionId: string, run: () => Promise<ExecResult>): Promise<ExecResult>;
  /** The session's sandbox is gone (cold or destroyed): closes its socket until the next sandbox. */
  releaseSession?(sessionId: string): Promise<void>;
  /** What the org's sandboxes can reach, for the system prompt. */
  networkAccess?(orgId: string, sessionId?: string): Promise<NetworkAccess>;
}

export interface SessionEgressOptions {
  readonly home: string;
  /**
   * The environment a session runs in: its networking narrows the org's allowlist (see
   * environmentEgressPolicy). Absent, or null for a session: the org's policy as it is.
   */
  readonly environmentOf?: (orgId: string, sessionId: string) => Promise<EnvironmentConfig | null>;
  /** The vault's master key: canaries are HMAC(master key, session id), so every worker knows them. */
  readonly masterKey: Buffer;
  readonly policies: { get(orgId: string): Promise<EgressPolicyBody | null> };
  /** Plaintext at injection time only (PostgresSecretResolver). */
  readonly secrets: EgressSecrets;
  /** A session's vault credentials (PostgresVaultStore.credentialsForSession); without it vault_ids add nothing. */
  readonly vaultCredentials?: (
    orgId: string,
    userId: string,
    vaultIds: readonly string[],
    options: { isRunning: true },
  ) => Promise<SessionVaultCredentials>;
  /**
   * The credential rules and tokens of a session's github_repository resources (repository-egress.ts);
   * without it no repository token is added.
   */
  readonly repositoryTokens?: (orgId: string, sessionId: string) => Promise<RepositoryEgress>;
  readonly audit: { append(orgId: string, entry: AuditEntryInput): Promise<unknown> };
  /** OUTRIG_EGRESS_HOSTS. */
  readonly pinnedHosts?: ReadonlyMap<string, readonly string[]>;
  /** Where this server's API listens (known once it listens): egress never connects there. */
  readonly ownEndpoints?: () => readonly OwnEndpoint[];
  /** The host's roots, copied into the sandbox bundle ahead of our CA. */
  readonly hostCaBundle?: string;
  /** CA certificates trusted for upstream TLS instead of Node's roots (benchmarks, tests). */
  readonly upstreamCa?: string | readonly string[];
  readonly log: (message: string) => void;
}

interface Refusal {
  readonly seq: number;
  readonly sessionId: string;
  readonly text: string;
}

export class SessionEgress implements SandboxEgressHook {
  readonly #options: SessionEgressOptions;
  readonly #proxy: EgressProxy;
  readonly #bundlePath: string;
  readonly #caCertificatePem: string;
  readonly #listeners = new Map<string, Promise<EgressListener>>();
  readonly #policies = new Map<string, { policy: EgressPolicyBody | null; expiresAt: number }>();
  /** Each session's environment, at most POLICY_CACHE_MS old. */
  readonly #environments = new Map<
    string,
    { environment: Promise<EnvironmentConfig | null | "unreadable">; expiresAt: number }
  >();
  readonly #refusals: Refusal[] = [];
  /** Sessions with vaults, and their credentials' rules (re-read at most once a second). */
  readonly #sessionVaults = new Map<string, EgressSession>();
  /** Package builds (by their build id): exactly these hosts, whatever the org's allowlist says. */
  readonly #buildHosts = new Map<string, readonly string[]>();
  readonly #vaultEgress = new Map<string, { egress: Promise<VaultEgress>; expiresAt: number }>();
  /** Each session's repository tokens, at most POLICY_CACHE_MS old. */
  readonly #repositoryEgress = new Map<string, { egress: Promise<RepositoryEgress>; expiresAt: number }>();
  #refusalSeq = 0;

  private constructor(options: SessionEgressOptions, ca: CertificateAuthority, bundlePath: string) {
    this.#options = options;
    this.#bundlePath = bundlePath;
    this.#caCertificatePem = ca.certificatePem;
    this.#proxy = createEgressProxy({
      ca,
      policy: (context) => this.#policyFor(context),
      secrets: this.#withRepositoryTokens(options.secrets),
      onAudit: (event) => this.#onAudit(event),
      allowlistHint: EGRESS_ALLOWLIST_HINT,
      ...(options.pinnedHosts ? { pinnedHosts: options.pinnedHosts } : {}),
      ...(options.ownEndpoints ? { ownEndpoints: options.ownEndpoints } : {}),
      ...(options.upstreamCa ? { upstreamCa: options.upstreamCa } : {}),
    });
  }

  /** Loads (or creates, on first start) the CA in `<home>/egress-ca` and writes the sandbox bundle. */
  static async create(options: SessionEgressOptions): Promise<SessionEgress> {
    const caDir = path.join(options.home, "egress-ca");
    const ca = await loadCertificateAuthority(caDir);
    const bundlePath = path.join(caDir, "ca-bundle.pem");
    await writeCaBundle(ca, bundlePath, options.hostCaBundle);
    await mkdir(path.join(options.home, "egress"), { recursive: true, mode: 0o700 });
    return new SessionEgress(options, ca, bundlePath);
  }

  async sandboxOptions(session: EgressSession): Promise<SandboxEgressOptions> {
    if (session.vaultIds && session.vaultIds.length > 0) this.#sessionVaults.set(session.id, session);
    else this.#sessionVaults.delete(session.id);
    this.#vaultEgress.delete(session.id);
    const vaults = await this.#vaultEgressFor(session.id);
    const listener = await this.#listen(session);
    const canaries = canariesFor(this.#options.masterKey, session.id);
    const policy = await this.#policyFor({ orgId: session.orgId, sessionId: session.id });
    const placeholders: Record<string, string> = {};
    for (const rule of policy.credentials) {
      // A repository's token needs no variable: git sends nothing, egress adds it.
      if (rule.secretName.startsWith(REPOSITORY_SECRET_PREFIX)) continue;
      if (!RESERVED_ENV.has(rule.secretName))
        placeholders[rule.secretName] = secretPlaceholder(rule.secretName);
    }
    for (const [name, placeholder] of Object.entries(vaults.env)) {
      if (!RESERVED_ENV.has(name)) placeholders[name] = placeholder;
    }
    return {
      readOnlyMounts: [{ hostPath: this.#bundlePath, sandboxPath: SANDBOX_CA_BUNDLE }],
      egressSocketPath: listener.address,
      env: {
        ...placeholders,
        HTTP_PROXY: SANDBOX_PROXY_URL,
        HTTPS_PROXY: SANDBOX_PROXY_URL,
        http_proxy: SANDBOX_PROXY_URL,
        https_proxy: SANDBOX_PROXY_URL,
        SSL_CERT_FILE: SANDBOX_CA_BUNDLE,
        GIT_SSL_CAINFO: SANDBOX_CA_BUNDLE,
        NODE_EXTRA_CA_CERTS: SANDBOX_CA_BUNDLE,
        REQUESTS_CA_BUNDLE: SANDBOX_CA_BUNDLE,
        CURL_CA_BUNDLE: SANDBOX_CA_BUNDLE,
        AWS_ACCESS_KEY_ID: canaries.accessKeyId,
        AWS_SECRET_ACCESS_KEY: canaries.secretAccessKey,
      },
    };
  }

  /**
   * A package build sandbox's egress: its own socket, allowed only `allowedHosts` (the package
   * registries the operator configured), with the org's credentials for those hosts injected as usual.
   */
  async packageBuildOptions(
    build: { readonly id: string; readonly orgId: string; readonly userId: string },
    allowedHosts: readonly string[],
  ): Promise<SandboxEgressOptions> {
    this.#buildHosts.set(build.id, allowedHosts);
    return this.sandboxOptions(build);
  }

  async explainRefusals(sessionId: string, run: () => Promise<ExecResult>): Promise<ExecResult> {
    const after = this.#refusalSeq;
    const result = await run();
    const lines: string[] = [];
    const counts = new Map<string, number>();
    for (const refusal of this.#refusals) {
      if (refusal.seq <= after || refusal.sessionId !== sessionId) continue;
      if (!counts.has(refusal.text)) lines.push(refusal.text);
      counts.set(refusal.text, (counts.get(refusal.text) ?? 0) + 1);
    }
    if (lines.length === 0) return result;
    const shown = lines.slice(0, REFUSAL_LINES_PER_COMMAND).map((line) => {
      const count = counts.get(line) ?? 1;
      return count > 1 ? `${line} (${count} times)` : line;
    });
    if (lines.length > shown.length)
      shown.push(`outrig egress: ${lines.length - shown.length} more refusals`);
    const separator = result.stderr === "" || result.stderr.endsWith("\n") ? "" : "\n";
    return { ...result, stderr: `${result.stderr}${separator}${shown.join("\n")}\n` };
  }

  /**
   * The fetcher of the toolset's web_fetch for a session: the backend's requests go out through the
   * session's own socket, under the same policy and audit as its sandbox's.
   */
  webFetcher(session: { readonly id: string; readonly orgId: string; readonly userId: string }): WebFetcher {
    return createEgressWebFetcher({
      socketPath: async () => (await this.#listen(session)).address,
      caCertificatePem: this.#caCertificatePem,
    });
  }

  /** Forgets this worker's cached policy of an org (after this worker changed it). */
  invalidatePolicy(orgId: string): void {
    this.#policies.delete(orgId);
  }

  /** Forgets this worker's cached repository tokens of a session (after this worker changed one). */
  invalidateRepositoryTokens(sessionId: string): void {
    this.#repositoryEgress.delete(sessionId);
  }

  async releaseSession(sessionId: string): Promise<void> {
    this.#sessionVaults.delete(sessionId);
    this.#repositoryEgress.delete(sessionId);
    this.#vaultEgress.delete(sessionId);
    this.#environments.delete(sessionId);
    this.#buildHosts.delete(sessionId);
    const listener = this.#listeners.get(sessionId);
    if (!listener) return;
    this.#listeners.delete(sessionId);
    await (await listener.catch(() => undefined))?.close();
    if (SESSION_ID.test(sessionId))
      await rm(path.join(this.#options.home, "egress", sessionId), { recursive: true, force: true });
  }

  /** Sockets open now, one per session with a sandbox on this worker. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#proxy.close();
  }

  #listen(session: { readonly id: string; readonly orgId: string; readonly userId: string }) {
    let listener = this.#listeners.get(session.id);
    if (!listener) {
      if (!SESSION_ID.test(session.id))
        throw new Error(`unexpected session id ${JSON.stringify(session.id)}`);
      const directory = path.join(this.#options.home, "egress", session.id);
      listener = mkdir(directory, { recursive: true, mode: 0o700 }).then(() =>
        this.#proxy.listen(
          { socketPath: path.join(directory, "proxy.sock") },
          { orgId: session.orgId, userId: session.userId, sessionId: session.id },
        ),
      );
      listener.catch(() => this.#listeners.delete(session.id));
      this.#listeners.set(session.id, listener);
    }
    return listener;
  }

  /** The allowed hosts and the hosts that get a credential, from the org's policy (at most a second old). */
  async networkAccess(orgId: string, sessionId?: string): Promise<NetworkAccess> {
    const policy = sessionId ? await this.#sessionPolicy(orgId, sessionId) : await this.#orgPolicy(orgId);
    return {
      allowedHosts: policy?.allowedHosts ?? [],
      credentialHosts: [...new Set((policy?.credentials ?? []).map((rule) => rule.host))],
    };
  }

  async #orgPolicy(orgId: string): Promise<EgressPolicyBody | null> {
    let cached = this.#policies.get(orgId);
    if (!cached || cached.expiresAt <= Date.now()) {
      const policy = await this.#options.policies.get(orgId);
      cached = { policy, expiresAt: Date.now() + POLICY_CACHE_MS };
      this.#policies.set(orgId, cached);
    }
    return cached.policy;
  }

  /**
   * The org's policy as the session's environment narrows it (at most a second old). A session with no
   * environment gets the org's policy; an environment that cannot be read gets nothing (fails closed).
   */
  async #sessionPolicy(orgId: string, sessionId: string): Promise<EgressPolicyBody | null> {
    const orgPolicy = await this.#orgPolicy(orgId);
    const buildHosts = this.#buildHosts.get(sessionId);
    if (buildHosts) {
      const names = new Set(buildHosts.map((host) => host.replace(/:\d+$/, "")));
      const credentials = (orgPolicy?.credentials ?? []).filter((rule) =>
        names.has(rule.host.replace(/:\d+$/, "")),
      );
      return { ...(orgPolicy ?? {}), allowedHosts: [...buildHosts], credentials };
    }
    const environmentOf = this.#options.environmentOf;
    if (!environmentOf) return orgPolicy;
    let cached = this.#environments.get(sessionId);
    if (!cached || cached.expiresAt <= Date.now()) {
      cached = {
        environment: environmentOf(orgId, sessionId).catch(() => "unreadable" as const),
        expiresAt: Date.now() + POLICY_CACHE_MS,
      };
      this.#environments.set(sessionId, cached);
    }
    const environment = await cached.environment;
    if (environment === "unreadable") return { allowedHosts: [], credentials: [] };
    const narrowed = environmentEgressPolicy(orgPolicy, environment);
    return { ...(orgPolicy ?? {}), allowedHosts: narrowed.allowedHosts, credentials: narrowed.credentials };
  }

  /** The org's policy (at most a second old) plus the session's canaries; no policy: refuse all. */
  async #policyFor(context: EgressContext): Promise<EgressPolicy> {
    const policy = context.sessionId
      ? await this.#sessionPolicy(context.orgId, context.sessionId)
      : await this.#orgPolicy(context.orgId);
    const canaries = context.sessionId ? canariesFor(this.#options.masterKey, context.sessionId) : undefined;
    const vaults = context.sessionId ? await this.#vaultEgressFor(context.sessionId) : NO_VAULT_EGRESS;
    const repositories = context.sessionId
      ? await this.#repositoryEgressFor(context.orgId, context.sessionId)
      : NO_REPOSITORY_EGRESS;
    return {
      allowedHosts: policy?.allowedHosts ?? [],
      credentials: [...(policy?.credentials ?? []), ...vaults.rules, ...repositories.rules],
      canaries: canaries
        ? [
            { label: "AWS_ACCESS_KEY_ID", value: canaries.accessKeyId },
            { label: "AWS_SECRET_ACCESS_KEY", value: canaries.secretAccessKey },
          ]
        : [],
    };
  }

  /**
   * The rules and variables of a session's vault credentials, at most a second old. An archived vault
   * still serves it; one deleted or no longer the owner's gives nothing (fails closed), nor does a read
   * that fails.
   */
  #vaultEgressFor(sessionId: string): Promise<VaultEgress> {
    const session = this.#sessionVaults.get(sessionId);
    const read = this.#options.vaultCredentials;
    if (!session?.vaultIds || !read) return Promise.resolve(NO_VAULT_EGRESS);
    const cached = this.#vaultEgress.get(sessionId);
    if (cached && cached.expiresAt > Date.now()) return cached.egress;
    const egress = read(session.orgId, session.userId, session.vaultIds, { isRunning: true }).then(
      toVaultEgress,
      (error: Error) => {
        this.#options.log(`vault credentials of session ${sessionId}: ${error.message}`);
        return NO_VAULT_EGRESS;
      },
    );
    this.#vaultEgress.set(sessionId, { egress, expiresAt: Date.now() + POLICY_CACHE_MS });
    return egress;
  }

  /**
   * A session's repository tokens, at most a second old; a read that fails gives none (fails closed:
   * the repository's host then answers as to a client without a token).
   */
  #repositoryEgressFor(orgId: string, sessionId: string): Promise<RepositoryEgress> {
    const read = this.#options.repositoryTokens;
    if (!read) return Promise.resolve(NO_REPOSITORY_EGRESS);
    const cached = this.#repositoryEgress.get(sessionId);
    if (cached && cached.expiresAt > Date.now()) return cached.egress;
    const egress = read(orgId, sessionId).catch((error: Error) => {
      this.#options.log(`repository tokens of session ${sessionId}: ${error.message}`);
      return NO_REPOSITORY_EGRESS;
    });
    this.#repositoryEgress.set(sessionId, { egress, expiresAt: Date.now() + POLICY_CACHE_MS });
    return egress;
  }

  /**
   * The org's secrets plus, for a session's requests, its repository tokens: they resolve by their
   * `session_resource:` names, and are scanned for in every request like any other secret.
   */
  #withRepositoryTokens(secrets: EgressSecrets): EgressSecrets {
    return {
      resolveSecret: async (context, name) => {
        if (!name.startsWith(REPOSITORY_SECRET_PREFIX)) return secrets.resolveSecret(context, name);
        if (!context.sessionId) return null;
        const repositories = await this.#repositoryEgressFor(context.orgId, context.sessionId);
        return repositories.values.get(name) ?? null;
      },
      resolveAllSecrets: async (context) => {
        const all = await secrets.resolveAllSecrets(context);
        if (!context.sessionId || !this.#options.repositoryTokens) return all;
        const repositories = await this.#repositoryEgressFor(context.orgId, context.sessionId);
        if (repositories.values.size === 0) return all;
        return new Map([...all, ...repositories.values]);
      },
    };
  }

  #onAudit(event: EgressAuditEvent): void {
    // One entry per request: its `egress` entry already names the injected secrets (secretNames), so
    // the proxy's routine per-secret `secret_use` events would only repeat it. A flagged one (the
    // credential came back in a response and was withheld, or withdrawn) says something the egress
    // entry does not, and is kept.
    if (event.kind === "secret_use" && !event.isFlagged) return;
    const { orgId, sessionId } = event.context;
    void this.#options.audit.append(orgId, toAuditEntry(event)).catch((error: Error) => {
      this.#options.log(`egress audit for org ${orgId}: ${error.message}`);
    });
    if (event.kind !== "egress" || event.decision !== "refused" || !sessionId) return;
    const defaultPort = event.scheme === "https" ? 443 : 80;
    const authority = event.port === defaultPort ? event.host : `${event.host}:${event.port}`;
    const reason = event.message ?? event.refusal ?? "refused";
    this.#refusalSeq += 1;
    this.#refusals.push({
      seq: this.#refusalSeq,
      sessionId,
      text: `outrig egress refused ${event.method} ${event.scheme}://${authority}${event.path}: ${reason}`,
    });
    if (this.#refusals.length > REFUSALS_KEPT)
      this.#refusals.splice(0, this.#refusals.length - REFUSALS_KEPT);
  }
}
