#!/bin/sh
# Runs kernel-buffers.py as root, as root without capabilities (in a
# sandbox), and as nobody. Needs `pnpm build` first. Usage: kernel-buffers.sh [N]
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
n=${1:-100}
for f in net/core/wmem_default net/core/wmem_max fs/pipe-max-size fs/pipe-user-pages-soft; do
  echo "$f = $(cat /proc/sys/$f)"
done
echo '# root'
/usr/bin/python3 "$here/kernel-buffers.py" "$n"
echo '# root, no capabilities (sandlock run)'
node "$root/apps/cli/bin/sandlock.cjs" run -r /usr -r /lib -r /lib64 -r /etc -r "$here" -r /proc -- \
  /usr/bin/python3 "$here/kernel-buffers.py" "$n"
echo '# nobody'
cp "$here/kernel-buffers.py" /tmp/sandlock-kernel-buffers.py && chmod 644 /tmp/sandlock-kernel-buffers.py
su nobody -s /bin/sh -c "/usr/bin/python3 /tmp/sandlock-kernel-buffers.py $n"
rm -f /tmp/sandlock-kernel-buffers.py
