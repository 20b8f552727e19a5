import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { DEFAULT_POLICY, modulePolicy, type Policy, policyReads as reads } from '@sandlock/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PY_ATTEMPT, PY_READ_DIRENTS, pathFlipper } from '../../../tools/test-support/index.js';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  DETERMINISTIC_DIRS_MODULE,
  HOSTNAME_MODULE,
  MEMINFO_MODULE,
  PROC_HOST_MODULE,
  PROC_PIDS_MODULE,
  PROC_PIDS_SYSCALLS,
} from '../src/index.js';
import { output, PYTHON, run, SYSTEM_READ } from './helpers.js';

const BASH = '/bin/bash';
const SH = '/bin/sh';
const fsRead = [...SYSTEM_READ, '/proc', '/sys', '/dev/null'];
/** The session policy: the module reads fsRead (and fsDeny) to know /proc is readable. */
const policy = { fsRead, fsDeny: [] };

let supervisor: Supervisor;
let dir: string;
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [
      { module: PROC_PIDS_MODULE },
      // Right after it: the mount tables (/etc/mtab below) are its.
      { module: PROC_HOST_MODULE },
      { module: HOSTNAME_MODULE },
      { module: MEMINFO_MODULE },
      { module: DETERMINISTIC_DIRS_MODULE },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), 'procfs-pids-'));
});
afterAll(async () => {
  await supervisor?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a Python script in the sandbox, expects exit 0, returns its lines. */
async function python(script: string, extra: { fsRead?: string[] } = {}): Promise<string[]> {
  const out = await output(supervisor, [PYTHON, '-c', script], {
    policy: { fsRead: extra.fsRead ?? fsRead, fsDeny: [] },
    fsRead: extra.fsRead ?? fsRead,
  });
  return out.trim().split('\n');
}

/** Python helpers: `attempt(fn)` ('ok' or the errno name), `read(path)`. */
const ATTEMPT = `${PY_ATTEMPT}
def read(path):
    with open(path, 'rb') as f:
        return f.read()
`;

/** The view's condition for these fields (the policy's own checks aside: /procfs does not exist). */
const procReadable = (fields: Partial<Policy>) =>
  modulePolicy({ ...DEFAULT_POLICY, ...fields }).procReadable;
/** policyReads over these path fields, the others empty. */
const policyReads = (fields: Partial<Policy>, path: string) =>
  reads({ ...DEFAULT_POLICY, ...fields }, path);

describe('the condition', () => {
  it('is /proc readable by fsRead or fsWrite, and not denied', () => {
    expect(procReadable({ fsRead: ['/proc'] })).toBe(true);
    expect(procReadable({ fsRead: ['/'] })).toBe(true);
    expect(procReadable({ fsWrite: ['/'] })).toBe(true);
    expect(procReadable({ fsRead: ['/proc/self'] })).toBe(false);
    expect(procReadable({ fsRead: ['/procfs'] })).toBe(false);
    expect(procReadable({ fsRead: ['/usr'] })).toBe(false);
    expect(procReadable({})).toBe(false);
    expect(procReadable({ fsRead: ['/'], fsDeny: ['/proc'] })).toBe(false);
    expect(procReadable({ fsRead: ['/proc'], fsDeny: ['/'] })).toBe(false);
    expect(procReadable({ fsRead: ['/proc'], fsDeny: ['/proc/sys'] })).toBe(true);
    expect(policyReads({ fsRead: ['/'], fsDeny: ['/proc/sys'] }, '/proc/sys/kernel')).toBe(false);
    // Paths are one character per byte; the policy's are text.
    const accented = { fsRead: ['/'], fsDeny: ['/proc/sys/net/ipv4/conf/é'] };
    const path = Buffer.from('/proc/sys/net/ipv4/conf/é/forwarding').toString('latin1');
    expect(policyReads(accented, path)).toBe(false);
    // Whole names: a name beginning with `..` lies beneath its directory.
    expect(policyReads({ fsRead: ['/'], fsDeny: ['/proc/..x'] }, '/proc/..x/y')).toBe(false);
    expect(policyReads({ fsRead: ['/'], fsDeny: ['/proc/sys/'] }, '/proc/sys/kernel')).toBe(false);
  });

  it('turns the module on', () => {
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ fsRead: ['/usr'] }) })).toEqual(
      [],
    );
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy(policy) })).toEqual(
      [...PROC_PIDS_SYSCALLS, 'landlock_restrict_self', 'prctl'].sort(),
    );
  });
});

