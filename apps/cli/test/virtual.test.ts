import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const MIB = 1024 * 1024;

/**
 * Python's ctypes struct sysinfo (include/uapi/linux/sysinfo.h, 112 bytes
 * on x86_64 and aarch64), as `sysinfo()`.
 */
const CTYPES_SYSINFO = `
import ctypes
L = ctypes.c_ulong
class Sysinfo(ctypes.Structure):
    _fields_ = [('uptime', ctypes.c_long), ('loads', L * 3), ('totalram', L), ('freeram', L),
                ('sharedram', L), ('bufferram', L), ('totalswap', L), ('freeswap', L),
                ('procs', ctypes.c_ushort), ('pad', ctypes.c_ushort), ('totalhigh', L),
                ('freehigh', L), ('mem_unit', ctypes.c_uint), ('_f', ctypes.c_char * 4)]
assert ctypes.sizeof(Sysinfo) == 112
def sysinfo():
    info = Sysinfo()
    assert ctypes.CDLL(None).sysinfo(ctypes.byref(info)) == 0
    return info
`;

/** `sandlock run` of a shell script with the system directories and /proc readable. */
function withProc(script: string, extra: readonly string[] = []) {
  return sandlock(['run', ...SYSTEM, '-r', '/proc', '-w', '/dev/null', ...extra, '-e', script]);
}

describe('sandlock run: what the sandbox sees', () => {
  it('--hostname: uname, /etc/hostname and Python agree', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--hostname',
      'sandbox-box',
      '-e',
      `uname -n; cat /etc/hostname; ${PYTHON} -c 'import socket; print(socket.gethostname())'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('sandbox-box\nsandbox-box\nsandbox-box\n');
  });

  it('--num-cpus: nproc, Python and Node report the same count', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--num-cpus',
      '3',
      '-e',
      `nproc; ${PYTHON} -c 'import os; print(os.cpu_count())'; ${process.execPath} -e 'console.log(require("os").cpus().length)'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('3\n3\n3\n');
  });
});

describe('sandlock run: memory the sandbox sees', () => {
  it('-m makes /proc/meminfo report the limit', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-m',
      '300M',
      '--',
      '/usr/bin/python3',
      '-c',
      "print([l for l in open('/proc/meminfo') if l.startswith('MemTotal:')][0].split()[1])",
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${300 * 1024}\n`);
  });

  it('--max-memory: sysconf(_SC_PHYS_PAGES) is the limit (sysinfo(2)), _SC_AVPHYS_PAGES at most that', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--max-memory',
      '256M',
      '--',
      PYTHON,
      '-c',
      `${CTYPES_SYSINFO}
import os
page = os.sysconf('SC_PAGE_SIZE')
info = sysinfo()
print(os.sysconf('SC_PHYS_PAGES') * page, os.sysconf('SC_AVPHYS_PAGES') * page)
print(info.totalram * info.mem_unit, info.mem_unit, info.totalswap, info.sharedram, info.bufferram)`,
    ]);
    expect(result.stderr).toBe('');
    const [pages, struct] = result.stdout.trim().split('\n');
    const [total, available] = pages!.split(' ').map(Number);
    expect(total).toBe(256 * MIB);
    expect(available).toBeGreaterThan(0);
    expect(available).toBeLessThanOrEqual(256 * MIB);
    expect(struct).toBe(`${256 * MIB} 1 0 0 0`);
  });
});

describe('sandlock run: deterministic directory order', () => {
  it('--deterministic-dirs lists directories sorted by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-dirs-'));
    for (const name of ['delta', 'alpha', 'charlie', 'bravo', 'echo'])
      writeFileSync(join(dir, name), '');
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      dir,
      '--deterministic-dirs',
      '--',
      'ls',
      '-f',
      dir,
    ]);
    rmSync(dir, { recursive: true, force: true });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('.\n..\nalpha\nbravo\ncharlie\ndelta\necho\n');
  });
});

describe('sandlock run: the processes the sandbox sees', () => {
  it('-r /proc: only its own processes are listed and openable', () => {
    const result = withProc(
      `ls /proc | grep -c '^[0-9]'; cat /proc/1/status 2>&1 >/dev/null | sed 's/^cat: //'; cat /proc/${process.pid}/cmdline 2>&1 >/dev/null | sed 's/^cat: //'; grep -c . /proc/self/status >/dev/null && echo self ok; ps -e --no-headers | wc -l`,
    );
    expect(result.stderr).toBe('');
    const [listed, one, runner, self, ps] = result.stdout.trim().split('\n');
    // sh, ls and grep; then sh, ps and wc.
    expect(Number(listed)).toBe(3);
    expect(one).toBe('/proc/1/status: No such file or directory');
    expect(runner).toBe(`/proc/${process.pid}/cmdline: No such file or directory`);
    expect(self).toBe('self ok');
    expect(Number(ps)).toBe(3);
  });

  it('-r /proc: host-sensitive files are refused', () => {
    const result = withProc('head -c1 /proc/kallsyms 2>&1 >/dev/null | sed "s/^head: //"');
    expect(result.stdout).toBe("cannot open '/proc/kallsyms' for reading: Permission denied\n");
  });

  it('--hostname: /etc/hosts names the virtual host', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '--hostname',
      'sandbox-box',
      '-e',
      `getent hosts sandbox-box; ${PYTHON} -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^127\.0\.1\.1\s+sandbox-box\n127\.0\.1\.1\n$/);
  });
});

