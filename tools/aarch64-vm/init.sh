#!/bin/sh
# PID 1 of the arm64 guest (run.sh packs it as /init of the initramfs, which is
# the whole root: no disk, no modules). Mounts what a Debian system has, runs
# vitest on the files named in /sandlock-vm/args, prints its exit status on
# the console for run.sh, and powers off.
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security
busybox ip link set lo up
hostname sandlock-aarch64
echo "sandlock-vm: kernel $(uname -r) $(uname -m), lsm $(cat /sys/kernel/security/lsm), node $(node --version)"
cd "$(cat /sandlock-vm/repo)"
start=$(date +%s)
rc=0
# shellcheck disable=SC2046 # one vitest file or directory per word
(node node_modules/vitest/vitest.mjs run $(cat /sandlock-vm/args); echo $? >/tmp/vitest-rc) 2>&1 | cat
rc=$(cat /tmp/vitest-rc 2>/dev/null || echo 125)
echo "sandlock-vm: vitest took $(($(date +%s) - start)) s"
echo "sandlock-vm: exit $rc"
sync
busybox poweroff -f