describe('listing /proc', () => {
  it('shows only the sandbox’s processes', async () => {
    // The shell prints its pid, then ls (its child) lists /proc.
    const out = await output(supervisor, [SH, '-c', 'echo $$; exec /bin/ls -1 /proc'], {
      policy,
      fsRead,
    });
    const [shell, ...names] = out.trim().split('\n');
    const pids = names.filter((name) => /^\d+$/.test(name)).map(Number);
    // exec: ls is the shell's process.
    expect(pids).toEqual([Number(shell)]);
    expect(pids).not.toContain(process.pid);
    expect(pids).not.toContain(1);
    expect(names).toContain('meminfo');
    expect(names).toContain('self');
  });

  it('shows a child and its parent, and the listing is whole for small buffers', async () => {
    const lines = await python(`${ATTEMPT}
import subprocess
child = subprocess.Popen(['/bin/sleep', '5'])
names = os.listdir('/proc')
pids = sorted(int(n) for n in names if n.isdigit())
print(pids == sorted([os.getpid(), child.pid]))
# A 100-byte buffer: many calls, nothing lost.
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(100)
seen = []
while True:
    n = libc.syscall(217, fd, buf, 100)
    if n <= 0: break
    at = 0
    while at < n:
        reclen = int.from_bytes(buf.raw[at+16:at+18], 'little')
        seen.append(buf.raw[at+19:at+reclen].split(b'\\0')[0].decode())
        at += reclen
print(sorted(n for n in seen if n not in ('.', '..')) == sorted(names))
# The legacy getdents (x86_64: 78): linux_dirent records, the type last.
legacy = []
if os.uname().machine == 'x86_64':
    fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
    big = ctypes.create_string_buffer(65536)
    while True:
        n = libc.syscall(78, fd, big, 65536)
        if n <= 0: break
        at = 0
        while at < n:
            reclen = int.from_bytes(big.raw[at+16:at+18], 'little')
            legacy.append(big.raw[at+18:at+reclen-1].split(b'\\0')[0].decode())
            at += reclen
    print(sorted(n for n in legacy if n not in ('.', '..')) == sorted(names))
else:
    print(True)
child.kill()
`);
    expect(lines).toEqual(['True', 'True', 'True']);
  });

  it('never hands the listing back to the kernel: a seek past it reads as the end', async () => {
    // The kernel lists pids from any offset of 258 up (fs/proc/base.c):
    // answered "continue", these seeks listed every host process.
    const lines = await python(`${ATTEMPT}
${PY_READ_DIRENTS}
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(65536)
def names_from(offset):
    fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
    if offset is not None:
        os.lseek(fd, offset, os.SEEK_SET)
    out = read_dirents(fd)
    os.close(fd)
    return out
whole = names_from(None)
print(sorted(int(n) for n in whole if n.isdigit()) == [os.getpid()])
for offset in (258, 4096, 1 << 20):
    print(offset, [n for n in names_from(offset) if n.isdigit()])
# After a first read, a seek beyond the listing too.
fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
libc.syscall(GETDENTS64, fd, buf, 200)
os.lseek(fd, 100000, os.SEEK_SET)
print('after', libc.syscall(GETDENTS64, fd, buf, 65536))
`);
    expect(lines).toEqual(['True', '258 []', '4096 []', '1048576 []', 'after 0']);
  });

  it('is sorted by name with deterministicDirs', async () => {
    const out = await output(supervisor, ['/bin/ls', '-f', '/proc'], {
      policy: { ...policy, deterministicDirs: true },
      fsRead,
    });
    const names = out.trim().split('\n');
    const sorted = [...names.slice(2)].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    expect(names.slice(0, 2)).toEqual(['.', '..']);
    expect(names.slice(2)).toEqual(sorted);
    expect(names.filter((name) => /^\d+$/.test(name))).toHaveLength(1);
  });
});

