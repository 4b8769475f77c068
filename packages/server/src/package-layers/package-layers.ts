/**
 * An environment's `packages`, installed once into a cached layer that its sessions start from.
 *
 * A layer is a directory tree installed under SANDBOX_PACKAGES_DIR (npm's global prefix: `bin/`,
 * `lib/node_modules/`) by a build sandbox started from the same base image as sessions, whose only
 * way out is the egress proxy with an allowlist of the package registries alone. The finished tree is
 * renamed into `<home>/package-layers/<org digest>/<layer digest>/` (complete once it has its
 * `layer.json`) and bound read-only at SANDBOX_PACKAGES_DIR into every sandbox of an environment
 * with those packages. Layers are per org (an install script writes what it likes into its tree, so
 * one org's layer is never another's) and per host (one server per home, so an in-process promise per
 * layer is the lock: concurrent first sessions wait for one build). A failed build leaves
 * `<digest>.failed.json` with the installer's tail and is tried again by the next session; a layer no
 * session started from for `keepUnusedMs` is garbage.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { AppError, type ReadOnlyMount, type SandboxLimits, type SandboxProvider } from "@outrig/core";
import {
  APT_LIBRARY_PATH,
  APT_PATH,
  type AptSources,
  aptBuildMounts,
  aptInstallCommand,
} from "./apt-layer.js";
import {
  hasPackages,
  type NormalizedPackages,
  normalizePackages,
  packageLayerDigest,
} from "./package-layer-key.js";

/** Where a layer appears in sandboxes: npm's global prefix. */
export const SANDBOX_PACKAGES_DIR = "/opt/outrig/packages";
/** Where the host's npm is bound (read-only) into a build sandbox. */
export const SANDBOX_NPM_DIR = "/opt/outrig/npm";
const SANDBOX_NODE = "/opt/outrig/bin/node";
const SANDBOX_PROXY = "http://127.0.0.1:3128";
/** The sandbox's PATH with the layer's bin first and the bound node last (an image has no node of its own). */
export const PACKAGES_PATH = `${SANDBOX_PACKAGES_DIR}/bin:${APT_PATH}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/outrig/bin`;
const LAYER_MANIFEST = "layer.json";
const LAST_USED = "last-used";
const TAIL_CHARS = 4000;
/** Managers this server installs; the others are refused with a clear build error. */
const SUPPORTED_MANAGERS = new Set(["npm", "apt"]);

/** The egress a build sandbox gets: the proxy with exactly these hosts allowed. */
export interface PackageBuildEgress {
  packageBuildOptions(
    build: { readonly id: string; readonly orgId: string; readonly userId: string },
    allowedHosts: readonly string[],
  ): Promise<{
    readonly readOnlyMounts: readonly ReadOnlyMount[];
    readonly env: Readonly<Record<string, string>>;
    readonly egressSocketPath: string;
  }>;
  releaseSession?(id: string): Promise<void>;
}

export interface PackageLayersOptions {
  readonly home: string;
  readonly provider: SandboxProvider;
  /** The base image sessions start from (its content hash, or `host` with the node version). */
  readonly baseImageId: string;
  /** npm registry URL the build installs from (OUTRIG_NPM_REGISTRY); its host is the build's only way out. */
  readonly npmRegistry: string;
  /** The host's npm package directory (holding bin/npm-cli.js), bound into build sandboxes. */
  readonly npmCliDir?: string;
  /** The base image's apt sources; without them (no image, or no apt in it) apt specs fail clearly. */
  readonly apt?: AptSources;
  /** Without it a build has no network and fails clearly. */
  readonly egress?: PackageBuildEgress;
  /** A build longer than this fails (default 10 minutes). */
  readonly timeoutMs?: number;
  /** The org's sandbox limits, applied to its builds as to its sessions. */
  readonly limitsFor?: (orgId: string) => Promise<SandboxLimits>;
  /** A layer no session started from for this long is removed by collectGarbage (default 7 days). */
  readonly keepUnusedMs?: number;
  readonly log: (message: string) => void;
}

export interface PackageLayer {
  readonly digest: string;
  /** The host directory bound read-only at SANDBOX_PACKAGES_DIR. */
  readonly treeDir: string;
}

/** How the caller got its layer: it ran the build, waited for another's, or found it built. */
export type PackageLayerSource = "built" | "joined" | "cached";

