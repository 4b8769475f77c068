/**
 * Adversarial probes from inside a real bubblewrap sandbox, driven through a real `outrig serve`
 * process by a scripted model: each probe is one tool call (Bash, Read, Write or Edit) with a concrete
 * expected outcome (refused, not found or contained). A secret marker is planted in the server's
 * environment, its home directory and its database; no tool result, event or file the sandbox can see
 * may contain it. See docs/security.md for the threat model.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  bash,
  expectFetchFailed,
  fetchProbe,
  isX64,
  node,
  notFound,
  OTHER_SECRET,
  type Probe,
  refusedSyscall,
  syscall,
  useProbeSuite,
} from "./probe-kit.js";

const isolationProbes: Probe[] = [
  {
    name: "/proc/*/environ holds no server variable",
    call: () => bash("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done | sort -u"),
    check: (result) => {
      expect(result.output).toMatch(/^PATH=/m);
      expect(result.output).not.toMatch(/OUTRIG_|ANTHROPIC|DATABASE_URL|OPENAI/);
    },
  },
  {
    name: "the server process is not visible in /proc",
    call: (context) => bash(`ls -d /proc/${context.serverPid} 2>&1; ls /proc | grep -c '^[0-9]'`),
    check: (result, context) => {
      expect(result.output).toContain(`/proc/${context.serverPid}': No such file or directory`);
      const count = Number(result.output.trim().split("\n").at(-1));
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(20);
    },
  },
  {
    name: "/proc/1/root is the sandbox's own root",
    call: (context) => bash(`ls /proc/1/root/ 2>&1; ls /proc/1/root${context.home} 2>&1`),
    check: (result) => {
      expect(result.output).toMatch(/Permission denied|No such file or directory/);
      expect(result.output).not.toContain("planted-secret.txt");
      expect(result.output).not.toContain("master.key");
    },
  },
  {
    name: "the agent's descriptors, memory and environment are out of a command's reach",
    // The agent (this command's parent) is non-dumpable: /proc/<agent>/fd, mem and environ refuse.
    call: () =>
      bash(
        'echo forged > /proc/$PPID/fd/1; head -c1 /proc/$PPID/mem 2>&1; tr "\\0" "\\n" < /proc/$PPID/environ 2>&1; echo end',
      ),
    check: (result) => {
      expect(result.output.match(/Permission denied/g)?.length).toBe(3);
      expect(result.output).not.toMatch(/^PATH=/m);
      expect(result.output).toContain("end");
    },
  },
  {
    name: "/proc/1/environ and cmdline of the sandbox's init hold nothing of the server",
    call: () => bash("tr '\\0' '\\n' < /proc/1/environ 2>&1; tr '\\0' ' ' < /proc/1/cmdline 2>&1"),
    check: (result) => expect(result.output).not.toMatch(/OUTRIG_HOME|ANTHROPIC|sk-ant-/),
  },
  {
    name: "OUTRIG_HOME does not exist in the sandbox",
    call: (context) => bash(`ls -la ${context.home} 2>&1`),
    check: notFound,
  },
  {
    name: "master.key is not reachable",
    call: (context) => bash(`cat ${context.home}/master.key 2>&1`),
    check: notFound,
  },
  {
    name: "credentials.json is not reachable",
    call: (context) => bash(`cat ${context.home}/credentials.json 2>&1`),
    check: notFound,
  },
  {
    name: "the planted secret file in the home is not reachable (Read tool)",
    call: (context) => ({ name: "read", input: { file_path: `${context.home}/planted-secret.txt` } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      notFound(result);
    },
  },
  {
    name: "the Postgres data directory is not reachable",
    call: (context) =>
      bash(
        `ls ${context.home}/postgres.json ${context.postgresDir} 2>&1; cat ${context.postgresDir}/postmaster.pid 2>&1`,
      ),
    check: (result) => expect(result.output.match(/No such file or directory/g)).toHaveLength(3),
  },
  {
    name: "no Postgres unix socket anywhere in the sandbox",
    call: () => bash("find / -xdev -name '.s.PGSQL*' 2>/dev/null | head; ls -a /tmp /run 2>&1; echo end"),
    check: (result) => {
      expect(result.output).not.toContain(".s.PGSQL");
      expect(result.output).toContain("end");
    },
  },
  {
    name: "Postgres over TCP on the host loopback is unreachable",
    call: (context) =>
      node(
        `const s = require("net").connect(${context.postgresPort}, "127.0.0.1"); s.on("connect", () => { console.log("CONNECTED"); s.destroy(); }); s.on("error", (e) => console.log("FAILED", e.code));`,
      ),
    check: (result) => expect(result.output).toMatch(/FAILED ECONNREFUSED/),
  },
  {
    name: "the host's loopback HTTP service is unreachable",
    call: (context) => fetchProbe(context.harness.loopbackUrl),
    check: expectFetchFailed,
  },
  {
    name: "the outrig server's own port is unreachable",
    call: (context) => fetchProbe(`${context.harness.server.url}/healthz`),
    check: expectFetchFailed,
  },
  {
    name: "the host's external address is unreachable",
    call: (context) =>
      fetchProbe(
        `http://${context.hostAddress ?? "10.0.0.1"}:${new URL(context.harness.server.url).port}/healthz`,
      ),
    check: expectFetchFailed,
  },
  {
    name: "the cloud metadata address 169.254.169.254 is unreachable",
    call: () => fetchProbe("http://169.254.169.254/latest/meta-data/"),
    check: expectFetchFailed,
  },
  {
    name: "no DNS resolution",
    call: () =>
      node(
        `require("dns").lookup("example.com", (e, a) => console.log(e ? "FAILED " + e.code : "RESOLVED " + a))`,
      ),
    check: (result) => expect(result.output).toMatch(/FAILED (ENOTFOUND|EAI_AGAIN)/),
  },
  {
    name: "only the loopback interface exists",
    call: () => bash("cat /proc/net/dev"),
    check: (result) => {
      const interfaces = [...result.output.matchAll(/^\s*([\w.-]+):/gm)].map((match) => match[1]);
      expect(interfaces).toEqual(["lo"]);
    },
  },
  {
    name: "/etc/shadow does not exist",
    call: () => bash("cat /etc/shadow 2>&1; ls /etc"),
    check: (result) => {
      notFound(result);
      expect(result.output).not.toMatch(/^shadow$/m);
    },
  },
  {
    name: "/etc/passwd is synthetic (no host accounts)",
    call: () => bash("cat /etc/passwd"),
    check: (result) => {
      expect(result.output).toContain("sandbox:x:");
      expect(result.output.trim().split("\n")).toHaveLength(3);
    },
  },
  {
    name: "/root is absent",
    call: () => bash("ls -la /root 2>&1"),
    check: notFound,
  },
  {
    name: "host /home is absent",
    call: () => bash("ls -la /home 2>&1"),
    check: notFound,
  },
  {
    name: "host /var and /srv are absent; /mnt holds only the session's own mounts",
    call: () => bash("ls /var /srv /work 2>&1; echo ---; ls -A /mnt /mnt/session"),
    check: (result) => {
      expect(result.output.match(/No such file or directory/g)).toHaveLength(3);
      // The API's /mnt/session/{uploads,outputs}: this session's files, nothing of the host's /mnt.
      expect(result.output.split("---\n")[1]?.trim()).toBe(
        "/mnt:\nsession\n\n/mnt/session:\noutputs\nuploads",
      );
    },
  },
  {
    name: "the host temp directory holding OUTRIG_HOME is not visible through /tmp",
    call: (context) => bash(`ls /tmp; ls /tmp/${path.basename(context.home)} 2>&1`),
    check: notFound,
  },
  {
    name: "another session's workspace is not reachable by its host path",
    call: (context) => bash(`ls ${context.home}/workspaces 2>&1; ls /workspace/.. 2>&1`),
    check: (result) => {
      notFound(result);
      expect(result.output).not.toMatch(/other-session-secret/);
    },
  },
  {
    name: "raw IP sockets are refused",
    call: () =>
      bash(
        `perl -e 'use Socket; socket(my $s, PF_INET, SOCK_RAW, 1) or print "refused: $!\\n"; print "done\\n"'`,
      ),
    check: (result) => expect(result.output).toMatch(/refused: (Operation not permitted|Permission denied)/),
  },
  {
    name: "packet sockets are refused",
    call: () => bash(`perl -e 'socket(my $s, 17, 3, 0) or print "refused: $!\\n"; print "done\\n"'`),
    check: (result) =>
      expect(result.output).toMatch(
        /refused: (Operation not permitted|Permission denied|Address family not supported)/,
      ),
  },
  {
    name: "mount(2) is refused",
    call: () =>
      bash(
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m 2>&1; echo rc=$?; grep -c ' /tmp/m ' /proc/self/mountinfo",
      ),
    check: (result) => {
      expect(result.output).toMatch(/rc=[1-9]/);
      expect(result.output.trim().split("\n").at(-1)).toBe("0");
    },
  },
  {
    name: "unshare of a new user namespace is refused",
    call: () => bash("unshare -U -r id 2>&1; echo rc=$?"),
    check: (result) => {
      expect(result.output).toMatch(/rc=[1-9]/);
      expect(result.output).not.toMatch(/uid=0/);
    },
  },
  {
    name: "unshare of a mount namespace is refused",
    call: () => bash("unshare -m true 2>&1; echo rc=$?"),
    check: (result) => expect(result.output).toMatch(/Operation not permitted[\s\S]*rc=[1-9]/),
  },
  {
    name: "capabilities are all dropped and no_new_privs is set",
    call: () => bash("grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"),
    check: (result) => {
      expect(result.output).toMatch(/CapEff:\s+0{16}/);
      expect(result.output).toMatch(/CapPrm:\s+0{16}/);
      expect(result.output).toMatch(/CapBnd:\s+0{16}/);
    },
  },
  {
    name: "setuid binaries give no privilege (nosuid mounts)",
    call: () =>
      bash(
        "find /usr -perm -4000 -type f 2>/dev/null | head -3; grep -E ' /usr ' /proc/self/mountinfo; su -c id root </dev/null 2>&1; echo rc=$?; id -u",
      ),
    check: (result) => {
      expect(result.output).toMatch(/ \/usr [^\n]*nosuid/);
      expect(result.output).toMatch(/rc=[1-9]/);
      expect(result.output.trim().split("\n").at(-1)).toBe("1000");
    },
  },
  {
    name: "setuid(0) is refused",
    call: () => bash(`perl -e '$< = 0; $> = 0; print "uid=$< euid=$>\\n"'`),
    check: (result) => expect(result.output).toContain("uid=1000 euid=1000"),
  },
  {
    name: "host sysctls cannot be written through /proc/sys",
    call: () =>
      bash(
        "v=$(cat /proc/sys/kernel/printk_ratelimit); echo $v > /proc/sys/kernel/printk_ratelimit 2>&1; echo rc=$?",
      ),
    check: (result) => {
      expect(result.output).toMatch(/Read-only file system|Permission denied/);
      expect(result.output).toMatch(/rc=[1-9]/);
    },
  },
  {
    name: "/proc/sysrq-trigger cannot be written",
    call: () => bash("echo h > /proc/sysrq-trigger 2>&1; echo rc=$?"),
    check: (result) => expect(result.output).toMatch(/rc=[1-9]/),
  },
  {
    name: "no kernel log and no host devices",
    call: () => bash("cat /dev/kmsg 2>&1 | head -1; ls /dev; ls /sys 2>&1 | head -3"),
    check: (result) => {
      expect(result.output).toMatch(/No such file or directory|Permission denied|Operation not permitted/);
      expect(result.output).not.toMatch(/^(sda|vda|nvme0|kvm|mem|kmsg)$/m);
    },
  },
  {
    name: "the kernel keyrings are not listed in /proc/keys or /proc/key-users",
    call: () => bash("cat /proc/keys /proc/key-users 2>&1; echo end"),
    // Masked: /dev/null is bound over them (unreadable on the nodev /proc, or empty).
    check: (result) => {
      expect(result.output).toContain("end");
      expect(result.output).not.toMatch(/keyring|\.builtin|_uid|\d+:\s+\d+ \d+\/\d+/);
    },
  },
  {
    name: "the read-only system directories refuse writes",
    call: () => bash("touch /usr/pwned /etc/pwned /opt/pwned 2>&1; echo rc=$?"),
    check: (result) => {
      expect(result.output.match(/Read-only file system/g)?.length).toBe(3);
    },
  },
  {
    name: "the Write tool cannot create a file in a system directory",
    call: () => ({ name: "write", input: { file_path: "/usr/bin/pwned", content: "#!/bin/sh\n" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).toMatch(/read-only|permission|denied/i);
    },
  },
  {
    name: "the Write tool cannot write /proc/sys",
    call: () => ({
      name: "write",
      input: { file_path: "/proc/sys/kernel/printk_ratelimit", content: "5\n" },
    }),
    check: (result) => expect(result.isError).toBe(true),
  },
  {
    name: "the Read tool on /proc/self/environ shows only the sandbox environment",
    call: () => ({ name: "read", input: { file_path: "/proc/self/environ" } }),
    check: (result) => expect(result.output).not.toMatch(/OUTRIG_HOME|ANTHROPIC|sk-ant-/),
  },
  {
    name: "the marker is in no file the sandbox can read",
    call: (context) =>
      bash(
        `a=${context.harness.markerHalves[0]}; b=${context.harness.markerHalves[1]}; grep -rlsI --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr -e "$a$b" / 2>/dev/null | wc -l; ls /etc /opt /run /workspace | wc -l`,
        300_000,
      ),
    check: (result) => {
      const [matches, entries] = result.output.trim().split("\n").map(Number);
      expect(matches).toBe(0);
      expect(entries).toBeGreaterThan(5);
    },
  },
];

const syscallProbes: Probe[] = isX64
  ? [
      {
        name: "keyctl(KEYCTL_READ) of the session keyring is refused",
        call: () => syscall("250, 11, -3, 0, 0"),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "keyctl(2) is refused",
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)
        call: () => syscall("250, 0, -4, 0"),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "add_key(2) is refused",
        call: () => syscall(`248, "user", "probe", "x", 1, -3`),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "request_key(2) is refused",
        call: () => syscall(`249, "user", "probe", 0, 0`),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "bpf(2) is refused",
        call: () => syscall("321, 0, 0, 0"),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "perf_event_open(2) is refused",
        // A 128-byte perf_event_attr: software CPU clock, user space only, for this process.
        call: () => syscall(`298, pack("LLQQQQQx80", 1, 128, 0, 0, 0, 0, 97), 0, -1, -1, 0`),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "ptrace(2) of the sandbox's init is refused",
        // ptrace(PTRACE_ATTACH, 1)
        call: () => syscall("101, 16, 1, 0, 0"),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "pidfd_getfd of the agent's stdout is refused",
        // The agent is this command's parent: pidfd_open(agent) works, pidfd_getfd(pidfd, 1) must not.
        call: () =>
          bash(
            `perl -e 'my $p = syscall(434, $ARGV[0] + 0, 0); my $r = syscall(438, $p, 1, 0); my $e = $! + 0; print "pidfd=$p rc=$r errno=$e ($!)\\n"' $PPID`,
          ),
        check: (result) => {
          expect(result.output).toMatch(/pidfd=\d+ /);
          refusedSyscall(result.output);
        },
      },
      {
        name: "unshare(CLONE_NEWUSER) is refused",
        call: () => syscall("272, 0x10000000"),
        // --disable-userns sets the namespace limit to 0: ENOSPC, or EPERM without privileges.
        check: (result) =>
          expect(result.output).toMatch(
            /rc=-1 errno=(1 \(Operation not permitted|28 \(No space left on device)\)/,
          ),
      },
      {
        name: "mount(2) by raw syscall is refused",
        call: () => syscall(`165, "none", "/tmp", "tmpfs", 0, 0`),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "chroot(2) is refused",
        call: () => syscall(`161, "/tmp"`),
        check: (result) => refusedSyscall(result.output),
      },
      {
        name: "setns(2) into init's namespaces is refused",
        call: () =>
          bash(
            `perl -e 'open(my $f, "<", "/proc/1/ns/mnt") or die "open: $!\\n"; my $r = syscall(308, fileno($f), 0); print "rc=$r err=$!\\n"' 2>&1`,
          ),
        check: (result) => expect(result.output).toMatch(/rc=-1|open: Permission denied/),
      },
    ]
  : [];

const linkProbes: Probe[] = [
  {
    name: "symlinks to host paths can be created but point into the sandbox's own tree",
    call: (context) =>
      bash(
        [
          "cd /workspace",
          "ln -s /etc/shadow l-shadow",
          `ln -s ${context.home}/master.key l-master`,
          `ln -s ${context.home} l-home`,
          "ln -s / l-root",
          `ln -s ${context.otherWorkspace}/secret.txt l-other`,
          "ls -l | grep -c ' -> '",
        ].join(" && "),
      ),
    check: (result) => expect(result.output.trim()).toBe("5"),
  },
  {
    name: "Read through a symlink to /etc/shadow finds nothing",
    call: () => ({ name: "read", input: { file_path: "/workspace/l-shadow" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      notFound(result);
    },
  },
  {
    name: "Read through a symlink to the server's master.key finds nothing",
    call: () => ({ name: "read", input: { file_path: "/workspace/l-master" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      notFound(result);
    },
  },
  {
    name: "Read through a symlink to the data dir finds nothing",
    call: () => ({ name: "read", input: { file_path: "/workspace/l-home/credentials.json" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      notFound(result);
    },
  },
  {
    name: "Read through a symlink to another session's workspace finds nothing",
    call: () => ({ name: "read", input: { file_path: "/workspace/l-other" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).not.toContain(OTHER_SECRET);
    },
  },
  {
    name: "Read of another session's workspace by its host path finds nothing",
    call: (context) => ({ name: "read", input: { file_path: `${context.otherWorkspace}/secret.txt` } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).not.toContain(OTHER_SECRET);
    },
  },
  {
    name: "Write through a symlink to master.key does not reach the host file",
    call: () => ({ name: "write", input: { file_path: "/workspace/l-master", content: "pwned-master\n" } }),
    // Either refused or written inside the sandbox's own /tmp; the host side is checked after the session.
    check: () => undefined,
  },
  {
    name: "Write through a symlinked data dir does not create a host file",
    call: () => ({ name: "write", input: { file_path: "/workspace/l-home/pwned.txt", content: "pwned\n" } }),
    check: () => undefined,
  },
  {
    name: "Write through a symlink to / cannot write system files",
    call: () => ({ name: "write", input: { file_path: "/workspace/l-root/usr/pwned", content: "pwned\n" } }),
    check: (result) => {
      expect(result.isError).toBe(true);
      expect(result.output).toMatch(/read-only|permission|denied/i);
    },
  },
  {
    name: "Edit through a symlink to /etc/shadow finds nothing",
    call: () => ({
      name: "edit",
      input: { file_path: "/workspace/l-shadow", old_string: "root", new_string: "x" },
    }),
    check: (result) => expect(result.isError).toBe(true),
  },
  {
    name: "Bash through a symlink to / still sees the sandbox root",
    call: () => bash("cat /workspace/l-root/etc/shadow 2>&1; ls /workspace/l-root/root 2>&1"),
    check: (result) => expect(result.output.match(/No such file or directory/g)).toHaveLength(2),
  },
  {
    name: "hardlinks to files outside the workspace are refused",
    call: () =>
      bash(
        "ln /etc/passwd /workspace/h-passwd 2>&1; ln /opt/outrig/bin/node /workspace/h-node 2>&1; ln /usr/bin/env /workspace/h-env 2>&1; ls /workspace | grep -c '^h-'",
      ),
    check: (result) => {
      expect(result.output.match(/Invalid cross-device link|Operation not permitted/g)).toHaveLength(3);
      expect(result.output.trim().split("\n").at(-1)).toBe("0");
    },
  },
  {
    name: "Write through a hardlink within the workspace stays in the workspace",
    call: () =>
      bash(
        "echo original > /workspace/a.txt && ln /workspace/a.txt /workspace/b.txt && stat -c %h /workspace/a.txt",
      ),
    check: (result) => expect(result.output.trim()).toBe("2"),
  },
];

const suite = useProbeSuite("sandbox probes");

describe("probes from inside the sandbox", () => {
  it("finds nothing of the host, the server or its data", async () => {
    await suite.runProbes(isolationProbes);
  }, 300_000);

  it.runIf(isX64)(
    "is refused dangerous system calls",
    async () => {
      await suite.runProbes(syscallProbes);
    },
    180_000,
  );
});

describe("link tricks through the Read, Write and Edit tools", () => {
  it("never reach host files, the data dir or another session", async () => {
    const masterKey = await fs.readFile(path.join(suite.context().home, "master.key"));
    const credentials = await fs.readFile(path.join(suite.context().home, "credentials.json"), "utf8");
    const run = await suite.runProbes(linkProbes);

    // Host side: nothing written through the links.
    const hostChecks: [string, () => Promise<void>][] = [
      [
        "master.key is unchanged",
        async () =>
          expect(await fs.readFile(path.join(suite.context().home, "master.key"))).toEqual(masterKey),
      ],
      [
        "no file was created in the data dir",
        async () => expect(await fs.readdir(suite.context().home)).not.toContain("pwned.txt"),
      ],
      [
        "the other session's file is unchanged",
        async () =>
          expect(await fs.readFile(path.join(suite.context().otherWorkspace, "secret.txt"), "utf8")).toBe(
            `${OTHER_SECRET}\n`,
          ),
      ],
    ];
    // The files route reads through the sandbox too: a link must not make the server read a host file.
    for (const [link, forbidden] of [
      ["/workspace/l-master", masterKey.toString("utf8").trim()],
      ["/workspace/l-shadow", "root:"],
      ["/workspace/l-home/credentials.json", JSON.parse(credentials).apiKey as string],
      ["/workspace/l-other", OTHER_SECRET],
      ["/workspace/../../etc/shadow", "root:"],
      [`${suite.context().otherWorkspace}/secret.txt`, OTHER_SECRET],
    ] as const) {
      hostChecks.push([
        `GET /files?path=${link} reveals nothing`,
        async () => {
          const response = await suite
            .harness()
            .api("GET", `/v1/sessions/${run.sessionId}/files?path=${encodeURIComponent(link)}`);
          const body = await response.text();
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(response.status).toBeLessThan(500);
          expect(body).not.toContain(forbidden);
        },
      ]);
    }
    for (const [name, check] of hostChecks) {
      suite.countProbe();
      await check().catch((error: Error) => {
        throw new Error(`${name}: ${error.message}`);
      });
    }
  }, 300_000);
});

describe("the planted marker", () => {
  it("is in no event of any probing session", () => {
    suite.countProbe();
    expect(suite.runs.length).toBeGreaterThanOrEqual(3);
    for (const run of suite.runs) expect(JSON.stringify(run.events)).not.toContain(suite.harness().marker);
    expect(suite.leaks).toEqual([]);
  });
});