describe('opening /proc/<pid>', () => {
  it('hides pid 1 and the test runner', async () => {
    const init = await run(supervisor, ['/bin/cat', '/proc/1/status'], { policy, fsRead });
    expect(init.code).not.toBe(0);
    expect(init.stderr).toMatch(/No such file or directory/);
    const runner = await run(supervisor, ['/bin/cat', `/proc/${process.pid}/cmdline`], {
      policy,
      fsRead,
    });
    expect(runner.code).not.toBe(0);
    expect(runner.stderr).toMatch(/No such file or directory/);
  });

  it('serves /proc/self, the caller’s own pid and a sibling that never forked', async () => {
    const out = await output(
      supervisor,
      [
        SH,
        '-c',
        '/bin/sleep 5 & grep ^PPid: /proc/$!/status; grep ^Name: /proc/self/status; kill $!',
      ],
      { policy, fsRead },
    );
    expect(out).toMatch(/^PPid:\s+\d+\nName:\s+grep\n$/);
    const lines = await python(`${ATTEMPT}
print(read(f'/proc/{os.getpid()}/status').split(b'\\n')[0].decode())
print(read('/proc/thread-self/comm').decode().strip())
print(attempt(lambda: read('/proc/self/cmdline')))
`);
    expect(lines).toEqual(['Name:\tpython3', 'python3', 'ok']);
  });

  it('a path remembered as plain that becomes a symlink into /proc reveals nothing', async () => {
    // The probe's answer for a path the sandbox cannot write is kept for a
    // second. Here the host turns that file into a symlink to pid 1's status
    // meanwhile: the kernel follows it, and Landlock refuses /proc/1.
    // The swap follows the first read at once: the program opens a FIFO for
    // reading after it, which lets the host's open for writing return; the
    // host swaps, then closes its end, and the program reads the end of file.
    const file = join(dir, 'plain');
    const fifo = join(dir, 'swapped');
    writeFileSync(file, 'plain\n');
    execFileSync('mkfifo', [fifo]);
    const swap = open(fifo, 'w').then(async (writer) => {
      rmSync(file);
      symlinkSync('/proc/1/status', file);
      await writer.close();
    });
    let lines: string[];
    try {
      lines = await python(
        `${ATTEMPT}
print(read('${file}').decode().strip())
read('${fifo}')
print(attempt(lambda: read('${file}')))
`,
        { fsRead: [...fsRead, dir] },
      );
    } finally {
      // Lets the host's open return if the program never opened the FIFO.
      closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
      await swap;
    }
    expect(lines[0]).toBe('plain');
    expect(['ENOENT', 'EACCES']).toContain(lines[1]);
  });

  it('hides relative opens, dirfds, symlinks, .. and magic links', async () => {
    const link = join(dir, 'init');
    const viaCwd = join(dir, 'cwd');
    symlinkSync('/proc/1', link);
    symlinkSync('/proc/self/cwd', viaCwd);
    const lines = await python(
      `${ATTEMPT}
d = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
print(attempt(lambda: os.open('1/status', os.O_RDONLY, dir_fd=d)))
print(attempt(lambda: os.open(f'{os.getpid()}/status', os.O_RDONLY, dir_fd=d)))
print(attempt(lambda: read('${link}/status')))
print(attempt(lambda: read('/proc/self/../1/status')))
print(attempt(lambda: read('/proc/self/root/proc/1/status')))
print(attempt(lambda: read(f'/proc/self/fd/{d}/1/status')))
print(attempt(lambda: read(f'/dev/fd/{d}/1/status')))
os.chdir('/proc')
print(attempt(lambda: read('1/status')))
print(attempt(lambda: read('${viaCwd}/1/status')))
print(attempt(lambda: read('self/status')))
`,
      { fsRead: [...fsRead, dir] },
    );
    expect(lines).toEqual([
      'ENOENT',
      'ok',
      'ENOENT',
      'ENOENT',
      'ENOENT',
      'ENOENT',
      'ENOENT',
      'ENOENT',
      'ENOENT',
      'ok',
    ]);
    const shell = await run(supervisor, [SH, '-c', 'cd /proc && cat 1/status'], { policy, fsRead });
    expect(shell.stderr).toMatch(/No such file or directory/);
    // chdir is not intercepted: the cwd itself may be a hidden pid's directory.
    const inside = await run(supervisor, [SH, '-c', 'cd /proc/1 && cat status; cat ./stat'], {
      policy,
      fsRead,
    });
    expect(inside.stdout).toBe('');
    expect(inside.stderr).toMatch(/status: No such file or directory/);
    expect(inside.stderr).toMatch(/stat: No such file or directory/);
  });

  it('hides through a symlink whose name is not UTF-8, and opens such names', async () => {
    const named = (byte: number, rest: string) =>
      Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([byte]), Buffer.from(rest)]);
    symlinkSync('/proc/1', named(0xff, '-init'));
    writeFileSync(named(0xfe, '-file'), 'plain');
    const lines = await python(
      `${ATTEMPT}
d = b'${dir}'
print(attempt(lambda: read(d + b'/\\xff-init/status')))
print(read(d + b'/\\xfe-file').decode())
`,
      { fsRead: [...fsRead, dir] },
    );
    expect(lines).toEqual(['ENOENT', 'plain']);
  });

  it('hides openat2 opens, also with RESOLVE_IN_ROOT', async () => {
    const lines = await python(`${ATTEMPT}
libc = ctypes.CDLL(None, use_errno=True)
class OpenHow(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]
def openat2(dirfd, path, resolve=0):
    how = OpenHow(os.O_RDONLY, 0, resolve)
    fd = libc.syscall(437, dirfd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        return errno.errorcode[ctypes.get_errno()]
    os.close(fd)
    return 'ok'
print(openat2(-100, '/proc/1/status'))
print(openat2(-100, f'/proc/{os.getpid()}/status'))
d = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
print(openat2(d, '/1/status', 0x10))
print(openat2(d, f'/{os.getpid()}/status', 0x10))
`);
    // With RESOLVE_* flags of its own the open is the kernel's, and Landlock
    // grants no /proc/<pid> to a sandbox that hides processes: even its own
    // is refused (closed, not open).
    expect(lines).toEqual(['ENOENT', 'ok', 'ENOENT', 'EACCES']);
  });

  it('hides write opens of outside pids; its own reach the kernel (Landlock refuses them here)', async () => {
    const lines = await python(`${ATTEMPT}
def write(path):
    with open(path, 'w') as f:
        f.write('renamed')
print(attempt(lambda: write('/proc/1/comm')))
print(attempt(lambda: write('/proc/self/comm')))
print(read('/proc/self/comm').decode().strip())
`);
    expect(lines[0]).toBe('ENOENT');
    // Landlock's read-only /proc refuses the write; either way it reached the kernel.
    expect(lines[1]).toBe('EACCES');
  });

  /**
   * A Python program: one thread flips a path buffer between `benign` and
   * `hidden` (Python bytes expressions) while another opens it 3000 times;
   * prints how many opens read the hidden file (`leak`, a Python expression
   * on `got`, the bytes read; a torn path may name a directory, whose read
   * fails) and whether any open worked.
   */
  const race = (benign: string, hidden: string, leak: string) => `${ATTEMPT}
${pathFlipper(benign, hidden, 64)}
leaked = opened = 0
data = ctypes.create_string_buffer(4096)
for i in range(3000):
    fd = libc.open(buf, os.O_RDONLY)
    if fd < 0:
        continue
    opened += 1
    n = libc.read(fd, data, 4096)
    got = data.raw[:max(n, 0)]
    if ${leak}:
        leaked += 1
    libc.close(fd)
stop = True
flipper.join()
print(leaked, opened > 0)
`;

  it('leaves no race to the paths it lets through: Landlock grants no process directory', async () => {
    // /etc/hostname is let through (the kernel reads the path again); the
    // other path is this test runner's environ. Before the process
    // directories left the Landlock rules, hundreds of 3000 opens read it.
    const lines = await python(
      race(
        "b'/etc/hostname'",
        `b'/proc/${process.pid}/environ'`,
        // Vitest's workers (this runner) have VITEST in their environment.
        "b'VITEST=' in got",
      ),
    );
    expect(lines).toEqual(['0 True']);
  });

  it('leaves no race to the real /proc/loadavg: Landlock does not grant the files the modules make up', async () => {
    // A thread swaps /etc/hostname (let through) for /proc/loadavg after the
    // check: with a Landlock rule on the real file, the kernel would open it
    // and tell the host's thread count (the made-up one counts this sandbox's
    // two or three threads).
    const lines = await python(
      race(
        "b'/etc/hostname'",
        "b'/proc/loadavg'",
        "got.count(b'/') == 1 and int(got.split()[3].split(b'/')[1]) > 20",
      ),
    );
    expect(lines).toEqual(['0 True']);
  });

  it('decides on its own copy: a thread rewriting the path cannot reach a hidden pid', async () => {
    // The caller's own status (opened on behalf) against pid 1's. Answered
    // "continue", the kernel would read the path again and sometimes open
    // pid 1's; opened on behalf, every open is of the path the module checked.
    const lines = await python(
      race(
        "f'/proc/{os.getpid()}/status'.encode()",
        "b'/proc/1/status'",
        // pid 1's status, not the caller's.
        "got.startswith(b'Name:') and not got.startswith(b'Name:\\tpython3')",
      ),
    );
    expect(lines).toEqual(['0 True']);
  });

  it('serves a thread’s /proc/<tid> of a sandbox process', async () => {
    const lines = await python(`${ATTEMPT}
ready = threading.Event()
done = threading.Event()
tid = []
def body():
    tid.append(threading.get_native_id())
    ready.set()
    done.wait()
t = threading.Thread(target=body, name='worker')
t.start()
ready.wait()
status = read(f'/proc/{tid[0]}/status').decode()
print([l for l in status.split('\\n') if l.startswith('Tgid:')][0].split()[1] == str(os.getpid()))
print(tid[0] != os.getpid())
print(attempt(lambda: read(f'/proc/{os.getpid()}/task/{tid[0]}/stat')))
done.set()
t.join()
`);
    expect(lines).toEqual(['True', 'True', 'ok']);
  });

  it('answers with a read-only descriptor honouring O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW', async () => {
    const lines = await python(`${ATTEMPT}
import fcntl
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.open(b'/proc/self/status', os.O_RDONLY)  # os.open adds O_CLOEXEC (PEP 446)
print(bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC), os.read(fd, 6) == b'Name:\t')
fd2 = os.open('/proc/self/status', os.O_RDONLY | os.O_CLOEXEC)
print(bool(fcntl.fcntl(fd2, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
print(attempt(lambda: os.open('/proc/self/status', os.O_RDONLY | os.O_DIRECTORY)))
print(attempt(lambda: os.open('/proc/self', os.O_RDONLY | os.O_NOFOLLOW)))
print(attempt(lambda: os.open('/proc/self/status/', os.O_RDONLY)))
print(sorted(os.listdir('/proc/self/fd')) == sorted(os.listdir(f'/proc/{os.getpid()}/fd')))
`);
    expect(lines).toEqual(['False True', 'True', 'ENOTDIR', 'ELOOP', 'ENOTDIR', 'True']);
  });

  it('lets O_PATH opens through (ADDFD cannot pass them), hiding outside pids still', async () => {
    const lines = await python(`${ATTEMPT}
for path in ('/proc', '/proc/self', '/proc/self/status', f'/proc/{os.getppid()}', '/proc/1'):
    print(path.split('/')[-1] or 'root', attempt(lambda: os.close(os.open(path, os.O_PATH | os.O_CLOEXEC))))
fd = os.open('/proc', os.O_PATH | os.O_DIRECTORY)
print(attempt(lambda: os.close(os.open('1/status', os.O_RDONLY, dir_fd=fd))))
`);
    expect(lines).toEqual([
      'proc ok',
      'self ok',
      'status ok',
      `${lines[3]!.split(' ')[0]} ENOENT`,
      '1 ENOENT',
      'ENOENT',
    ]);
  });
});

