/**
 * apt packages in an environment's layer. The base rootfs is read-only and bubblewrap 0.8 has no
 * `--overlay`, so apt does not install into `/usr`: the build sandbox runs `apt-get update` and
 * `apt-get install --download-only` (dependencies resolved against the image's own dpkg status, so
 * only what the image lacks is fetched) with apt's lists and cache inside the layer, through the
 * egress proxy whose allowlist is the image's Debian mirror hosts alone, then unpacks each `.deb`
 * with `dpkg-deb -x` under SANDBOX_APT_ROOT. Sessions get that root's `bin` directories on PATH and
 * its library directories on LD_LIBRARY_PATH. Maintainer scripts do not run (no dpkg database entry,
 * no generated config): packages that need them are outside what this supports.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** Where the unpacked packages appear in sandboxes (inside the layer's tree). */
export const SANDBOX_APT_ROOT = "/opt/outrig/packages/apt";
const SANDBOX_APT_STATE = "/opt/outrig/packages/.apt";
/** The image's /etc/apt and /var/lib/dpkg, bound read-only into a build (sandboxes have neither). */
const SANDBOX_IMAGE_APT_ETC = "/opt/outrig/image-apt/etc";
const SANDBOX_IMAGE_DPKG = "/opt/outrig/image-apt/dpkg";
const SANDBOX_PROXY = "http://127.0.0.1:3128";

/** The unpacked packages' executables, for the front of a sandbox's PATH. */
export const APT_PATH = ["usr/local/bin", "usr/bin", "bin", "usr/sbin", "sbin"]
  .map((directory) => `${SANDBOX_APT_ROOT}/${directory}`)
  .join(":");

/** The unpacked packages' shared libraries (Debian's multiarch directories, then the plain ones). */
export const APT_LIBRARY_PATH = [
  "usr/lib/x86_64-linux-gnu",
  "lib/x86_64-linux-gnu",
  "usr/lib/aarch64-linux-gnu",
  "lib/aarch64-linux-gnu",
  "usr/lib",
  "lib",
]
  .map((directory) => `${SANDBOX_APT_ROOT}/${directory}`)
  .join(":");

/** What a build needs to know of the base image's apt: the hosts its sources name. */
export interface AptSources {
  /** `host` or `host:port` of every http(s) source: the build's allowlist. */
  readonly hosts: readonly string[];
  /** The image's root: its /etc/apt and /var/lib/dpkg are bound into builds. */
  readonly rootfsDir: string;
}

/** The read-only mounts a build needs for apt: the image's sources and its dpkg database. */
export function aptBuildMounts(sources: AptSources): { hostPath: string; sandboxPath: string }[] {
  return [
    { hostPath: path.join(sources.rootfsDir, "etc", "apt"), sandboxPath: SANDBOX_IMAGE_APT_ETC },
    { hostPath: path.join(sources.rootfsDir, "var", "lib", "dpkg"), sandboxPath: SANDBOX_IMAGE_DPKG },
  ];
}

/**
 * The apt sources of a base rootfs (`/etc/apt/sources.list`, `sources.list.d/*.list` and
 * `*.sources`), or undefined when it has no apt-get or no http(s) source.
 */
export function readAptSources(rootfsDir: string): AptSources | undefined {
  if (!existsSync(path.join(rootfsDir, "usr", "bin", "apt-get"))) return undefined;
  if (!existsSync(path.join(rootfsDir, "var", "lib", "dpkg", "status"))) return undefined;
  const files = [path.join(rootfsDir, "etc", "apt", "sources.list")];
  const listDir = path.join(rootfsDir, "etc", "apt", "sources.list.d");
  try {
    for (const name of readdirSync(listDir))
      if (name.endsWith(".list") || name.endsWith(".sources")) files.push(path.join(listDir, name));
  } catch {
    // No sources.list.d: the main list alone.
  }
  const hosts = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    // Comment lines name no source apt uses.
    const active = text
      .split("\n")
      .filter((line) => !line.trimStart().startsWith("#"))
      .join("\n");
    for (const match of active.matchAll(/\bhttps?:\/\/([^\s/'"]+)/g)) {
      const host = match[1];
      if (host) hosts.add(host.toLowerCase());
    }
  }
  return hosts.size > 0 ? { hosts: [...hosts].sort(), rootfsDir } : undefined;
}

/**
 * The build command for apt specs (`name` or `name=version`, each one quoted word): fetch the
 * packages the image lacks through the proxy and unpack them under SANDBOX_APT_ROOT.
 */
export function aptInstallCommand(specs: readonly string[]): string {
  const options = [
    // The image's sources, and its dpkg database so that only what the image lacks is fetched.
    `Dir::Etc=${SANDBOX_IMAGE_APT_ETC}`,
    `Dir::State::status=${SANDBOX_IMAGE_DPKG}/status`,
    `DPkg::Options::=--admindir=${SANDBOX_IMAGE_DPKG}`,
    `Dir::State::Lists=${SANDBOX_APT_STATE}/lists`,
    `Dir::Cache=${SANDBOX_APT_STATE}/cache`,
    `Dir::Log=${SANDBOX_APT_STATE}/log`,
    // The image's dpkg database is read-only and nothing is installed into it.
    "Debug::NoLocking=1",
    // Downloads run as the sandbox's user (root inside it has no `_apt` to switch to).
    "APT::Sandbox::User=root",
    "Acquire::Languages=none",
    `Acquire::http::Proxy=${SANDBOX_PROXY}`,
    `Acquire::https::Proxy=${SANDBOX_PROXY}`,
  ]
    .map((option) => `-o '${option}'`)
    .join(" ");
  // Specs match the protocol's PackageSpec (no quotes), so single quotes keep them one literal word.
  const quoted = specs.map((spec) => `'${spec}'`).join(" ");
  return [
    "set -e",
    "shopt -s nullglob",
    `mkdir -p ${SANDBOX_APT_STATE}/lists/partial ${SANDBOX_APT_STATE}/cache/archives/partial ${SANDBOX_APT_STATE}/log ${SANDBOX_APT_ROOT}`,
    `apt-get ${options} -q update`,
    `apt-get ${options} -q -y --no-install-recommends --download-only install ${quoted}`,
    // A newer version of a package the image has would shadow the image's copy for every program
    // (LD_LIBRARY_PATH) under the image's own loader: refused, with the package named.
    `for deb in ${SANDBOX_APT_STATE}/cache/archives/*.deb; do`,
    `  name=$(dpkg-deb -f "$deb" Package)`,
    `  if dpkg-query --admindir=${SANDBOX_IMAGE_DPKG} -W -f='\${Status}' "$name" 2>/dev/null | grep -q ' installed$'; then`,
    `    echo "outrig: these packages need a newer $name than the base image has; rebuild the image (outrig image build) to upgrade it" >&2; exit 1`,
    "  fi",
    "done",
    `for deb in ${SANDBOX_APT_STATE}/cache/archives/*.deb; do dpkg-deb -x "$deb" ${SANDBOX_APT_ROOT}; done`,
    `rm -rf ${SANDBOX_APT_STATE}`,
  ].join("\n");
}
