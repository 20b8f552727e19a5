// Programs, `#!` interpreters, loaders and libraries that exist only in the
// copy-on-write layer over the root (`--chroot R --workdir R`), or that the
// layer deleted: each case against a real chroot(2) over a real overlayfs
// mount of the same root (as root, in a mount namespace of its own).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfs, missing, type Rootfs, runInRoot } from './support/rootfs.js';

const why = missing();
if (why !== null) console.log(`chroot layer tests skipped: ${why}`);
const root = process.getuid?.() === 0;
if (!root) console.log('chroot layer differential skipped: an overlayfs mount needs root');

/** The dynamic loader and the libc of the host's /bin/ls, at the same paths in the test root. */
function loaderAndLibc(): { loader: string; libc: string } {
  const out = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
  const paths = [...out.matchAll(/(\/\S+) \(0x/g)].map((match) => match[1]!);
  const loader = paths.find((path) => /\/ld-linux[^/]*\.so/.test(path));
  const libc = paths.find((path) => /\/libc\.so\.\d+$/.test(path));
  if (loader === undefined || libc === undefined) throw new Error(`ldd /bin/ls: ${out}`);
  return { loader, libc };
}

/**
 * `script` run by /bin/sh under chroot(2) of an overlayfs whose lower is
 * `dir` and whose upper is a fresh directory (thrown away after), stdout
 * and stderr together.
 */
function runInRealOverlay(dir: string, script: string): string {
  const base = mkdtempSync(join(tmpdir(), 'sandlock-overlay-'));
  try {
    for (const sub of ['upper', 'work', 'merged']) mkdirSync(join(base, sub));
    const mount =
      'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/merged" && ' +
      'exec chroot "$2/merged" /bin/env -i PATH=/bin:/usr/bin /bin/sh -c "$3" 2>&1';
    return execFileSync(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', mount, 'sh', dir, base, script],
      { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

describe.skipIf(why !== null)('the emulated chroot with a workdir over the root', () => {
  let fs: Rootfs;
  let storage: string;
  const { loader, libc } = loaderAndLibc();
  beforeAll(async () => {
    fs = buildRootfs();
    storage = join(fs.dir, '..', 'store');
    // The first sandbox starts the supervisor's worker: outside the tests' time.
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => fs?.remove());

  /** `lines` run in the sandbox (a dry run) and, as root, under chroot(2) of an overlay: the same output. */
  const both = async (lines: string[], expected: string) => {
    const script = `${lines.join('\n')}\n`;
    const result = await runInRoot(fs.dir, ['/bin/sh', '-c', `{\n${script}} 2>&1`], {
      workdir: { dir: fs.dir, storage },
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(expected);
    if (root) expect(runInRealOverlay(fs.dir, script)).toBe(expected);
  };

  it('gives a script the layer holds its path as executed as $0; refuses one it may not execute', async () => {
    await both(
      [
        'printf \'#!/bin/sh\\necho "$0 $1"\\n\' > /tmp/zero.sh',
        'chmod 755 /tmp/zero.sh',
        '/tmp/zero.sh one',
        'cd /tmp && ./zero.sh two',
        '/bin/env /tmp/zero.sh three',
        // Without execute permission, a script or an ELF of the layer: EACCES.
        "printf '#!/bin/sh\\necho never\\n' > /tmp/nox.sh",
        '/tmp/nox.sh',
        '/bin/busybox cp /bin/busybox /tmp/nox && chmod 644 /tmp/nox',
        '/tmp/nox true',
        'echo "rc $?"',
        '/bin/busybox mkfifo -m 755 /tmp/fifo',
        '/tmp/fifo',
        'echo "rc $?"',
      ],
      '/tmp/zero.sh one\n./zero.sh two\n/tmp/zero.sh three\n/bin/sh: /tmp/nox.sh: Permission denied\n/bin/sh: /tmp/nox: Permission denied\nrc 126\n/bin/sh: /tmp/fifo: Permission denied\nrc 126\n',
    );
  });

  it("runs a #! interpreter the layer holds: an ELF, a script, one that replaces the root's", async () => {
    await both(
      [
        'mkdir -p /opt/tool/bin',
        '/bin/busybox cp /bin/busybox /opt/tool/bin/sh',
        'printf \'#!/opt/tool/bin/sh\\necho "tool $0 $1"\\n\' > /tmp/t1',
        'printf \'#!/bin/sh\\necho "mysh $0 $1 $2"\\n\' > /opt/tool/bin/mysh',
        "printf '#!/opt/tool/bin/mysh\\n' > /tmp/t2",
        'chmod 755 /tmp/t1 /opt/tool/bin/mysh /tmp/t2',
        '/tmp/t1 a',
        '/tmp/t2 b',
        'printf \'#!/bin/sh\\necho "new interp1 $0 [$1] $2 $3"\\n\' > /interp1',
        '/nested c',
      ],
      'tool /tmp/t1 a\nmysh /opt/tool/bin/mysh /tmp/t2 b\nnew interp1 /interp1 [one two] /nested c\n',
    );
  });

  it('refuses a #! interpreter the layer deleted (ENOENT)', async () => {
    await both(
      ['rm /interp1', '/nested c', 'echo "rc $?"', '/script d'],
      '/bin/sh: /nested: not found\nrc 127\nscript /script d\n',
    );
  });

  it("runs a dynamically linked program the layer holds, and one with the layer's loader", async () => {
    await both(
      [
        'mkdir -p /usr/local/bin',
        '/bin/busybox cp /usr/bin/dls /usr/local/bin/dls2',
        '/usr/local/bin/dls2 -d /etc',
        `/bin/busybox cp ${loader} /tmp/loader`,
        `rm ${loader}`,
        `/bin/busybox cp /tmp/loader ${loader}`,
        '/usr/bin/dls -d /data',
        `rm ${loader}`,
        '/usr/bin/dls -d /data',
        'echo "rc $?"',
      ],
      '/etc\n/data\n/bin/sh: /usr/bin/dls: not found\nrc 127\n',
    );
  });

  it('loads a library the layer holds, named by LD_LIBRARY_PATH, not the one it deleted', async () => {
    await both(
      [
        'mkdir -p /opt/lib',
        `/bin/busybox cp ${libc} /opt/lib/`,
        `rm ${libc}`,
        'LD_LIBRARY_PATH=/opt/lib /usr/bin/dls -d /etc',
        '/usr/bin/dls -d /etc',
        'echo "rc $?"',
      ],
      `/etc\n/usr/bin/dls: error while loading shared libraries: libc.so.6: cannot open shared object file: No such file or directory\nrc 127\n`,
    );
  });
});