describe('an fsDeny beneath /proc', () => {
  it('is honoured, and on-behalf opens serve what Landlock’s carving leaves out', async () => {
    // Landlock cuts /proc/sys out by allowing /proc's other entries one by
    // one, as they are when the sandbox starts: the sandbox's own pid
    // directories come later and are not among them. The module opens
    // /proc/self/… on behalf, so they work; /proc/sys it leaves to Landlock.
    const fsDeny = ['/proc/sys'];
    const argv = [
      SH,
      '-c',
      'grep ^Name: /proc/self/status; cat /proc/sys/kernel/ostype; cat /proc/1/status',
    ];
    // The carving lists /proc's pid directories, which may vanish before
    // their rules are made: such rules are optional.
    const result = await run(supervisor, argv, { policy: { fsRead, fsDeny }, fsRead, fsDeny });
    expect(result.stdout).toBe('Name:\tgrep\n');
    expect(result.stderr).toMatch(/\/proc\/sys\/kernel\/ostype: Permission denied/);
    expect(result.stderr).toMatch(/\/proc\/1\/status: No such file or directory/);
  });
});

describe('what still works', () => {
  it('/dev/fd/N and process substitution', async () => {
    expect(await output(supervisor, [BASH, '-c', 'cat <(echo hi)'], { policy, fsRead })).toBe(
      'hi\n',
    );
    expect(
      await output(
        supervisor,
        [BASH, '-c', 'exec 3</etc/hostname; cat /dev/fd/3 /proc/self/fd/3'],
        {
          policy,
          fsRead,
        },
      ),
    ).toMatch(/^(.+)\n\1\n$/);
    // /etc/mtab → /proc/mounts → self/mounts: the caller’s self, resolved
    // by proc-pids, served by proc-host.
    const mtab = await output(
      supervisor,
      [SH, '-c', 'cat /etc/mtab; echo --; cat /proc/self/mounts'],
      {
        policy,
        fsRead,
      },
    );
    const [viaLink, direct] = mtab.split('--\n');
    expect(viaLink).toContain(' /proc proc ');
    expect(viaLink).toBe(direct);
  });
});

