import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type {
  CreateSandboxOptions,
  ExecRequest,
  ExecResult,
  SandboxHandle,
  SandboxProvider,
} from "@outrig/core";
import { FakeSandboxProvider } from "@outrig/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { normalizePackages, packageLayerDigest } from "./package-layer-key.js";
import { PackageBuildError, PackageLayers, SANDBOX_PACKAGES_DIR } from "./package-layers.js";

type Installer = (options: CreateSandboxOptions, request: ExecRequest) => Promise<ExecResult>;

/** Runs `installer` for every command of a build sandbox; the rest is the fake provider's. */
class InstallerProvider implements SandboxProvider {
  readonly id = "installer";
  readonly created: CreateSandboxOptions[] = [];
  readonly #fake = new FakeSandboxProvider();
  installer: Installer;

  constructor(installer: Installer) {
    this.installer = installer;
  }

  async create(options: CreateSandboxOptions): Promise<SandboxHandle> {
    this.created.push(options);
    const handle = await this.#fake.create(options);
    return {
      id: handle.id,
      isAlive: () => handle.isAlive(),
      destroy: () => handle.destroy(),
      sandbox: { ...handle.sandbox, exec: (request) => this.installer(options, request) },
    };
  }

  close(): Promise<void> {
    return this.#fake.close();
  }
}

const ok = (stdout = ""): ExecResult => ({
  exitCode: 0,
  signal: null,
  stdout,
  stderr: "",
  durationMs: 1,
  isTimedOut: false,
  isTruncated: false,
});

/** The host directory bound writable at SANDBOX_PACKAGES_DIR: where the installer writes the layer. */
function layerTarget(options: CreateSandboxOptions): string {
  const mount = options.writableMounts?.find((candidate) => candidate.sandboxPath === SANDBOX_PACKAGES_DIR);
  if (!mount) throw new Error("no layer mount");
  return mount.hostPath;
}

/** Writes bin/<name> into the layer, as npm would, after the others waiting here have started. */
const writesTool: Installer = async (options, request) => {
  await new Promise((resolve) => setImmediate(resolve));
  const target = layerTarget(options);
  await fs.mkdir(path.join(target, "bin"), { recursive: true });
  await fs.writeFile(path.join(target, "bin", "tool"), request.command);
  return ok();
};

let home: string;
let npmCliDir: string;
let provider: InstallerProvider;
let egressHosts: (readonly string[])[];
let released: string[];
let layers: PackageLayers;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-package-layers-"));
  npmCliDir = path.join(home, "npm");
  await fs.mkdir(path.join(npmCliDir, "bin"), { recursive: true });
  await fs.writeFile(path.join(npmCliDir, "bin", "npm-cli.js"), "");
  provider = new InstallerProvider(writesTool);
  egressHosts = [];
  released = [];
  layers = new PackageLayers({
    home: path.join(home, "outrig"),
    provider,
    baseImageId: "image-a",
    npmRegistry: "http://registry.npm.test:4873/",
    npmCliDir,
    egress: {
      packageBuildOptions: async (_build, allowedHosts) => {
        egressHosts.push(allowedHosts);
        return {
          readOnlyMounts: [],
          env: { HTTP_PROXY: "http://127.0.0.1:3128" },
          egressSocketPath: "/nowhere",
        };
      },
      releaseSession: async (id) => {
        released.push(id);
      },
    },
    keepUnusedMs: 60_000,
    limitsFor: async (orgId) => ({ memoryBytes: orgId === "org_a" ? 256 * 1024 * 1024 : 1024 }),
    log: () => undefined,
  });
});

afterEach(async () => {
  await provider.close();
  await fs.rm(home, { recursive: true, force: true });
});

const request = (npm: string[], orgId = "org_a") => ({ orgId, userId: "user_a", packages: { npm } });

describe("package layer digests", () => {
  it("ignore the order and repetition of specs and empty managers, and follow the base image", () => {
    const one = packageLayerDigest("image-a", normalizePackages({ npm: ["b", "a", "a"], pip: [] }));
    const two = packageLayerDigest("image-a", normalizePackages({ npm: ["a", "b"] }));
    expect(one).toBe(two);
    expect(packageLayerDigest("image-b", normalizePackages({ npm: ["a", "b"] }))).not.toBe(one);
    expect(packageLayerDigest("image-a", normalizePackages({ npm: ["a", "b", "c"] }))).not.toBe(one);
    expect(layers.digestOf({ npm: [], apt: [] })).toBeUndefined();
  });
});