/** The layer of an environment's packages as this host knows it, for the API's environment object. */
export type PackageLayerState =
  | { readonly status: "none" }
  | { readonly status: "pending" | "building"; readonly digest: string }
  | { readonly status: "ready"; readonly digest: string; readonly builtAt: string }
  | {
      readonly status: "failed";
      readonly digest: string;
      readonly message: string;
      readonly failedAt: string;
    };

/** A build that failed: the message names the installer and ends with its output's tail. */
export class PackageBuildError extends AppError {
  readonly digest: string;
  constructor(digest: string, message: string) {
    super("environment_build_failed", message);
    this.digest = digest;
  }
}

interface LayerManifest {
  readonly format: 1;
  readonly digest: string;
  readonly baseImageId: string;
  readonly packages: NormalizedPackages;
  readonly builtAt: string;
  readonly buildMs: number;
}

export class PackageLayers {
  readonly #options: PackageLayersOptions;
  readonly #inFlight = new Map<string, Promise<PackageLayer>>();
  #builds = 0;

  constructor(options: PackageLayersOptions) {
    this.#options = options;
  }

  /** Installer runs on this host since start (a build that failed counts). */
  get buildCount(): number {
    return this.#builds;
  }

  /** The digest of a package set on this host's base image; undefined when there is nothing to install. */
  digestOf(packages: Readonly<Record<string, readonly string[]>>): string | undefined {
    const normalized = normalizePackages(packages);
    return hasPackages(normalized) ? packageLayerDigest(this.#options.baseImageId, normalized) : undefined;
  }

  /**
   * The layer of `packages` for `orgId`: found, awaited (another session builds it) or built now, with
   * `onBuildStart` called before a wait. Rejects with PackageBuildError when the install fails.
   */
  async ensure(
    request: {
      readonly orgId: string;
      readonly userId: string;
      readonly packages: Readonly<Record<string, readonly string[]>>;
    },
    onBuildStart?: (digest: string) => Promise<void>,
  ): Promise<{ layer: PackageLayer; source: PackageLayerSource; durationMs: number } | undefined> {
    const packages = normalizePackages(request.packages);
    if (!hasPackages(packages)) return undefined;
    const digest = packageLayerDigest(this.#options.baseImageId, packages);
    const layerDir = this.#layerDir(request.orgId, digest);
    const started = performance.now();
    const found = await this.#readLayer(layerDir, digest);
    if (found) return { layer: found, source: "cached", durationMs: 0 };
    const key = `${request.orgId}/${digest}`;
    let build = this.#inFlight.get(key);
    const source: PackageLayerSource = build ? "joined" : "built";
    if (!build) {
      build = this.#build(request.orgId, request.userId, digest, packages).finally(() =>
        this.#inFlight.delete(key),
      );
      this.#inFlight.set(key, build);
      // Its callers may stop waiting (a closed turn); the failure is theirs to report, never unhandled.
      build.catch(() => undefined);
    }
    await onBuildStart?.(digest);
    const layer = await build;
    return { layer, source, durationMs: Math.round(performance.now() - started) };
  }

  /** What this host knows of the layer for `packages` in `orgId`. */
  async state(
    orgId: string,
    packages: Readonly<Record<string, readonly string[]>>,
  ): Promise<PackageLayerState> {
    const digest = this.digestOf(packages);
    if (!digest) return { status: "none" };
    if (this.#inFlight.has(`${orgId}/${digest}`)) return { status: "building", digest };
    const layerDir = this.#layerDir(orgId, digest);
    const manifest = await readJson<LayerManifest>(path.join(layerDir, LAYER_MANIFEST));
    if (manifest?.digest === digest) return { status: "ready", digest, builtAt: manifest.builtAt };
    const failure = await readJson<{ message: string; failedAt: string }>(`${layerDir}.failed.json`);
    if (failure) return { status: "failed", digest, message: failure.message, failedAt: failure.failedAt };
    return { status: "pending", digest };
  }

  /** The mounts and environment a session's sandbox gets to start from `layer`. */
  sandboxSetup(layer: PackageLayer): {
    readOnlyMounts: ReadOnlyMount[];
    env: Record<string, string>;
  } {
    return {
      readOnlyMounts: [{ hostPath: layer.treeDir, sandboxPath: SANDBOX_PACKAGES_DIR }],
      env: {
        PATH: PACKAGES_PATH,
        NODE_PATH: `${SANDBOX_PACKAGES_DIR}/lib/node_modules`,
        LD_LIBRARY_PATH: APT_LIBRARY_PATH,
      },
    };
  }

  /**
   * Removes the org's layers (and failure records) that no session started from for `keepUnusedMs`,
   * and build directories left by a crash. Resolves the digests removed.
   */
  async collectGarbage(orgId: string, now = Date.now()): Promise<string[]> {
    const orgDir = this.#orgDir(orgId);
    const keepUnusedMs = this.#options.keepUnusedMs ?? 7 * 24 * 3600_000;
    const removed: string[] = [];
    for (const name of await readdir(orgDir).catch(() => [] as string[])) {
      const entry = path.join(orgDir, name);
      if (name.startsWith(".build-")) {
        if (![...this.#inFlight.keys()].some((key) => name.startsWith(`.build-${key.split("/")[1]}`)))
          await rm(entry, { recursive: true, force: true });
        continue;
      }
      const digest = name.replace(/\.failed\.json$/, "");
      if (this.#inFlight.has(`${orgId}/${digest}`)) continue;
      const marker = name.endsWith(".failed.json") ? entry : path.join(entry, LAST_USED);
      const usedAt = (await stat(marker).catch(() => undefined))?.mtimeMs ?? 0;
      if (now - usedAt < keepUnusedMs) continue;
      await rm(entry, { recursive: true, force: true });
      if (!name.endsWith(".failed.json")) removed.push(digest);
    }
    return removed;
  }

  #orgDir(orgId: string): string {
    const name = createHash("sha256").update(`outrig-package-layers\0${orgId}`).digest("hex").slice(0, 32);
    return path.join(this.#options.home, "package-layers", name);
  }

  #layerDir(orgId: string, digest: string): string {
    return path.join(this.#orgDir(orgId), digest);
  }

  async #readLayer(layerDir: string, digest: string): Promise<PackageLayer | undefined> {
    const manifest = await readJson<LayerManifest>(path.join(layerDir, LAYER_MANIFEST));
    if (manifest?.digest !== digest) return undefined;
    const now = new Date();
    await utimes(path.join(layerDir, LAST_USED), now, now).catch(() => undefined);
    return { digest, treeDir: path.join(layerDir, "tree") };
  }

  async #build(
    orgId: string,
    userId: string,
    digest: string,
    packages: NormalizedPackages,
  ): Promise<PackageLayer> {
    this.#builds += 1;
    const options = this.#options;
    const layerDir = this.#layerDir(orgId, digest);
    const started = performance.now();
    const buildDir = path.join(this.#orgDir(orgId), `.build-${digest}-${randomBytes(4).toString("hex")}`);
    const buildId = `pkgbuild_${digest.slice(0, 24)}_${randomBytes(4).toString("hex")}`;
    try {
      const unsupported = Object.keys(packages).filter((manager) => !SUPPORTED_MANAGERS.has(manager));
      if (unsupported.length > 0)
        throw new PackageBuildError(
          digest,
          `This server installs npm and apt packages only; ${unsupported.join(", ")} packages are not supported yet.`,
        );
      const commands: { installer: string; command: string }[] = [];
      const allowedHosts = new Set<string>();
      const readOnlyMounts: ReadOnlyMount[] = [];
      if (packages.apt) {
        if (!options.apt)
          throw new PackageBuildError(
            digest,
            "apt packages need the debootstrap base image (outrig image build), whose apt installs them; this server runs sessions without one, or its image has no apt sources.",
          );
        for (const host of options.apt.hosts) allowedHosts.add(host);
        readOnlyMounts.push(...aptBuildMounts(options.apt));
        commands.push({ installer: "apt-get", command: aptInstallCommand(packages.apt) });
      }
      if (packages.npm) {
        const npmCliDir = options.npmCliDir;
        if (!npmCliDir || !existsSync(path.join(npmCliDir, "bin", "npm-cli.js")))
          throw new PackageBuildError(
            digest,
            "npm is not available to build sandboxes on this server (OUTRIG_NPM_CLI_DIR).",
          );
        const registry = new URL(options.npmRegistry);
        allowedHosts.add(registry.port ? `${registry.hostname}:${registry.port}` : registry.hostname);
        readOnlyMounts.push({ hostPath: npmCliDir, sandboxPath: SANDBOX_NPM_DIR });
        commands.push({
          installer: "npm install",
          command: npmInstallCommand(options.npmRegistry, packages.npm),
        });
      }
      if (!options.egress)
        throw new PackageBuildError(
          digest,
          "Packages are installed through the egress proxy, which this server has not configured.",
        );
      await mkdir(path.join(buildDir, "tree"), { recursive: true, mode: 0o700 });
      await mkdir(path.join(buildDir, "workspace"), { recursive: true, mode: 0o700 });
      const limits = await options.limitsFor?.(orgId);
      const egress = await options.egress.packageBuildOptions({ id: buildId, orgId, userId }, [
        ...allowedHosts,
      ]);
      const handle = await options.provider.create({
        sessionId: buildId,
        orgId,
        workspaceDir: path.join(buildDir, "workspace"),
        readOnlyMounts: [...egress.readOnlyMounts, ...readOnlyMounts],
        writableMounts: [{ hostPath: path.join(buildDir, "tree"), sandboxPath: SANDBOX_PACKAGES_DIR }],
        env: { ...egress.env, PATH: PACKAGES_PATH },
        egressSocketPath: egress.egressSocketPath,
        ...(limits ? { limits } : {}),
      });
      const timeoutMs = options.timeoutMs ?? 600_000;
      const deadline = Date.now() + timeoutMs;
      try {
        // One installer after another in the one sandbox, within one time limit for the build.
        for (const { installer, command } of commands) {
          const left = Math.max(1000, deadline - Date.now());
          const result = await handle.sandbox.exec(
            { command, timeoutMs: left, maxOutputBytes: 256 * 1024 },
            AbortSignal.timeout(left + 30_000),
          );
          if (result.exitCode === 0) continue;
          const how = result.isTimedOut
            ? `did not finish within ${timeoutMs} ms`
            : result.exitCode === null
              ? `was stopped (${result.signal ?? "killed"})`
              : `exited with ${result.exitCode}`;
          throw new PackageBuildError(
            digest,
            `${installer} ${how}:\n${tailOf(`${result.stdout}\n${result.stderr}`)}`,
          );
        }
      } finally {
        await handle.destroy().catch(() => undefined);
        await options.egress.releaseSession?.(buildId).catch(() => undefined);
      }
      await rm(path.join(buildDir, "workspace"), { recursive: true, force: true });
      const manifest: LayerManifest = {
        format: 1,
        digest,
        baseImageId: options.baseImageId,
        packages,
        builtAt: new Date().toISOString(),
        buildMs: Math.round(performance.now() - started),
      };
      await writeFile(path.join(buildDir, LAST_USED), "");
      await writeFile(path.join(buildDir, LAYER_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      await rm(layerDir, { recursive: true, force: true });
      await rename(buildDir, layerDir);
      await rm(`${layerDir}.failed.json`, { force: true });
      options.log(`package layer ${digest.slice(0, 12)} for org ${orgId} built in ${manifest.buildMs} ms`);
      // Layers of environments that changed their packages are garbage once unused for keepUnusedMs.
      void this.collectGarbage(orgId).catch((error: Error) => {
        options.log(`package layers of org ${orgId}: collecting garbage: ${error.message}`);
      });
      return { digest, treeDir: path.join(layerDir, "tree") };
    } catch (error) {
      await rm(buildDir, { recursive: true, force: true }).catch(() => undefined);
      const failure =
        error instanceof PackageBuildError
          ? error
          : new PackageBuildError(digest, `The package build failed: ${(error as Error).message}`);
      await mkdir(this.#orgDir(orgId), { recursive: true, mode: 0o700 });
      await writeFile(
        `${layerDir}.failed.json`,
        JSON.stringify({ message: failure.message, failedAt: new Date().toISOString() }),
      ).catch(() => undefined);
      options.log(`package layer ${digest.slice(0, 12)} for org ${orgId}: ${failure.message.split("\n")[0]}`);
      throw failure;
    }
  }
}

/** The build command: npm's global install into the layer, from the registry, each spec one quoted word. */
export function npmInstallCommand(registry: string, specs: readonly string[]): string {
  const words = [
    SANDBOX_NODE,
    `${SANDBOX_NPM_DIR}/bin/npm-cli.js`,
    "install",
    "--global",
    `--prefix=${SANDBOX_PACKAGES_DIR}`,
    `--registry=${registry}`,
    `--proxy=${SANDBOX_PROXY}`,
    `--https-proxy=${SANDBOX_PROXY}`,
    "--no-audit",
    "--no-fund",
    "--no-update-notifier",
    "--loglevel=warn",
    ...specs,
  ];
  // Specs match the protocol's PackageSpec (no quotes), so single quotes keep `<`, `>` and `*` literal.
  return words.map((word) => `'${word}'`).join(" ");
}

function tailOf(output: string): string {
  const trimmed = output.trim();
  return trimmed.length > TAIL_CHARS ? `…${trimmed.slice(-TAIL_CHARS)}` : trimmed;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}