describe('with the other modules', () => {
  it('leaves their virtual /proc files to them, after it', async () => {
    const result = await run(
      supervisor,
      [
        SH,
        '-c',
        'cat /proc/sys/kernel/hostname; grep ^MemTotal: /proc/meminfo; cat /proc/1/status',
      ],
      { policy: { ...policy, hostname: 'boxed', maxMemory: 64 * 1024 * 1024 }, fsRead },
    );
    expect(result.stdout).toMatch(/^boxed\nMemTotal:\s+65536 kB\n$/);
    expect(result.stderr).toMatch(/\/proc\/1\/status: No such file or directory/);
  });
});

describe('what is not hidden (README)', () => {
  it('stat and chdir of an outside pid are not intercepted; listing it is', async () => {
    const result = await run(
      supervisor,
      [SH, '-c', 'test -d /proc/1 && echo exists; cd /proc/1 && echo entered; ls /proc/1'],
      { policy, fsRead },
    );
    expect(result.stdout).toBe('exists\nentered\n');
    expect(result.stderr).toMatch(/cannot open directory '\/proc\/1': No such file or directory/);
  });
});

describe('sensitive host files', () => {
  it('are refused with EACCES', async () => {
    const lines = await python(`${ATTEMPT}
for path in ['/proc/kcore', '/proc/kallsyms', '/proc/keys', '/proc/sysrq-trigger', '/sys/firmware']:
    print(attempt(lambda: os.open(path, os.O_RDONLY)))
os.chdir('/proc')
print(attempt(lambda: os.open('kallsyms', os.O_RDONLY)))
`);
    expect(lines).toEqual(['EACCES', 'EACCES', 'EACCES', 'EACCES', 'EACCES', 'EACCES']);
  });
});

