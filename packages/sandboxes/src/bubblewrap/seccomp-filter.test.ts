import { describe, expect, it } from "vitest";
import { buildBubblewrapArguments, describeHostRoot, type SandboxLayout } from "./bubblewrap-arguments.js";
import { buildSeccompFilter, SECCOMP_DENIED_SYSCALLS } from "./seccomp-filter.js";

/** Decodes `struct sock_filter[]` (code u16, jt u8, jf u8, k u32; little-endian). */
function decode(bytes: Buffer) {
  return Array.from({ length: bytes.length / 8 }, (_, index) => ({
    code: bytes.readUInt16LE(index * 8),
    jt: bytes.readUInt8(index * 8 + 2),
    jf: bytes.readUInt8(index * 8 + 3),
    k: bytes.readUInt32LE(index * 8 + 4),
  }));
}

describe("the seccomp filter", () => {
  it("checks the x86_64 ABI, refuses x32 and each denied call with EPERM, and allows the rest", () => {
    const program = decode(buildSeccompFilter("x64") as Buffer);
    const deny = program.length - 1;
    expect(program[0]).toEqual({ code: 0x20, jt: 0, jf: 0, k: 4 });
    expect(program[1]).toMatchObject({ code: 0x15, k: 0xc000003e });
    expect(1 + 1 + (program[1]?.jf ?? 0)).toBe(deny);
    expect(program[3]).toMatchObject({ code: 0x35, k: 0x40000000 });
    const denied = program.filter((instruction) => instruction.code === 0x15).slice(1);
    expect(denied.map((instruction) => instruction.k).sort((a, b) => a - b)).toEqual(
      [101, 248, 249, 250, 298, 310, 311, 321, 323, 425, 426, 427, 438, 440].sort((a, b) => a - b),
    );
    expect(denied).toHaveLength(SECCOMP_DENIED_SYSCALLS.length);
    // Every jump to "deny" lands on the last instruction.
    program.forEach((instruction, index) => {
      if (instruction.code === 0x15 && index > 1) expect(index + 1 + instruction.jt).toBe(deny);
    });
    expect(program.at(-2)).toEqual({ code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 });
    expect(program.at(-1)).toEqual({ code: 0x06, jt: 0, jf: 0, k: 0x00050001 });
  });

  it("has an arm64 table and no filter for an architecture without one", () => {
    expect(decode(buildSeccompFilter("arm64") as Buffer)[1]).toMatchObject({ k: 0xc00000b7 });
    expect(buildSeccompFilter("ia32")).toBeUndefined();
  });

  it("is passed on the descriptor after the data files, with /proc/sys read-only", () => {
    const layout: SandboxLayout = {
      uid: 1000,
      gid: 1000,
      userName: "sandbox",
      hostname: "sandbox",
      nodePath: "/usr/bin/node",
      agentPath: "/agent.mjs",
      workspaceDir: "/tmp/ws",
      nodeFlags: [],
      hostRoot: describeHostRoot(),
      seccompFilter: buildSeccompFilter("x64") as Buffer,
    };
    const args = buildBubblewrapArguments(layout, 10).join(" ");
    expect(args).toContain("--seccomp 15");
    expect(args).toContain("--proc /proc --ro-bind /proc/sys /proc/sys");
    expect(buildBubblewrapArguments({ ...layout, seccompFilter: undefined }, 10)).not.toContain("--seccomp");
  });
});
