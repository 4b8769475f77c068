/**
 * The bubblewrap provider on a prepared root filesystem (`outrig image build`): the conformance
 * suite, the isolation checks that could differ on an image, and the tools an agent expects.
 * Needs a built image named by OUTRIG_TEST_IMAGE_DIR (.ci/run builds one); skipped otherwise.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ExecResult, isFileError } from "@outrig/core";
import { describeSandboxProviderConformance } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandbox,
  type BubblewrapSandboxProvider,
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  readImage,
} from "../src/index.js";

const imageDir = process.env.OUTRIG_TEST_IMAGE_DIR?.trim() || undefined;
const image = imageDir === undefined ? undefined : readImage(imageDir);
if (imageDir === undefined)
  console.warn(
    "bubblewrap-image.test.ts: skipped, OUTRIG_TEST_IMAGE_DIR is not set (build one with `outrig image build --out DIR`)",
  );

describe.runIf(imageDir !== undefined)("OUTRIG_TEST_IMAGE_DIR", () => {
  it("names a complete image", () => {
    expect(image, `${imageDir} has no manifest.json or no rootfs/usr/bin/sh`).toBeDefined();
  });
});

describe.runIf(image !== undefined)("bubblewrap on the image", () => {
  const rootfsDir = image?.rootfsDir ?? "";
  // Created on first use: a skipped describe still runs this callback to collect its tests.
  let blobDirectory: string | undefined;
  let conformanceProvider: BubblewrapSandboxProvider | undefined;
  const conformance = (): BubblewrapSandboxProvider => {
    blobDirectory ??= mkdtempSync(join(tmpdir(), "outrig-image-blobs-"));
    conformanceProvider ??= createBubblewrapSandboxProvider({
      rootfsDir,
      blobStore: createLocalDirectoryBlobStore(blobDirectory),
    });
    return conformanceProvider;
  };
  afterAll(async () => {
    await conformanceProvider?.close();
    if (blobDirectory) rmSync(blobDirectory, { recursive: true, force: true });
  });

  describeSandboxProviderConformance("bubblewrap on the image", conformance, {
    restoreWorkspace: (ref, directory) => conformance().restoreWorkspace(ref, directory),
  });

  describe("tools and isolation", () => {
    const canary = `sk-ant-canary-${randomBytes(12).toString("hex")}`;
    const previousKey = process.env.ANTHROPIC_API_KEY;
    let root: string;
    let provider: BubblewrapSandboxProvider;
    let first: BubblewrapSandbox;
    let second: BubblewrapSandbox;

    const run = (command: string, sandbox: BubblewrapSandbox = first): Promise<ExecResult> =>
      sandbox.sandbox.exec({ command, timeoutMs: 60_000 }, new AbortController().signal);

    beforeAll(async () => {
      process.env.ANTHROPIC_API_KEY = canary;
      root = await mkdtemp(join(tmpdir(), "outrig-image-"));
      await mkdir(join(root, "data"));
      await writeFile(join(root, "data", "secret.txt"), canary);
      provider = createBubblewrapSandboxProvider({ rootfsDir });
      first = await provider.create({ sessionId: "first", orgId: "org", workspaceDir: join(root, "first") });
      second = await provider.create({
        sessionId: "second",
        orgId: "org",
        workspaceDir: join(root, "second"),
      });
    });

    afterAll(async () => {
      await provider?.close();
      if (root) await rm(root, { recursive: true, force: true });
      if (previousKey === undefined) delete process.env.ANTHROPIC_API_KEY;
      else process.env.ANTHROPIC_API_KEY = previousKey;
    });

    it("runs on the image's /usr, not the host's", async () => {
      // A bind mount keeps inode numbers: /usr/bin/bash inside is the image's file.
      const inside = await run("stat -c %i /usr/bin/bash; command -v bwrap || echo no-bwrap");
      expect(inside.stdout).toBe(`${statSync(join(rootfsDir, "usr/bin/bash")).ino}\nno-bwrap\n`);
      expect((await run(". /usr/lib/os-release && echo $VERSION_CODENAME")).stdout).toBe("bookworm\n");
    });

    it("has git, python3, rg, cc and node working", async () => {
      const git = await run(
        "git init -q repo && cd repo && echo hi > a && git add a && git -c user.name=t -c user.email=t@example.com commit -qm first && git log --format=%s",
      );
      expect(git).toMatchObject({ exitCode: 0, stdout: "first\n" });
      expect(await run("python3 -c 'import json, sqlite3, venv; print(json.dumps([1 + 1]))'")).toMatchObject({
        exitCode: 0,
        stdout: "[2]\n",
      });
      expect(await run("python -c 'print(3)'")).toMatchObject({ exitCode: 0, stdout: "3\n" });
      // System pip is externally managed (PEP 668); a venv gets pip offline from the bundled wheel.
      const venv = await run("python3 -m venv /tmp/venv && /tmp/venv/bin/python -m pip --version");
      expect(venv.exitCode, venv.stderr).toBe(0);
      expect(venv.stdout).toMatch(/^pip \d/);
      expect(await run("printf 'alpha\\nneedle\\n' > hay.txt && rg -n needle hay.txt")).toMatchObject({
        exitCode: 0,
        stdout: "2:needle\n",
      });
      const compiled = await run(
        "printf '#include <stdio.h>\\nint main(void){printf(\"%%d\\\\n\", 6*7);return 0;}\\n' > hello.c && cc -O2 -o hello hello.c && ./hello && make --version | head -1 && c++ --version | head -1",
      );
      expect(compiled.exitCode, compiled.stderr).toBe(0);
      expect(compiled.stdout).toMatch(/^42\nGNU Make \d/);
      const node = await run("node -e 'console.log(process.version, 2 ** 10)'");
      expect(node).toMatchObject({ exitCode: 0, stdout: `${process.version} 1024\n` });
      expect((await run("curl --version | head -1; jq --version")).stdout).toMatch(/^curl \d.*\njq-\d/);
    }, 180_000); // compiling C on a loaded CI machine can take a while

    it("does not pass the server's environment in and keeps /etc minimal", async () => {
      const environment = await run("cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; env");
      expect(environment.stdout).not.toContain(canary);
      const variables = (await run("env")).stdout
        .trim()
        .split("\n")
        .map((line) => line.split("=")[0])
        .sort();
      expect(variables).toEqual(["HOME", "LANG", "PATH", "PWD", "SHLVL", "TERM", "USER", "_"]);
      // The image's own /etc (shadow, apt sources…) stays out; only the minimal set is there.
      expect((await run("ls -A /etc")).stdout.trim().split("\n")).toEqual([
        "alternatives",
        "group",
        "hostname",
        "hosts",
        "ld.so.cache",
        "nsswitch.conf",
        "passwd",
        "ssl",
      ]);
      expect((await run("ls -A /etc/ssl")).stdout.trim().split("\n")).toEqual(
        expect.not.arrayContaining(["private"]),
      );
    });

    it("cannot read host data, nor the image's /var, /root or /home", async () => {
      const result = await run(
        `cat ${join(root, "data", "secret.txt")}; ls ${root}; ls /root; cat /etc/shadow; ls /work; ls /home; ls /var; ls /run`,
      );
      expect(result.stdout).toBe("");
      expect(result.stdout + result.stderr).not.toContain(canary);
      expect(result.stderr).toContain("No such file or directory");
      const error = await first.sandbox
        .readFile(join(root, "data", "secret.txt"))
        .catch((caught: unknown) => caught);
      expect(isFileError(error, "not_found")).toBe(true);
    });

    it("is read-only outside /workspace and /tmp", async () => {
      for (const path of [
        "/usr/outrig-test",
        "/etc/outrig-test",
        "/outrig-test",
        "/opt/outrig-test",
        "/bin/outrig-test",
        "/lib/outrig-test",
      ]) {
        const result = await run(`touch ${path}`);
        expect(result.exitCode, path).not.toBe(0);
        expect(result.stderr, path).toMatch(/Read-only file system|Permission denied/);
      }
      expect((await run("touch /tmp/ok /workspace/ok && echo written")).stdout).toBe("written\n");
    });

    it("has only loopback, no capabilities, no user namespaces, and its own processes", async () => {
      expect((await run("ip -o link show | awk -F': ' '{print $2}'")).stdout.trim()).toBe("lo");
      expect((await run("getent hosts deb.debian.org || echo unresolved")).stdout).toContain("unresolved");
      expect((await run("id -u; id -un; hostname")).stdout).toBe("1000\nsandbox\nsandbox\n");
      const capabilities = (await run("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status")).stdout.trim();
      expect(capabilities.split("\n")).toHaveLength(4);
      for (const line of capabilities.split("\n")) expect(line).toMatch(/:\s+0+$/);
      expect((await run("unshare -U true")).exitCode).not.toBe(0);
      const marker = String(3000 + Math.floor(Math.random() * 1000));
      const background = run(`sleep ${marker}.5`, second).catch((error: unknown) => error);
      await expect.poll(async () => (await run("ps -eo args", second)).stdout).toContain(`sleep ${marker}.5`);
      expect((await run("ps -eo args")).stdout).not.toContain(`${marker}.5`);
      await second.destroy();
      expect(await background).toMatchObject({ code: "sandbox_unavailable" });
    });
  });
});