describe('without the module', () => {
  // What Landlock alone refuses of an outside process's /proc: procfs opens
  // mem, stack, syscall in PTRACE_MODE_ATTACH and environ, maps, auxv and
  // the magic links in PTRACE_MODE_READ (fs/proc/base.c); Landlock's ptrace
  // hook (security/landlock/task.c) refuses both for a process outside the
  // sandbox's domain. The outside process here has no capabilities either
  // (as root, the capability check alone would refuse a capable one).
  it('Landlock refuses the ptrace-mode files of outside processes; status stays readable', async () => {
    const off = await Supervisor.start({ modules: [] });
    const capless =
      process.getuid?.() === 0
        ? spawn('setpriv', ['--inh-caps=-all', '--bounding-set=-all', 'sleep', '60'])
        : spawn('sleep', ['60']);
    try {
      const script = `${ATTEMPT}
for pid in [1, ${process.pid}, ${capless.pid}]:
    print(' '.join(attempt(lambda: open(f'/proc/{pid}/{name}', 'rb').read(1)) for name in ['status', 'mem', 'stack', 'environ', 'maps', 'cwd/.']))
`;
      const out = await output(off, [PYTHON, '-c', script], { policy: {}, fsRead });
      // stack is mode 0400: without capabilities (sandlock drops them) the
      // permission check refuses it first (EACCES).
      expect(out.trim().split('\n')).toEqual([
        'ok EACCES EACCES EACCES EACCES EACCES',
        'ok EACCES EACCES EACCES EACCES EACCES',
        'ok EACCES EACCES EACCES EACCES EACCES',
      ]);
    } finally {
      capless.kill('SIGKILL');
      await off.close();
    }
  });
});
