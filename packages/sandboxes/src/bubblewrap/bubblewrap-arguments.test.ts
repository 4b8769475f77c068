import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildBubblewrapArguments,
  describeHostRoot,
  SANDBOX_PATH,
  type SandboxLayout,
  sandboxEnvironment,
} from "./bubblewrap-arguments.js";

/** A tiny tree shaped like a merged-/usr Debian image, plus one real top-level directory. */
const rootfsDir = mkdtempSync(join(tmpdir(), "outrig-rootfs-args-"));
mkdirSync(join(rootfsDir, "usr/bin"), { recursive: true });
mkdirSync(join(rootfsDir, "usr/lib"), { recursive: true });
mkdirSync(join(rootfsDir, "lib64"));
symlinkSync("usr/bin", join(rootfsDir, "bin"));
symlinkSync("usr/lib", join(rootfsDir, "lib"));
afterAll(() => rmSync(rootfsDir, { recursive: true, force: true }));

const baseLayout: SandboxLayout = {
  uid: 1000,
  gid: 1000,
  userName: "sandbox",
  hostname: "sandbox",
  nodePath: "/host/node",
  agentPath: "/host/agent.mjs",
  workspaceDir: "/host/workspaces/s1",
  nodeFlags: [],
  hostRoot: [
    { name: "bin", kind: "symlink", target: "usr/bin" },
    { name: "lib64", kind: "directory" },
  ],
};

/** The [source, destination] pairs of every `--ro-bind` / `--ro-bind-try` option. */
function readOnlyBinds(args: readonly string[]): [string, string][] {
  const binds: [string, string][] = [];
  args.forEach((arg, index) => {
    if (arg === "--ro-bind" || arg === "--ro-bind-try")
      binds.push([args[index + 1] ?? "", args[index + 2] ?? ""]);
  });
  return binds;
}

/** The arguments minus read-only binds, symlinks and PATH: what must not depend on where /usr comes from. */
function withoutRootBinds(args: readonly string[]): string[] {
  const kept: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? "";
    if (["--ro-bind", "--ro-bind-try", "--symlink"].includes(arg)) index += 2;
    else if (arg === "--setenv" && args[index + 1] === "PATH") index += 2;
    else kept.push(arg);
  }
  return kept;
}

describe("bubblewrap arguments with a prepared root filesystem", () => {
  it("describes the image's /bin, /lib… rather than the host's", () => {
    expect(describeHostRoot(`${rootfsDir}/`)).toEqual([
      { name: "bin", kind: "symlink", target: "usr/bin" },
      { name: "lib", kind: "symlink", target: "usr/lib" },
      { name: "lib64", kind: "directory" },
    ]);
  });

  it("binds /usr, real top-level directories and the loader cache from the image, TLS roots from the host", () => {
    const layout: SandboxLayout = { ...baseLayout, rootfsDir, hostRoot: describeHostRoot(`${rootfsDir}/`) };
    const args = buildBubblewrapArguments(layout, 4);
    const binds = readOnlyBinds(args);
    expect(binds).toContainEqual([`${rootfsDir}/usr`, "/usr"]);
    expect(binds).toContainEqual([`${rootfsDir}/lib64`, "/lib64"]);
    expect(binds).toContainEqual([`${rootfsDir}/etc/ld.so.cache`, "/etc/ld.so.cache"]);
    expect(binds).toContainEqual([`${rootfsDir}/etc/alternatives`, "/etc/alternatives"]);
    expect(binds).toContainEqual(["/etc/ssl/certs", "/etc/ssl/certs"]);
    // Nothing else from the host's system directories.
    for (const [source] of binds)
      expect(source).not.toMatch(/^\/(usr|lib|lib64|bin|sbin)(\/|$)|^\/etc\/(ld\.so\.cache|alternatives)$/);
    const symlinkAt = args.indexOf("/bin") - 2;
    expect(args.slice(symlinkAt, symlinkAt + 3)).toEqual(["--symlink", "usr/bin", "/bin"]);
    // The rest of the isolation is unchanged: namespaces, writable mounts, data files, root read-only.
    expect(withoutRootBinds(args)).toEqual(withoutRootBinds(buildBubblewrapArguments(baseLayout, 4)));
  });

  it("puts the bound node on PATH only on an image (the host's /usr already has one)", () => {
    expect(sandboxEnvironment({ ...baseLayout, rootfsDir }).PATH).toBe(`${SANDBOX_PATH}:/opt/outrig/bin`);
    expect(sandboxEnvironment(baseLayout).PATH).toBe(SANDBOX_PATH);
  });

  it("binds the host's /usr without an image", () => {
    const binds = readOnlyBinds(buildBubblewrapArguments(baseLayout, 4));
    expect(binds).toContainEqual(["/usr", "/usr"]);
    expect(binds).toContainEqual(["/lib64", "/lib64"]);
    expect(binds).toContainEqual(["/etc/ld.so.cache", "/etc/ld.so.cache"]);
  });
});

describe("bubblewrap arguments for extra mounts", () => {
  it("binds writable mounts read-write after the read-only ones, before / is remounted read-only", () => {
    const args = buildBubblewrapArguments(
      {
        ...baseLayout,
        readOnlyMounts: [{ hostPath: "/host/copies/rules", sandboxPath: "/mnt/memory/rules" }],
        writableMounts: [{ hostPath: "/host/copies/notes", sandboxPath: "/mnt/memory/notes" }],
      },
      3,
    );
    const readOnly = args.indexOf("/host/copies/rules");
    const writable = args.indexOf("/host/copies/notes");
    expect(args.slice(readOnly - 1, readOnly + 2)).toEqual([
      "--ro-bind",
      "/host/copies/rules",
      "/mnt/memory/rules",
    ]);
    expect(args.slice(writable - 1, writable + 2)).toEqual([
      "--bind",
      "/host/copies/notes",
      "/mnt/memory/notes",
    ]);
    expect(writable).toBeGreaterThan(readOnly);
    expect(args.indexOf("--remount-ro")).toBeGreaterThan(writable);
  });
});
