#!/usr/bin/env bash
# Registers qemu-aarch64-static with binfmt_misc (root only), so that an
# aarch64 program exec'd by another aarch64 program under qemu-user runs too.
# Debian 12 ships the rule in /usr/lib/binfmt.d but no update-binfmts by default.
set -euo pipefail
rule=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -r "$rule" ] || { echo "no $rule (install qemu-user-static)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "binfmt_misc registration needs root"; exit 1; }
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  exit 0
fi
grep -v '^#' "$rule" | head -n 1 > /proc/sys/fs/binfmt_misc/register
