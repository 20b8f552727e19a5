import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import {
  hostArch,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
} from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import { GETRANDOM_MAX, RANDOM_MODULE, RANDOM_SYSCALLS } from '../src/index.js';
import { DEFAULT_READ, output, PYTHON } from './helpers.js';

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({ modules: [{ module: RANDOM_MODULE }] });
});
afterAll(() => supervisor?.close());

const seeded = (seed: bigint) => ({ policy: { randomSeed: seed } });
const py = (code: string) => [PYTHON, '-c', code];

describe('module', () => {
  it('is on only with randomSeed', () => {
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({}) })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ randomSeed: null }) })).toEqual(
      [],
    );
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ randomSeed: 0n }) })).toEqual(
      [...RANDOM_SYSCALLS].sort(),
    );
  });
});

describe('getrandom', () => {
  const urandom16 = py('import os; print(os.urandom(16).hex())');

  it('same seed, same bytes; another seed, other bytes', async () => {
    const a = await output(supervisor, urandom16, seeded(42n));
    const b = await output(supervisor, urandom16, seeded(42n));
    const c = await output(supervisor, urandom16, seeded(43n));
    expect(a).toMatch(/^[0-9a-f]{32}\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });
});

describe('/dev/urandom', () => {
  it('head -c 4000000 | sha256sum is reproducible', async () => {
    const argv = ['/bin/sh', '-c', 'head -c 4000000 /dev/urandom | sha256sum'];
    const a = await output(supervisor, argv, seeded(7n));
    const b = await output(supervisor, argv, seeded(7n));
    const c = await output(supervisor, argv, seeded(8n));
    expect(a).toMatch(/^[0-9a-f]{64} {2}-\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('od /dev/random', async () => {
    const argv = ['/usr/bin/od', '-An', '-N16', '-tx1', '/dev/random'];
    const a = await output(supervisor, argv, seeded(7n));
    expect(await output(supervisor, argv, seeded(7n))).toBe(a);
    expect(await output(supervisor, argv, seeded(9n))).not.toBe(a);
  });
});

/** Lines `tag hex` → a map from tag to hex. */
function byTag(text: string): Map<string, string> {
  return new Map(
    text
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
}

describe('streams follow the process tree', () => {
  // Four children read at once; each sleeps for a time that differs between
  // runs (from its pid and the clock), so they finish in another order.
  const forks = py(`
import os, sys, time
children = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        time.sleep(((os.getpid() * 7919 + time.monotonic_ns()) % 50) / 1000)
        os.write(1, f"child{i} {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("parent", os.urandom(8).hex())
`);

  it('four children reading in parallel print the same lines in two runs', async () => {
    const first = await output(supervisor, forks, seeded(5n));
    const second = await output(supervisor, forks, seeded(5n));
    const a = byTag(first);
    const b = byTag(second);
    expect([...a.keys()].sort()).toEqual(['child0', 'child1', 'child2', 'child3', 'parent']);
    for (const [tag, hex] of a) expect(b.get(tag), tag).toBe(hex);
    expect(first.trim().split('\n').sort()).toEqual(second.trim().split('\n').sort());
    // The parent's and every child's streams differ.
    expect(new Set(a.values()).size).toBe(5);
    const other = byTag(await output(supervisor, forks, seeded(6n)));
    for (const [tag, hex] of a) expect(other.get(tag), tag).not.toBe(hex);
  });

  it('grandchildren, and a child whose parent exited first, keep their streams', async () => {
    const program = py(`
import os, time
r, w = os.pipe()
if os.fork() == 0:
    # The child forks a grandchild and exits at once: the grandchild is
    # reparented before it reads.
    if os.fork() == 0:
        os.close(w)
        os.read(r, 1)
        os.write(1, f"orphan {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    os._exit(0)
os.close(r)
os.wait()
time.sleep(0.05)
if os.fork() == 0:
    if os.fork() == 0:
        os.write(1, f"grandchild {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    os.wait()
    os._exit(0)
os.wait()
os.close(w)
time.sleep(0.2)
`);
    const a = byTag(await output(supervisor, program, seeded(11n)));
    const b = byTag(await output(supervisor, program, seeded(11n)));
    expect([...a.keys()].sort()).toEqual(['grandchild', 'orphan']);
    expect(b).toEqual(a);
    expect(a.get('orphan')).not.toBe(a.get('grandchild'));
  });

  it('children started with posix_spawn (vfork) and shell background jobs', async () => {
    const spawn = py(`
import subprocess, sys
code = "import os, sys, time; time.sleep(int.from_bytes(os.urandom(1), 'big') / 5000); print(sys.argv[1], os.urandom(8).hex())"
children = [subprocess.Popen([sys.executable, "-c", code, f"spawned{i}"]) for i in range(3)]
for child in children:
    child.wait()
`);
    const a = byTag(await output(supervisor, spawn, seeded(21n)));
    expect([...a.keys()].sort()).toEqual(['spawned0', 'spawned1', 'spawned2']);
    expect(byTag(await output(supervisor, spawn, seeded(21n)))).toEqual(a);
    const jobs = [
      '/bin/sh',
      '-c',
      'for i in 1 2 3 4; do od -An -N8 -tx1 /dev/urandom & done; wait',
    ];
    const lines = (text: string) =>
      text
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '')
        .sort();
    const first = lines(await output(supervisor, jobs, seeded(21n)));
    expect(first).toHaveLength(4);
    expect(new Set(first).size).toBe(4);
    expect(lines(await output(supervisor, jobs, seeded(21n)))).toEqual(first);
  });

  it('threads read their process stream', async () => {
    const inThread = py(`
import os, threading
t = threading.Thread(target=lambda: print(os.urandom(8).hex()))
t.start(); t.join()
`);
    const inMain = py('import os, threading; print(os.urandom(8).hex())');
    const thread = await output(supervisor, inThread, seeded(3n));
    expect(thread).toMatch(/^[0-9a-f]{16}\n$/);
    expect(await output(supervisor, inMain, seeded(3n))).toBe(thread);
  });
});

describe('Python', () => {
  it('random.random() and uuid.uuid4() are reproducible', async () => {
    const argv = py('import random, uuid; print(random.random(), uuid.uuid4())');
    const a = await output(supervisor, argv, seeded(99n));
    expect(a).toMatch(/^0\.\d+ [0-9a-f-]{36}\n$/);
    expect(await output(supervisor, argv, seeded(99n))).toBe(a);
    expect(await output(supervisor, argv, seeded(100n))).not.toBe(a);
  });
});

describe('getrandom flags and buffers', () => {
  it('answers as the kernel does: EINVAL for bad flags, EFAULT for a bad buffer, 0 for 0 bytes', async () => {
    const nr = { x86_64: 318, aarch64: 278 }[hostArch()];
    const program = py(`
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(16)
def call(address, length, flags):
    r = libc.syscall(${nr}, ctypes.c_void_p(address), ctypes.c_size_t(length), ctypes.c_uint(flags))
    return r if r >= 0 else -ctypes.get_errno()
address = ctypes.addressof(buf)
print(call(address, 16, 8), call(address, 16, 6), call(1, 16, 0), call(address, 0, 0))
print(call(address, 16, 1), call(address, 16, 2), call(address, 16, 4), call(address, 16, 0))
print(buf.raw.hex())
`);
    const a = await output(supervisor, program, seeded(1n));
    const lines = a.split('\n');
    expect(lines[0]).toBe('-22 -22 -14 0');
    expect(lines[1]).toBe('16 16 16 16');
    expect(await output(supervisor, program, seeded(1n))).toBe(a);
    expect((await output(supervisor, program, seeded(2n))).split('\n')[2]).not.toBe(lines[2]);
  });

  it('answers at most GETRANDOM_MAX bytes a call; callers that loop read the same stream', async () => {
    const nr = { x86_64: 318, aarch64: 278 }[hostArch()];
    const raw = py(`
import ctypes
libc = ctypes.CDLL(None)
libc.syscall.restype = ctypes.c_long
size = 1 << 20
buf = ctypes.create_string_buffer(size)
got = []
total = 0
while total < size:
    n = libc.syscall(${nr}, buf, ctypes.c_size_t(size - total), 0)
    got.append(n); total += n
print(got[0], len(got))
`);
    const [first, calls] = (await output(supervisor, raw, seeded(3n)))
      .trim()
      .split(' ')
      .map(Number);
    expect(first).toBe(GETRANDOM_MAX);
    expect(calls).toBe(Math.ceil((1 << 20) / GETRANDOM_MAX));
    // Python's os.urandom loops over short reads: one MiB, the same bytes as 64 calls of 16 KiB.
    const loop = (code: string) => py(`import hashlib, os\n${code}`);
    const whole = await output(
      supervisor,
      loop('print(hashlib.sha256(os.urandom(1 << 20)).hexdigest())'),
      seeded(3n),
    );
    const pieces = await output(
      supervisor,
      loop(
        `print(hashlib.sha256(b''.join(os.urandom(${GETRANDOM_MAX}) for _ in range(${(1 << 20) / GETRANDOM_MAX}))).hexdigest())`,
      ),
      seeded(3n),
    );
    expect(pieces).toBe(whole);
  });
});

describe('opens of the random devices', () => {
  const read16 = (open: string) =>
    py(`
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = ${open}
assert fd >= 0, ctypes.get_errno()
print(os.read(fd, 16).hex())
`);

  it('every path form reads the same first stream', async (context) => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-random-'));
    context.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    symlinkSync('/dev/urandom', join(dir, 'rnd'));
    symlinkSync('/dev', join(dir, 'd'));
    const options = { policy: { randomSeed: 77n }, fsRead: [...DEFAULT_READ, '/dev', dir] };
    const forms: Record<string, string> = {
      absolute: "os.open('/dev/urandom', os.O_RDONLY)",
      random: "os.open('/dev/random', os.O_RDONLY)",
      lexical: "os.open('/dev/../dev/./urandom', os.O_RDONLY)",
      cwd: "(os.chdir('/dev'), os.open('urandom', os.O_RDONLY))[1]",
      dirfd:
        "os.open('urandom', os.O_RDONLY, dir_fd=os.open('/dev', os.O_RDONLY | os.O_DIRECTORY))",
      symlink: `os.open('${dir}/rnd', os.O_RDONLY)`,
      directorySymlink: `os.open('${dir}/d/urandom', os.O_RDONLY)`,
      libcOpen: "libc.open(b'/dev/urandom', 0)",
      openat2: `libc.syscall(437, -100, b'/dev/urandom', ctypes.create_string_buffer(24), ctypes.c_size_t(24))`,
    };
    if (hostArch() === 'x86_64') forms.open = "libc.syscall(2, b'/dev/urandom', 0)";
    const results: Record<string, string> = {};
    for (const [name, open] of Object.entries(forms)) {
      results[name] = await output(supervisor, read16(open), options);
    }
    const expected = results.absolute;
    expect(expected).toMatch(/^[0-9a-f]{32}\n$/);
    for (const name of Object.keys(forms)) expect(results[name], name).toBe(expected);
    expect(await output(supervisor, read16(forms.absolute!), seeded(78n))).not.toBe(expected);
  });

  it('the random sysctl files, by any path: a UUID per open, one boot id, read-only', async (context) => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-random-'));
    context.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    symlinkSync('/proc/sys/kernel/random/uuid', join(dir, 'id'));
    symlinkSync('/proc/sys/kernel/random', join(dir, 'r'));
    const program = py(`
import ctypes, fcntl, os
libc = ctypes.CDLL(None, use_errno=True)
def read(path, flags=os.O_RDONLY):
    fd = libc.open(path.encode(), flags)  # not os.open: it adds O_CLOEXEC
    assert fd >= 0, ctypes.get_errno()
    text = os.read(fd, 100).decode()
    more = os.read(fd, 100)
    cloexec = fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    os.close(fd)
    return text.strip(), more, cloexec
print(read('/proc/sys/kernel/random/uuid'))
print(read('${dir}/id', os.O_RDONLY | os.O_CLOEXEC))
print(read('${dir}/r/uuid'))
print(read('/proc/self/../sys/kernel/random/boot_id'))
print(read('${dir}/r/boot_id'))
try:
    os.open('/proc/sys/kernel/random/uuid', os.O_RDWR)
except OSError as e:
    print('rdwr', e.errno)
`);
    const options = { policy: { randomSeed: 5n }, fsRead: [...DEFAULT_READ, dir] };
    const first = await output(supervisor, program, options);
    const lines = first.trim().split('\n');
    const rows = lines.slice(0, 5).map((line) => /^\('([0-9a-f-]{36})', b'', (\d)\)$/.exec(line));
    for (const row of rows) expect(row, first).not.toBeNull();
    const [uuid1, uuid2, uuid3, boot1, boot2] = rows.map((row) => row![1]);
    expect(new Set([uuid1, uuid2, uuid3]).size).toBe(3);
    expect(boot2).toBe(boot1);
    expect(rows.map((row) => row![2])).toEqual(['0', '1', '0', '0', '0']);
    // Not answered: the kernel refuses to open a read-only sysctl file for writing.
    expect(lines[5]).toMatch(/^rdwr \d+$/);
    expect(await output(supervisor, program, options)).toBe(first);
  });

  it('is an endless pipe: fstat, lseek, close-on-exec and O_NONBLOCK as asked, big reads', async () => {
    const program = py(`
import ctypes, errno, fcntl, os, stat
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.open(b'/dev/urandom', 0)
print('fifo', stat.S_ISFIFO(os.fstat(fd).st_mode))
try:
    os.lseek(fd, 0, os.SEEK_SET)
except OSError as e:
    print('lseek', errno.errorcode[e.errno])
print('cloexec', fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, fcntl.fcntl(os.open('/dev/urandom', os.O_RDONLY), fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
nb = libc.open(b'/dev/urandom', os.O_NONBLOCK)
print('nonblock', bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK), bool(fcntl.fcntl(nb, fcntl.F_GETFL) & os.O_NONBLOCK))
print('read', len(os.read(fd, 65536)))
total = 0
while total < 3 * 1024 * 1024:
    total += len(os.read(fd, 1 << 20))
print('total', total >= 3 * 1024 * 1024)
`);
    expect(await output(supervisor, program, seeded(4n))).toBe(
      'fifo True\nlseek ESPIPE\ncloexec 0 1\nnonblock False True\nread 65536\ntotal True\n',
    );
  });

  it('O_RDWR reads the stream through a socket; write-only opens reach the device', async () => {
    const program = py(`
import os, stat
rw = os.open('/dev/urandom', os.O_RDWR)
print('socket', stat.S_ISSOCK(os.fstat(rw).st_mode), os.write(rw, b'abc'), len(os.read(rw, 16)))
wo = os.open('/dev/urandom', os.O_WRONLY)
print('device', stat.S_ISCHR(os.fstat(wo).st_mode), os.write(wo, b'abc'))
`);
    const options = {
      policy: { randomSeed: 4n },
      fsWrite: ['/dev/urandom'],
    };
    expect(await output(supervisor, program, options)).toBe('socket True 3 16\ndevice True 3\n');
  });

  it('each open has its own stream, unshifted by getrandom or by reads of other opens', async () => {
    const second = (between: string) =>
      py(`
import os
first = os.open('/dev/urandom', os.O_RDONLY)
${between}
print(os.read(os.open('/dev/urandom', os.O_RDONLY), 16).hex())
`);
    const plain = await output(supervisor, second('pass'), seeded(12n));
    expect(await output(supervisor, second('os.urandom(1000)'), seeded(12n))).toBe(plain);
    expect(await output(supervisor, second('os.read(first, 1000)'), seeded(12n))).toBe(plain);
    const firstBytes = await output(
      supervisor,
      py("import os; print(os.read(os.open('/dev/urandom', os.O_RDONLY), 16).hex())"),
      seeded(12n),
    );
    expect(firstBytes).not.toBe(plain);
  });

  describe('openat2 with RESOLVE_* flags, decided as the kernel resolves', () => {
    // openat2(dirfd, path, &{flags, 0, resolve}, size): the fd, or -errno.
    const openat2 = `
import ctypes, errno, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def openat2(dirfd, path, flags, resolve, size=24, tail=b''):
    how = ctypes.create_string_buffer(struct.pack('QQQ', flags, 0, resolve) + tail, size)
    fd = libc.syscall(437, dirfd, path.encode(), how, ctypes.c_size_t(size))
    return fd if fd >= 0 else -ctypes.get_errno()
def read16(fd):
    assert fd >= 0, errno.errorcode.get(-fd, fd)
    return os.read(fd, 16).hex()
`;
    const program = (body: string) => py(`${openat2}\n${body}`);

    it('reads the seeded stream: RESOLVE_NO_MAGICLINKS, RESOLVE_BENEATH from /dev, and others', async (context) => {
      const dir = mkdtempSync(join(tmpdir(), 'sandlock-random-'));
      context.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      symlinkSync('/dev/urandom', join(dir, 'rnd'));
      const options = { policy: { randomSeed: 77n }, fsRead: [...DEFAULT_READ, '/dev', dir] };
      const devDir = "os.open('/dev', os.O_RDONLY | os.O_DIRECTORY)";
      const forms: Record<string, string> = {
        noMagiclinks: `openat2(-100, '/dev/urandom', os.O_RDONLY, ${RESOLVE_NO_MAGICLINKS})`,
        beneath: `openat2(${devDir}, 'urandom', os.O_RDONLY, ${RESOLVE_BENEATH})`,
        cwdBeneath: `(os.chdir('/dev'), openat2(-100, 'random', 0, ${RESOLVE_BENEATH}))[1]`,
        inRoot: `openat2(os.open('/', os.O_PATH), '/dev/urandom', 0, ${RESOLVE_IN_ROOT})`,
        noXdev: `openat2(${devDir}, 'urandom', os.O_RDONLY, ${RESOLVE_NO_XDEV})`,
        symlink: `openat2(-100, '${dir}/rnd', os.O_RDONLY, ${RESOLVE_NO_MAGICLINKS})`,
        biggerHow: `openat2(-100, '/dev/urandom', 0, ${RESOLVE_NO_MAGICLINKS}, 32)`,
      };
      const plain = await output(
        supervisor,
        py("import os; print(os.read(os.open('/dev/urandom', os.O_RDONLY), 16).hex())"),
        options,
      );
      expect(plain).toMatch(/^[0-9a-f]{32}\n$/);
      for (const [name, open] of Object.entries(forms)) {
        expect(await output(supervisor, program(`print(read16(${open}))`), options), name).toBe(
          plain,
        );
      }
      const noMagic = program(`print(read16(${forms.noMagiclinks}))`);
      expect(await output(supervisor, noMagic, seeded(78n))).not.toBe(plain);
      // The flags are the caller's (the fd is the pipe's read end).
      const flags = program(`
import fcntl, stat
fd = openat2(-100, '/dev/urandom', os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, ${RESOLVE_NO_MAGICLINKS})
print(stat.S_ISFIFO(os.fstat(fd).st_mode), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK), fcntl.fcntl(fd, fcntl.F_GETFD))
`);
      expect(await output(supervisor, flags, options)).toBe('True True 1\n');
    });

    it('fails as the kernel says: EXDEV, ELOOP, E2BIG, EINVAL, ENOENT', async (context) => {
      const dir = mkdtempSync(join(tmpdir(), 'sandlock-random-'));
      context.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      symlinkSync('/dev/urandom', join(dir, 'rnd'));
      const options = { policy: { randomSeed: 3n }, fsRead: [...DEFAULT_READ, '/dev', dir] };
      const checks = program(`
tmp = os.open('/tmp', os.O_PATH | os.O_DIRECTORY)
name = lambda r: errno.errorcode.get(-r, r) if r < 0 else 'fd'
print('beneath', name(openat2(tmp, '../dev/urandom', 0, ${RESOLVE_BENEATH})))
print('absolute', name(openat2(tmp, '/dev/urandom', 0, ${RESOLVE_BENEATH})))
print('nosymlinks', name(openat2(-100, '${dir}/rnd', 0, ${RESOLVE_NO_SYMLINKS})))
print('nofollow', name(openat2(-100, '${dir}/rnd', os.O_NOFOLLOW, ${RESOLVE_NO_MAGICLINKS})))
print('magiclink', name(openat2(-100, f'/proc/self/fd/{os.open("/dev/urandom", 0)}', 0, ${RESOLVE_NO_MAGICLINKS})))
print('xdev', name(openat2(-100, '/dev/urandom', 0, ${RESOLVE_NO_XDEV})))
print('e2big', name(openat2(-100, '/dev/urandom', 0, ${RESOLVE_NO_MAGICLINKS}, 32, b'\\1')))
print('e2big-plain', name(openat2(-100, '/dev/urandom', 0, 0, 32, b'\\1')))
print('einval', name(openat2(-100, '/dev/urandom', 0, ${RESOLVE_BENEATH | RESOLVE_IN_ROOT})))
print('enoent', name(openat2(-100, '/dev/nonexistent', 0, ${RESOLVE_NO_MAGICLINKS})))
`);
      const out = await output(supervisor, checks, options);
      const lines = Object.fromEntries(
        out
          .trim()
          .split('\n')
          .map((line) => line.split(' ')),
      );
      // The kernel's answers for the same calls, outside any sandbox, where
      // /dev may be on the root's mount (no EXDEV for RESOLVE_NO_XDEV then).
      expect(lines).toEqual({
        beneath: 'EXDEV',
        absolute: 'EXDEV',
        nosymlinks: 'ELOOP',
        nofollow: 'ELOOP',
        magiclink: 'ELOOP',
        xdev: lines.xdev === 'fd' ? 'fd' : 'EXDEV',
        e2big: 'E2BIG',
        'e2big-plain': 'E2BIG',
        einval: 'EINVAL',
        enoent: 'ENOENT',
      });
    });

    it('/proc/sys/kernel/random/boot_id and uuid are the seeded ones', async () => {
      const ids = program(`
def text(fd):
    assert fd >= 0, errno.errorcode.get(-fd, fd)
    return os.read(fd, 100).decode().strip()
print(text(os.open('/proc/sys/kernel/random/boot_id', os.O_RDONLY)))
print(text(openat2(-100, '/proc/sys/kernel/random/boot_id', 0, ${RESOLVE_NO_MAGICLINKS})))
print(text(openat2(os.open('/proc/sys/kernel', os.O_PATH), 'random/boot_id', 0, ${RESOLVE_BENEATH})))
print(text(openat2(-100, '/proc/self/../sys/kernel/random/uuid', 0, ${RESOLVE_NO_MAGICLINKS})))
print(text(openat2(-100, '/proc/sys/kernel/random/uuid', 0, ${RESOLVE_NO_MAGICLINKS})))
print(errno.errorcode[-openat2(-100, '/proc/sys/kernel/random/uuid', os.O_RDWR, ${RESOLVE_NO_MAGICLINKS})])
`);
      const first = await output(supervisor, ids, seeded(5n));
      const [boot1, boot2, boot3, uuid1, uuid2, rdwr] = first.trim().split('\n');
      expect(boot1).toMatch(/^[0-9a-f-]{36}$/);
      expect(boot2).toBe(boot1);
      expect(boot3).toBe(boot1);
      expect(boot1).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      expect(uuid1).toMatch(/^[0-9a-f-]{36}$/);
      expect(uuid2).not.toBe(uuid1);
      expect(rdwr).toBe('EACCES');
      expect(await output(supervisor, ids, seeded(5n))).toBe(first);
      expect((await output(supervisor, ids, seeded(6n))).split('\n')[0]).not.toBe(boot1);
    });
  });
});