describe('sandlock run: the host the sandbox sees', () => {
  it('-r /proc: /proc/loadavg counts the sandbox’s tasks and names its last pid', () => {
    const shell = withProc('echo $$; cat /proc/loadavg & cat=$!; wait; echo $cat');
    expect(shell.stderr).toBe('');
    const [sh, load, cat] = shell.stdout.trim().split('\n');
    const match = /^(\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) (\d+)\/(\d+) (\d+)$/.exec(load!);
    expect(match, load).not.toBeNull();
    const [running, total, last] = [match![4], match![5], match![6]].map(Number);
    // sh and cat (and nothing of the host's).
    expect(total).toBeGreaterThanOrEqual(1);
    expect(total).toBeLessThanOrEqual(3);
    expect(running).toBeGreaterThanOrEqual(1);
    expect(running).toBeLessThanOrEqual(total!);
    // cat, forked after sh: the newest of the sandbox's pids (other
    // processes of the machine may have taken pids between the two).
    expect(last).toBeGreaterThan(Number(sh));
    expect(last).toBe(Number(cat));

    const alone = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--',
      PYTHON,
      '-c',
      "import os; print(os.getpid()); print(open('/proc/loadavg').read(), end='')",
    ]);
    expect(alone.stderr).toBe('');
    const [pid, line] = alone.stdout.trim().split('\n');
    expect(line).toMatch(new RegExp(`^0\\.0\\d 0\\.00 0\\.00 1/1 ${pid}$`));
  });

  it('-r /proc: os.getloadavg() (sysinfo(2)) agrees with /proc/loadavg; procs counts the sandbox’s threads', () => {
    // Two busy processes for 3 s raise the sandbox's averages; /proc/loadavg
    // is read while they run, getloadavg() just after they are killed: it
    // shows the same averages (one state, shared by proc-host and sysinfo),
    // not a fresh 0.
    const script = `${CTYPES_SYSINFO}
import os, subprocess, time
print(' '.join(open('/proc/loadavg').read().split()[:3]))
print(' '.join('%.2f' % x for x in os.getloadavg()), sysinfo().procs)
busy = [subprocess.Popen(['yes'], stdout=subprocess.DEVNULL) for _ in range(2)]
time.sleep(3)
print(' '.join(open('/proc/loadavg').read().split()[:3]), sysinfo().procs)
read = time.monotonic()
for process in busy:
    process.kill()
    process.wait()
print(' '.join('%.2f' % x for x in os.getloadavg()), sysinfo().procs, time.monotonic() - read)`;
    const started = performance.now();
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '-w',
      '/dev/null',
      '--',
      PYTHON,
      '-c',
      script,
    ]);
    const ranMinutes = (performance.now() - started) / 60_000;
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    const numbers = (line: string) => line.split(' ').map(Number);
    const [fileAtStart, [a1, a5, a15, procsAlone], fileBusy, [b1, b5, b15, procsAfter, apart]] = [
      numbers(lines[0]!),
      numbers(lines[1]!),
      numbers(lines[2]!),
      numbers(lines[3]!),
    ];
    // At the start: Python alone, the same near-zero averages both ways: from 0, one task
    // for at most the time the run took (1 − e^(−t/60)), not the host's averages.
    expect([a1, a5, a15]).toEqual(fileAtStart);
    expect(a1).toBeLessThanOrEqual(1 - Math.exp(-ranMinutes) + 0.01);
    expect(procsAlone).toBe(1);
    // While busy: Python and two yes (at most 5 threads), then Python alone again.
    const [busy1, busy5, busy15, procsBusy] = fileBusy!;
    expect(procsBusy).toBe(3);
    expect(procsAfter).toBe(1);
    // 2 · (1 − e^(−3/60)) ≈ 0.10 once both ran 3 s; more than nothing anyway.
    expect(busy1).toBeGreaterThanOrEqual(0.05);
    // The same averages (a fresh 0 would be busy1 away), moved for the time the kill took
    // towards the one to three tasks there were meanwhile: at most 3 · (1 − e^(−t/T)) for
    // t seconds apart, T = 60, 300, 900 (and each side rounded to two decimals its own way).
    for (const [shown, read, period] of [
      [busy1, b1, 60],
      [busy5, b5, 300],
      [busy15, b15, 900],
    ] as const) {
      const moved = 3 * (1 - Math.exp(-apart! / period)) + 0.011;
      expect(Math.abs(shown! - read!), `${fileBusy} vs ${lines[3]}`).toBeLessThanOrEqual(moved);
    }
    // The host's thread count is far above the sandbox's.
    const hostThreads = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[1]);
    expect(hostThreads).toBeGreaterThan(5);
  });

  it('-r /proc: Node os.loadavg() is the sandbox’s', () => {
    const nodeDir = process.execPath.startsWith('/usr/') ? [] : ['-r', process.execPath];
    const started = performance.now();
    const result = sandlock([
      'run',
      ...SYSTEM,
      ...nodeDir,
      '-r',
      '/proc',
      '--',
      process.execPath,
      '-e',
      'console.log(require("os").loadavg().join(" "))',
    ]);
    const ranMinutes = (performance.now() - started) / 60_000;
    expect(result.stderr).toBe('');
    const averages = result.stdout.trim().split(' ').map(Number);
    expect(averages).toHaveLength(3);
    // Node alone, from 0 at the start: its threads mostly sleep (the reader counts as running,
    // not in the averages). However long a loaded machine made the run, the averages of the
    // few threads busy at start-up stay at most 4 · (1 − e^(−t/60)), not the host's.
    for (const average of averages) {
      expect(average).toBeLessThanOrEqual(4 * (1 - Math.exp(-ranMinutes)) + 0.01);
    }
  });

  it('-r /proc: the host’s file locks and System V IPC objects do not show; System V IPC is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-ipc-'));
    writeFileSync(join(dir, 'held'), '');
    // A host process holding a flock and a System V shared memory segment
    // with a secret in it; SIGTERM removes the segment.
    const holder = spawn(
      PYTHON,
      [
        '-c',
        `
import ctypes, fcntl, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
held = open(sys.argv[1], 'w')
fcntl.flock(held, fcntl.LOCK_EX)
key = 0x5a000000 | (os.getpid() & 0xffffff)
shmid = libc.shmget(key, 4096, 0o1600)
assert shmid >= 0, ctypes.get_errno()
libc.shmat.restype = ctypes.c_void_p
ctypes.memmove(libc.shmat(shmid, None, 0), b'HOST-SECRET', 11)
signal.signal(signal.SIGTERM, lambda *_: (libc.shmctl(shmid, 0, None), os._exit(0)))
print(os.getpid(), key, flush=True)
time.sleep(60)
`,
        join(dir, 'held'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let line = '';
      while (!line.includes('\n')) {
        const [chunk] = (await once(holder.stdout!, 'data')) as [Buffer];
        line += chunk.toString();
      }
      const [pid, key] = line.trim().split(/\s+/).map(Number);
      // The host sees both.
      expect(readFileSync('/proc/locks', 'utf8')).toContain(` ${pid} `);
      expect(readFileSync('/proc/sysvipc/shm', 'utf8')).toMatch(new RegExp(`\\b${key}\\b`));
      const result = withProc(
        `${PYTHON} -c '
import ctypes, fcntl, os
libc = ctypes.CDLL(None, use_errno=True)
print("shmget", libc.shmget(${key}, 0, 0), ctypes.get_errno())
print("sysvipc", len(open("/proc/sysvipc/shm").read().splitlines()))
own = open("${join(dir, 'own')}", "w")
fcntl.flock(own, fcntl.LOCK_EX)
locks = open("/proc/locks").read()
print("holder", " ${pid} " in locks, "own", " %d " % os.getpid() in locks)
'`,
        ['-w', dir],
      );
      expect(result.stderr).toBe('');
      expect(result.stdout.trim().split('\n')).toEqual([
        'shmget -1 1', // EPERM: refused by the filter, not looked up (ENOENT)
        'sysvipc 1', // the header line only
        'holder False own True',
      ]);
    } finally {
      holder.kill('SIGTERM');
      await once(holder, 'exit');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('-r /proc: mount tables hold the mounts the policy shows', () => {
    const root = process.getuid?.() === 0;
    let dir = '';
    let mounted = false;
    let skip: string | undefined = root ? undefined : 'not root: cannot mount a tmpfs';
    beforeAll(() => {
      if (skip) return;
      dir = mkdtempSync('/tmp/sandlock-mount-');
      const result = spawnSync('mount', ['-t', 'tmpfs', 'sandlock-test', dir], {
        encoding: 'utf8',
      });
      if (result.status !== 0) skip = `mount -t tmpfs failed: ${result.stderr || result.error}`;
      else mounted = true;
    });
    afterAll(() => {
      if (mounted) spawnSync('umount', [dir]);
      if (dir) rmdirSync(dir);
    });

    /** The three tables as the sandbox reads them, split. */
    function tables(extra: string[]): string[] {
      const result = withProc(
        'cat /proc/self/mountinfo; echo ---; cat /proc/mounts; echo ---; cat /etc/mtab',
        extra,
      );
      expect(result.stderr).toBe('');
      return result.stdout.split('---\n');
    }

    it('a tmpfs outside the policy is not listed; / and /proc are', (context) => {
      if (skip) {
        console.warn(`virtual: skipping the mount table test: ${skip}`);
        context.skip();
      }
      const [mountinfo, mounts, mtab] = tables([]);
      expect(mountinfo).toMatch(/^\S+ \S+ \S+ \S+ \/ /m);
      expect(mountinfo).toMatch(/^\S+ \S+ \S+ \S+ \/proc /m);
      for (const table of [mounts, mtab]) {
        expect(table).toMatch(/^\S+ \/ /m);
        expect(table).toMatch(/^\S+ \/proc /m);
      }
      for (const table of [mountinfo, mounts, mtab]) expect(table).not.toContain(dir);
    });

    it('the same tmpfs is listed when the policy grants it', (context) => {
      if (skip) {
        console.warn(`virtual: skipping the mount table test: ${skip}`);
        context.skip();
      }
      const [mountinfo, mounts, mtab] = tables(['-r', dir]);
      expect(mountinfo).toContain(` ${dir} `);
      expect(mounts).toContain(`sandlock-test ${dir} tmpfs `);
      expect(mtab).toContain(`sandlock-test ${dir} tmpfs `);
    });
  });
});
