/**
 * Commands run by the in-sandbox agent must not reach the agent's channel to the host, on either
 * provider: a real command tries pidfd_getfd and /proc/<pid>/fd on every process of its sandbox, to
 * forge replies or to flood the channel with a 640 MiB line. The call must get the command's real
 * output, the provider must survive and the other sandbox keep working.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecResult, SandboxHandle, SandboxProvider } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkRuncHibernate,
  createBubblewrapSandboxProvider,
  createRuncSandboxProvider,
} from "../src/index.js";

/**
 * Perl (in the sandbox through the host's /usr): for every process outside the command's own session
 * and its descriptors 0-31, pidfd_getfd (x86_64 and arm64 numbers) and an open of /proc/<pid>/fd/<n>
 * for writing; every pipe or socket it gets receives forged replies for request ids 1-500, or a
 * 640 MiB line.
 */
const HIJACK_SCRIPT = String.raw`
use strict; use warnings; use POSIX ();
$SIG{PIPE} = "IGNORE";
my $mode = shift // "forge";
sub session { my ($pid) = @_; open(my $s, "<", "/proc/$pid/stat") or return -1; my $l = <$s>; $l =~ s/^.*\) //s; return (split / /, $l)[3]; }
my $mine = session($$);
my $forged = join "", map { qq({"id":$_,"ok":true,"result":{"exitCode":0,"signal":null,"stdout":"FORGED","stderr":"","isTimedOut":false,"isCancelled":false,"isTruncated":false,"durationMs":1,"isReplayed":false}}\n) } 1 .. 500;
my ($grabbed, $flooded) = (0, 0);
sub attack {
  my ($fh, $fd) = @_;
  return unless -p $fh || -S $fh; # the channel is a pipe (bubblewrap) or a unix socket (runc)
  return if $mode eq "flood" && -p $fh && $fd != 1;
  $grabbed++;
  if ($mode eq "flood") {
    return if $flooded++;
    # the stdout pipe (bubblewrap) or the socket (runc): writing /proc/<pid>/fd/0 would fill stdin
    my $chunk = "x" x (1 << 20);
    for (1 .. 640) { print $fh $chunk or last }
  } else { print $fh $forged }
  close $fh;
}
opendir(my $dir, "/proc") or die "no /proc";
my @pids = grep { /^\d+$/ } readdir $dir;
for my $pid (@pids) {
  next if session($pid) == $mine;
  my $pidfd = syscall(434, $pid + 0, 0);
  for my $fd (0 .. 31) {
    if ($pidfd >= 0) {
      my $got = syscall(438, $pidfd, $fd, 0);
      if ($got >= 0 && open(my $fh, ">&=", $got)) { attack($fh, $fd) }
    }
    if (open(my $fh, ">", "/proc/$pid/fd/$fd")) { attack($fh, $fd) }
  }
  POSIX::close($pidfd) if $pidfd >= 0;
}
print "processes=" . scalar(@pids) . " grabbed=$grabbed\n";
`;

const hijack = (mode: "forge" | "flood") =>
  `cat > /tmp/hijack.pl <<'PERL'\n${HIJACK_SCRIPT}\nPERL\nperl /tmp/hijack.pl ${mode} 2>&1; echo REAL-OUTPUT-${mode}`;

const run = (handle: SandboxHandle, command: string): Promise<ExecResult> =>
  handle.sandbox.exec({ command, timeoutMs: 60_000 }, new AbortController().signal);

const runc = await checkRuncHibernate();

describe.each([
  { name: "bubblewrap", isSupported: true },
  { name: "runc", isSupported: runc.isSupported },
])("the $name agent cannot be hijacked by its commands", ({ name, isSupported }) => {
  let root: string;
  let provider: SandboxProvider & { close(): Promise<void> };
  let attacked: SandboxHandle;
  let bystander: SandboxHandle;

  beforeAll(async () => {
    if (!isSupported) return;
    root = await mkdtemp(join(tmpdir(), "outrig-hijack-"));
    provider =
      name === "runc"
        ? createRuncSandboxProvider({ stateDir: join(root, "state") })
        : createBubblewrapSandboxProvider();
    attacked = await provider.create({ sessionId: "a", orgId: "o", workspaceDir: join(root, "a") });
    bystander = await provider.create({ sessionId: "b", orgId: "o", workspaceDir: join(root, "b") });
  }, 60_000);

  afterAll(async () => {
    await provider?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it.skipIf(!isSupported)(
    "a forged reply is never taken for the command's result",
    async () => {
      const result = await run(attacked, hijack("forge"));
      expect(result.stdout).not.toContain("FORGED");
      expect(result.stdout).toContain("REAL-OUTPUT-forge");
      expect(result.stdout).toMatch(/processes=\d+ grabbed=0\n/);
      expect(result.exitCode).toBe(0);
    },
    120_000,
  );

  it.skipIf(!isSupported)(
    "a 640 MiB line aimed at the channel ends nothing but its own call",
    async () => {
      const result = await run(attacked, hijack("flood"));
      expect(result.stdout).toContain("REAL-OUTPUT-flood");
      expect(result.stdout).toMatch(/processes=\d+ grabbed=0\n/);
      expect((await run(bystander, "echo still-here")).stdout).toBe("still-here\n");
      expect((await run(attacked, "echo attacked-still-here")).stdout).toBe("attacked-still-here\n");
    },
    120_000,
  );

  it.skipIf(!isSupported)(
    "refuses pidfd_getfd and io_uring_setup to commands",
    async () => {
      // Unfiltered, these answer EBADF (no such pidfd) and EFAULT (no params); the filter says EPERM.
      const result = await run(
        attacked,
        `perl -e 'for my $call ([438, -1, 0, 0], [425, 1, 0]) { my ($number, @rest) = @$call; my $r = syscall($number, @rest); print "$call->[0]: rc=$r errno=", $! + 0, "\\n" }'`,
      );
      expect(result.stdout).toBe("438: rc=-1 errno=1\n425: rc=-1 errno=1\n");
    },
    60_000,
  );

  it.skipIf(!isSupported || name !== "runc")(
    "a command that connects to the agent's socket cannot take the host's place",
    async () => {
      // The socket's directory is writable inside; without the channel key the agent ignores it.
      const intruder = await run(
        attacked,
        `perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => "/run/outrig/agent/agent.sock") or die "connect: $!\\n"; print $s qq({"id":1,"op":"exec","command":"echo FORGED"}\\n); my $line = <$s>; print "answer: ", $line // "none\\n"' 2>&1`,
      );
      expect(intruder.stdout).toMatch(/^answer: none$/m);
      expect((await run(attacked, "echo host-still-connected")).stdout).toBe("host-still-connected\n");
    },
    60_000,
  );
});
