#!/usr/bin/env bash
# Installs what the runc sandbox provider's hibernate needs: runc, iptables (runc's CRIU RPC uses the
# iptables network lock) and CRIU >= 4. Debian bookworm ships CRIU 3.17, which fails `criu check` on
# kernels >= 6.x with the [vvar_vclock] mapping, and trixie's binary needs a newer glibc, so this builds
# CRIU 4.1.1 from trixie's SOURCE package. A private apt configuration under the cache directory fetches
# the source; nothing in /etc/apt is touched.
#
# Idempotent: when the cached binary exists and `criu check` passes, it prints the path and exits at once.
# Output: stdout is only the path of a working criu binary (progress goes to stderr). On failure it
# prints one line starting with "install-criu: FAILED:" on stderr and exits non-zero (the full log
# stays in the cache).
#
# Environment: OUTRIG_CRIU_CACHE (default /var/cache/outrig-ci), OUTRIG_CRIU_LINK=1 to also link the
# binary as /usr/local/sbin/criu.
set -uo pipefail

version=4.1.1
cache=${OUTRIG_CRIU_CACHE:-/var/cache/outrig-ci}
prefix="$cache/criu-$version"
binary="$prefix/criu"
log="$cache/criu-$version-build.log"

fail() {
  echo "install-criu: FAILED: $1 (log: $log)" >&2
  exit 1
}

mkdir -p "$cache" || fail "cannot create $cache"

check_binary() {
  [ -x "$binary" ] && "$binary" check >/dev/null 2>&1
}

link_binary() {
  if [ "${OUTRIG_CRIU_LINK:-0}" = 1 ]; then
    ln -sf "$binary" /usr/local/sbin/criu || fail "cannot link /usr/local/sbin/criu"
  fi
}

export DEBIAN_FRONTEND=noninteractive
# iproute2: the runc provider brings lo back up in a restored container's network namespace.
runtime_packages=(runc iptables iproute2)
build_packages=(build-essential pkg-config python3 libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler
  protobuf-compiler python3-protobuf libnl-3-dev libnet1-dev libcap-dev libaio-dev libbsd-dev
  libgnutls28-dev uuid-dev libnftables-dev libdrm-dev xz-utils)

install_missing() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "--- apt-get install ${missing[*]}" >&2
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >>"$log" 2>&1
}

install_missing "${runtime_packages[@]}" || fail "apt-get install runc iptables iproute2"

if check_binary; then
  link_binary
  echo "$binary"
  exit 0
fi

: >"$log"
install_missing "${build_packages[@]}" || fail "apt-get install of CRIU's build dependencies"

# Private apt configuration: only trixie's deb-src, its own lists and cache.
apt_root="$cache/apt-trixie"
mkdir -p "$apt_root/etc/sources.list.d" "$apt_root/etc/preferences.d" "$apt_root/lists/partial" \
  "$apt_root/cache/archives/partial" "$apt_root/src" || fail "cannot create $apt_root"
echo 'deb-src http://deb.debian.org/debian trixie main' >"$apt_root/etc/sources.list"
apt_options=(
  -o "Dir::Etc::sourcelist=$apt_root/etc/sources.list"
  -o "Dir::Etc::sourceparts=$apt_root/etc/sources.list.d"
  -o "Dir::Etc::preferencesparts=$apt_root/etc/preferences.d"
  -o "Dir::State::Lists=$apt_root/lists"
  -o "Dir::Cache=$apt_root/cache"
  -o "APT::Sandbox::User=root"
)

echo "--- fetching criu $version source (Debian trixie)" >&2
apt-get "${apt_options[@]}" update >>"$log" 2>&1 || fail "apt-get update of the private trixie deb-src list"
tarball="$apt_root/src/criu_$version.orig.tar.xz"
if [ ! -s "$tarball" ]; then
  # The Debian part of the source package sometimes 404s on mirrors; only the upstream tarball matters
  # (apt checks its hash against the signed Sources index), so the exit status is judged by the file.
  (cd "$apt_root/src" && apt-get "${apt_options[@]}" source --download-only "criu=$version-*") >>"$log" 2>&1 ||
    (cd "$apt_root/src" && apt-get "${apt_options[@]}" source --download-only criu) >>"$log" 2>&1
  [ -s "$tarball" ] || fail "download of criu_$version.orig.tar.xz from trixie's deb-src"
fi

echo "--- building criu $version" >&2
build="$cache/criu-$version-build"
rm -rf "$build" && mkdir -p "$build" || fail "cannot create $build"
tar -xf "$tarball" -C "$build" --strip-components=1 >>"$log" 2>&1 || fail "unpacking $tarball"
make -C "$build" -j"$(nproc)" criu >>"$log" 2>&1 || fail "make criu"
mkdir -p "$prefix" && install -m 0755 "$build/criu/criu" "$binary" || fail "installing $binary"
rm -rf "$build"

check_binary || fail "$binary check (kernel features missing?)"
link_binary
echo "--- criu $version ready: $("$binary" --version | head -1)" >&2
echo "$binary"
