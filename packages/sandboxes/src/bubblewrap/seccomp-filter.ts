/**
 * A classic-BPF seccomp filter handed to bwrap (`--seccomp FD`): it refuses, with EPERM, the system
 * calls that reach kernel state shared with the host and other sandboxes (the kernel keyrings: keyctl,
 * add_key, request_key), that inspect or alter other processes (ptrace, process_vm_readv/writev,
 * process_madvise, pidfd_getfd: the agent's descriptors are also out of reach because it is
 * non-dumpable, see execute-only-node.ts), and large kernel attack surfaces a shell tool never needs
 * (bpf, perf_event_open, userfaultfd, io_uring, whose operations no seccomp filter sees; libuv falls
 * back to its thread pool when io_uring_setup fails). Calls made
 * under another ABI than the native one (i386 or x32 on x86_64) are refused too, so the list cannot be
 * bypassed by a 32-bit binary. Everything else is allowed: the namespaces, the dropped capabilities and
 * the read-only mounts do the rest. See docs/decisions/2026-12-04-sandbox-hardening-defaults.md.
 */

/** System calls refused inside a sandbox, by name. */
export const SECCOMP_DENIED_SYSCALLS = [
  "keyctl",
  "add_key",
  "request_key",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "process_madvise",
  "pidfd_getfd",
  "bpf",
  "perf_event_open",
  "userfaultfd",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
] as const;

type DeniedSyscall = (typeof SECCOMP_DENIED_SYSCALLS)[number];

interface ArchTable {
  readonly auditArch: number;
  /** Syscall numbers at or above this belong to another ABI (x32 on x86_64). */
  readonly foreignAbiFloor?: number;
  readonly numbers: Readonly<Record<DeniedSyscall, number>>;
}

const ARCHES: Readonly<Record<string, ArchTable>> = {
  x64: {
    auditArch: 0xc000003e,
    foreignAbiFloor: 0x40000000,
    numbers: {
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      ptrace: 101,
      process_vm_readv: 310,
      process_vm_writev: 311,
      process_madvise: 440,
      pidfd_getfd: 438,
      bpf: 321,
      perf_event_open: 298,
      userfaultfd: 323,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
  },
  arm64: {
    auditArch: 0xc00000b7,
    numbers: {
      keyctl: 219,
      add_key: 217,
      request_key: 218,
      ptrace: 117,
      process_vm_readv: 270,
      process_vm_writev: 271,
      process_madvise: 440,
      pidfd_getfd: 438,
      bpf: 280,
      perf_event_open: 241,
      userfaultfd: 282,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
  },
};

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO = 0x00050000;
const EPERM = 1;
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;

interface Instruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/**
 * The filter for `arch` (a `process.arch` value) as the bytes of a `struct sock_filter[]`, or
 * undefined for an architecture without a table (the sandbox then runs without a filter).
 */
export function buildSeccompFilter(arch: string = process.arch): Buffer | undefined {
  const table = ARCHES[arch];
  if (!table) return undefined;
  const denied = SECCOMP_DENIED_SYSCALLS.map((name) => table.numbers[name]);
  // Layout: load arch, check it, load nr, [foreign ABI check], one JEQ per denied call, ALLOW, DENY.
  const checks = denied.length + (table.foreignAbiFloor === undefined ? 0 : 1);
  const program: Instruction[] = [];
  const denyIndex = 3 + checks + 1;
  const jumpTo = (target: number) => target - (program.length + 1);
  program.push({ code: LD_W_ABS, jt: 0, jf: 0, k: OFFSET_ARCH });
  program.push({ code: JEQ_K, jt: 0, jf: jumpTo(denyIndex), k: table.auditArch });
  program.push({ code: LD_W_ABS, jt: 0, jf: 0, k: OFFSET_NR });
  if (table.foreignAbiFloor !== undefined)
    program.push({ code: JGE_K, jt: jumpTo(denyIndex), jf: 0, k: table.foreignAbiFloor });
  for (const number of denied) program.push({ code: JEQ_K, jt: jumpTo(denyIndex), jf: 0, k: number });
  program.push({ code: RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW });
  program.push({ code: RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ERRNO | EPERM });
  if (program.length !== denyIndex + 1) throw new Error("seccomp filter layout is inconsistent");
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((instruction, index) => {
    bytes.writeUInt16LE(instruction.code, index * 8);
    bytes.writeUInt8(instruction.jt, index * 8 + 2);
    bytes.writeUInt8(instruction.jf, index * 8 + 3);
    bytes.writeUInt32LE(instruction.k >>> 0, index * 8 + 4);
  });
  return bytes;
}
