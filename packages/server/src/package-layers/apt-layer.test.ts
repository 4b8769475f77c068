import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CreateSandboxOptions, ExecRequest } from "@outrig/core";
import { FakeSandboxProvider } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APT_LIBRARY_PATH, aptInstallCommand, readAptSources, SANDBOX_APT_ROOT } from "./apt-layer.js";
import { PackageLayers } from "./package-layers.js";

let root: string;
let rootfsDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-apt-layer-"));
  rootfsDir = path.join(root, "rootfs");
  await fs.mkdir(path.join(rootfsDir, "usr", "bin"), { recursive: true });
  await fs.mkdir(path.join(rootfsDir, "var", "lib", "dpkg"), { recursive: true });
  await fs.mkdir(path.join(rootfsDir, "etc", "apt", "sources.list.d"), { recursive: true });
  await fs.writeFile(path.join(rootfsDir, "usr", "bin", "apt-get"), "");
  await fs.writeFile(path.join(rootfsDir, "var", "lib", "dpkg", "status"), "");
  await fs.writeFile(
    path.join(rootfsDir, "etc", "apt", "sources.list"),
    "deb http://deb.debian.org/debian bookworm main\n# deb http://commented.example/debian bookworm main\n",
  );
  await fs.writeFile(
    path.join(rootfsDir, "etc", "apt", "sources.list.d", "security.sources"),
    "Types: deb\nURIs: https://Security.Debian.org/debian-security\nSuites: bookworm-security\n",
  );
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe("apt layers", () => {
  it("take the build's allowlist from the image's apt sources, and need apt and a dpkg database", async () => {
    // A commented-out source is no host of the build's.
    expect(readAptSources(rootfsDir)?.hosts).toEqual(["deb.debian.org", "security.debian.org"]);
    const bare = path.join(root, "bare");
    await fs.mkdir(path.join(bare, "usr", "bin"), { recursive: true });
    expect(readAptSources(bare)).toBeUndefined();
  });

  it("fetch through the proxy into the layer and unpack there, each spec one quoted word", () => {
    const command = aptInstallCommand(["bc", "jq=1.6-2.1"]);
    expect(command).toContain("-o 'Acquire::http::Proxy=http://127.0.0.1:3128'");
    expect(command).toContain("--download-only install 'bc' 'jq=1.6-2.1'");
    expect(command).toContain(`dpkg-deb -x "$deb" ${SANDBOX_APT_ROOT}`);
  });

  it("build in a sandbox with the image's apt files, allowed the mirror hosts and the npm registry alone", async () => {
    const created: CreateSandboxOptions[] = [];
    const commands: string[] = [];
    const allowlists: (readonly string[])[] = [];
    const fake = new FakeSandboxProvider();
    const layers = new PackageLayers({
      home: path.join(root, "home"),
      provider: {
        id: "apt-test",
        create: async (options) => {
          created.push(options);
          const handle = await fake.create(options);
          return {
            ...handle,
            isAlive: () => handle.isAlive(),
            destroy: () => handle.destroy(),
            sandbox: {
              ...handle.sandbox,
              exec: async (request: ExecRequest) => {
                commands.push(request.command);
                return {
                  exitCode: 0,
                  signal: null,
                  stdout: "",
                  stderr: "",
                  durationMs: 1,
                  isTimedOut: false,
                  isTruncated: false,
                };
              },
            },
          };
        },
        close: () => fake.close(),
      },
      baseImageId: "image-apt",
      npmRegistry: "http://registry.npm.test:4873/",
      npmCliDir: path.join(root, "npm"),
      apt: { hosts: ["deb.debian.org"], rootfsDir },
      egress: {
        packageBuildOptions: async (_build, allowedHosts) => {
          allowlists.push(allowedHosts);
          return { readOnlyMounts: [], env: {}, egressSocketPath: "/nowhere" };
        },
      },
      log: () => undefined,
    });
    await fs.mkdir(path.join(root, "npm", "bin"), { recursive: true });
    await fs.writeFile(path.join(root, "npm", "bin", "npm-cli.js"), "");
    const found = await layers.ensure({
      orgId: "org_a",
      userId: "user_a",
      packages: { apt: ["bc"], npm: ["left-pad"] },
    });
    await fake.close();
    expect(found?.source).toBe("built");
    expect(allowlists).toEqual([["deb.debian.org", "registry.npm.test:4873"]]);
    expect(created).toHaveLength(1);
    expect(created[0]?.readOnlyMounts).toEqual(
      expect.arrayContaining([
        { hostPath: path.join(rootfsDir, "etc", "apt"), sandboxPath: "/opt/outrig/image-apt/etc" },
        { hostPath: path.join(rootfsDir, "var", "lib", "dpkg"), sandboxPath: "/opt/outrig/image-apt/dpkg" },
      ]),
    );
    expect(commands).toHaveLength(2);
    expect(commands[0]).toContain("apt-get");
    expect(commands[1]).toContain("npm-cli.js");
    const setup = layers.sandboxSetup(found?.layer ?? { digest: "", treeDir: "" });
    expect(setup.env.PATH).toContain(`${SANDBOX_APT_ROOT}/usr/bin`);
    expect(setup.env.LD_LIBRARY_PATH).toBe(APT_LIBRARY_PATH);
  });
});