describe("PackageLayers", () => {
  it("builds a layer once for concurrent callers, through egress to the registry alone, then finds it", async () => {
    const waits: string[] = [];
    const results = await Promise.all(
      [0, 1, 2].map(() =>
        layers.ensure(request(["left-pad@<2", "tool"]), async (digest) => {
          waits.push(digest);
        }),
      ),
    );
    expect(provider.created).toHaveLength(1);
    expect(layers.buildCount).toBe(1);
    expect(results.map((result) => result?.source).sort()).toEqual(["built", "joined", "joined"]);
    expect(waits).toHaveLength(3);
    expect(egressHosts).toEqual([["registry.npm.test:4873"]]);
    expect(released).toEqual([provider.created[0]?.sessionId]);
    const layer = results[0]?.layer;
    // Each spec is one quoted word: `<` is no redirection.
    expect(await fs.readFile(path.join(layer?.treeDir ?? "", "bin", "tool"), "utf8")).toContain(
      "'left-pad@<2'",
    );
    expect(provider.created[0]?.limits).toEqual({ memoryBytes: 256 * 1024 * 1024 });
    expect(provider.created[0]?.readOnlyMounts).toContainEqual({
      hostPath: npmCliDir,
      sandboxPath: "/opt/outrig/npm",
    });

    const again = await layers.ensure(request(["tool", "left-pad@<2"]), async () => {
      throw new Error("no wait expected");
    });
    expect(again).toMatchObject({ source: "cached", layer: { digest: layer?.digest } });
    expect(provider.created).toHaveLength(1);
    expect(await layers.state("org_a", { npm: ["tool", "left-pad@<2"] })).toMatchObject({
      status: "ready",
      digest: layer?.digest,
    });
    // Another org builds its own.
    await layers.ensure(request(["tool", "left-pad@<2"], "org_b"));
    expect(provider.created).toHaveLength(2);
    expect(layers.sandboxSetup(again?.layer ?? { digest: "", treeDir: "" })).toMatchObject({
      readOnlyMounts: [{ hostPath: layer?.treeDir, sandboxPath: SANDBOX_PACKAGES_DIR }],
    });
  });

  it("fails with the installer's tail, records it, and builds again for the next caller", async () => {
    provider.installer = async () => ({
      ...ok(),
      exitCode: 1,
      stdout: "x".repeat(10_000),
      stderr: "npm error 404 Not Found - GET http://registry.npm.test:4873/missing",
    });
    const failure = await layers.ensure(request(["missing"])).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PackageBuildError);
    const message = (failure as PackageBuildError).message;
    expect(message).toMatch(/^npm install exited with 1:\n…/);
    expect(message.endsWith("npm error 404 Not Found - GET http://registry.npm.test:4873/missing")).toBe(
      true,
    );
    expect(message.length).toBeLessThan(4200);
    expect(await layers.state("org_a", { npm: ["missing"] })).toMatchObject({ status: "failed", message });
    // Nothing of the failed build is left but its record.
    const orgDir = path.dirname(path.dirname(provider.created[0]?.workspaceDir ?? ""));
    expect((await fs.readdir(orgDir)).filter((name) => name.startsWith(".build-"))).toEqual([]);

    provider.installer = writesTool;
    expect(await layers.ensure(request(["missing"]))).toMatchObject({ source: "built" });
    expect(await layers.state("org_a", { npm: ["missing"] })).toMatchObject({ status: "ready" });
  });

  it("says what it cannot install, and a command stopped by the time limit", async () => {
    await expect(
      layers.ensure({ orgId: "org_a", userId: "user_a", packages: { pip: ["pandas"] } }),
    ).rejects.toThrow("This server installs npm and apt packages only; pip packages are not supported yet.");
    // This server has no debootstrap image (no apt sources): apt specs fail before any sandbox.
    await expect(
      layers.ensure({ orgId: "org_a", userId: "user_a", packages: { apt: ["bc"] } }),
    ).rejects.toThrow(/^apt packages need the debootstrap base image/);
    expect(provider.created).toHaveLength(0);
    provider.installer = async () => ({
      ...ok("fetching…"),
      exitCode: null,
      signal: "SIGKILL",
      isTimedOut: true,
    });
    await expect(layers.ensure(request(["slow"]))).rejects.toThrow(
      /^npm install did not finish within 600000 ms:\nfetching…/,
    );
  });

  it("collects layers no session started from for keepUnusedMs", async () => {
    const old = await layers.ensure(request(["old"]));
    const current = await layers.ensure(request(["current"]));
    const longAgo = new Date(Date.now() - 120_000);
    await fs.utimes(path.join(path.dirname(old?.layer.treeDir ?? ""), "last-used"), longAgo, longAgo);
    expect(await layers.collectGarbage("org_a")).toEqual([old?.layer.digest]);
    expect(await layers.state("org_a", { npm: ["old"] })).toMatchObject({ status: "pending" });
    expect(await layers.state("org_a", { npm: ["current"] })).toMatchObject({ status: "ready" });
    await expect(fs.stat(current?.layer.treeDir ?? "")).resolves.toBeDefined();
  });
});
