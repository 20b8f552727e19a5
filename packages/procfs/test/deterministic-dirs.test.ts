import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { hasSyscall } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PY_READ_DIRENTS } from '../../../tools/test-support/index.js';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  DETERMINISTIC_DIRS_MODULE,
  DETERMINISTIC_DIRS_SYSCALLS,
  type DirEntry,
  HOSTNAME_MODULE,
  packRecords,
  parseDirent64,
  recordLength,
  sortEntries,
} from '../src/index.js';
import { output, PYTHON, SYSTEM_READ } from './helpers.js';

const policy = { deterministicDirs: true };
const LS = '/bin/ls';

/** Names in a scrambled order, including bytes that sort differently from locale order. */
const SCRAMBLED = ['m', 'B', 'a', 'z10', 'z9', '_x', 'Zed', 'é', '-dash', '.hidden', 'a.b', 'a-b'];
const bytewise = (names: readonly string[]) =>
  [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

let supervisor: Supervisor;
let root: string;
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [{ module: HOSTNAME_MODULE }, { module: DETERMINISTIC_DIRS_MODULE }],
  });
  root = mkdtempSync(join(tmpdir(), 'procfs-dirs-'));
});
afterAll(async () => {
  await supervisor?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function makeDir(name: string, entries: readonly string[]): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const entry of entries) writeFileSync(join(dir, entry), '');
  return dir;
}

function entry(name: string, type = 8, ino = 1n): DirEntry {
  return { name: Buffer.from(name), ino, type };
}

describe('records', () => {
  it('sorts bytewise with . and .. first', () => {
    const sorted = sortEntries(['b', '..', 'A', '-', '.', 'a'].map((name) => entry(name)));
    expect(sorted.map((e) => e.name.toString())).toEqual(['.', '..', '-', 'A', 'a', 'b']);
  });

  it('packs whole dirent64 and dirent records, d_off the next index', () => {
    const entries = [entry('.', 4, 7n), entry('..', 4, 2n), entry('name', 8, 99n)];
    expect(recordLength('dirent64', 1)).toBe(24);
    expect(recordLength('dirent64', 5)).toBe(32); // 19 + 5 + 1 = 25 → 32
    expect(recordLength('dirent', 4)).toBe(24); // 18 + 4 + 2 = 24
    expect(recordLength('dirent', 5)).toBe(32);
    const all = packRecords('dirent64', entries, 0, 4096);
    expect(all.next).toBe(3);
    expect(parseDirent64(all.bytes, all.bytes.length)).toEqual(entries);
    expect(all.bytes.readBigInt64LE(8)).toBe(1n);
    // Two records fit in 48 bytes, not three; none in 23.
    expect(packRecords('dirent64', entries, 0, 48).next).toBe(2);
    expect(packRecords('dirent64', entries, 2, 23)).toEqual({ bytes: Buffer.alloc(0), next: 2 });
    const legacy = packRecords('dirent', entries, 2, 4096).bytes;
    expect(legacy.readBigUInt64LE(0)).toBe(99n);
    expect(legacy.readBigInt64LE(8)).toBe(3n);
    expect(legacy.readUInt16LE(16)).toBe(24);
    expect(legacy.subarray(18, 23).toString('latin1')).toBe('name\0');
    expect(legacy[23]).toBe(8); // d_type: the record's last byte
  });

  it('is on only with deterministicDirs: true', () => {
    expect(sessionPolicy({ deterministicDirs: true }).deterministicDirs).toBe(true);
    expect(sessionPolicy({ deterministicDirs: false }).deterministicDirs).toBe(false);
    expect(sessionPolicy({}).deterministicDirs).toBe(false);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({}) })).toEqual([]);
    expect(
      supervisor.notifiedSyscalls({ policy: sessionPolicy({ deterministicDirs: false }) }),
    ).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy(policy) })).toEqual(
      [...DETERMINISTIC_DIRS_SYSCALLS].sort(),
    );
    expect(DETERMINISTIC_DIRS_SYSCALLS).toContain('getdents64');
    expect(DETERMINISTIC_DIRS_SYSCALLS.includes('getdents')).toBe(hasSyscall('getdents'));
  });
});

describe('deterministicDirs', () => {
  it('ls -f and os.listdir list a scrambled directory sorted, . and .. included, the same each run', async () => {
    const dir = makeDir('scrambled', SCRAMBLED);
    const fsRead = [...SYSTEM_READ, dir];
    const expected = ['.', '..', ...bytewise(SCRAMBLED)];
    const ls = async () =>
      (await output(supervisor, [LS, '-f', dir], { policy, fsRead })).split('\n').slice(0, -1);
    expect(await ls()).toEqual(expected);
    expect(await ls()).toEqual(expected);
    const listdir = await output(
      supervisor,
      [PYTHON, '-c', 'import os, sys, json; print(json.dumps(os.listdir(sys.argv[1])))', dir],
      { policy, fsRead },
    );
    expect(JSON.parse(listdir)).toEqual(bytewise(SCRAMBLED));
    // Node's fs.opendir (uv_fs_readdir: no sorting of its own).
    const script =
      'const d = require("fs").opendirSync(process.argv[1]); const n = []; let e; while ((e = d.readSync())) n.push(e.name); d.closeSync(); console.log(JSON.stringify(n))';
    const node = await output(supervisor, [process.execPath, '-e', script, dir], {
      policy,
      fsRead,
    });
    expect(JSON.parse(node)).toEqual(bytewise(SCRAMBLED));
    // Off: the kernel's order, the same names.
    const real = (await output(supervisor, [LS, '-f', dir], { policy: {}, fsRead }))
      .split('\n')
      .slice(0, -1);
    expect(bytewise(real)).toEqual(bytewise(expected));
    expect(real).not.toEqual(expected); // ext4's hash order, tmpfs's newest first
  });

  it('serves 500 long names over several calls (ls -f, os.scandir)', async () => {
    const names = Array.from({ length: 500 }, (_, i) => {
      const key = ((i * 7919) % 500).toString().padStart(3, '0');
      return `${key}-${'x'.repeat(200)}`;
    });
    const dir = makeDir('many', names);
    const fsRead = [...SYSTEM_READ, dir];
    const ls = (await output(supervisor, [LS, '-f', dir], { policy, fsRead }))
      .split('\n')
      .slice(0, -1);
    expect(ls).toEqual(['.', '..', ...bytewise(names)]);
    const script = `
import os, sys, json
with os.scandir(sys.argv[1]) as it:
    print(json.dumps([e.name for e in it]))
`;
    const scanned = await output(supervisor, [PYTHON, '-c', script, dir], { policy, fsRead });
    expect(JSON.parse(scanned)).toEqual(bytewise(names));
  });

  it('rewinds, seeks to a d_off, reuses an fd number, refuses a too small buffer', async () => {
    const a = makeDir('dir-a', ['a3', 'a1', 'a2']);
    const b = makeDir('dir-b', ['b2', 'b9', 'b1', 'b5']);
    const fsRead = [...SYSTEM_READ, a, b];
    const script = `
import ctypes, os, sys, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_getdents64 = {'x86_64': 217, 'aarch64': 61}[os.uname().machine]
def getdents(fd, size):
    buf = ctypes.create_string_buffer(size)
    n = libc.syscall(SYS_getdents64, fd, buf, size)
    if n < 0:
        return -ctypes.get_errno()
    out, at = [], 0
    while at < n:
        off = int.from_bytes(buf.raw[at + 8:at + 16], 'little', signed=True)
        reclen = int.from_bytes(buf.raw[at + 16:at + 18], 'little')
        name = buf.raw[at + 19:at + reclen].split(b'\\0')[0].decode()
        out.append((name, off))
        at += reclen
    return out
def names(records):
    return [name for name, _ in records]
def all_of(fd, size=4096):
    out = []
    while True:
        got = getdents(fd, size)
        if not got:
            return out
        out += names(got)
result = {}
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
result['listdir1'] = os.listdir(fd)
os.lseek(fd, 0, 0)
result['listdir2'] = os.listdir(fd)
os.lseek(fd, 0, 0)
result['small'] = getdents(fd, 10)
first = getdents(fd, 24)
result['first'] = first
result['rest'] = all_of(fd)
result['eof'] = getdents(fd, 10)
os.lseek(fd, 0, 0)
three = getdents(fd, 72)
os.lseek(fd, three[1][1], 0)
result['seek'] = all_of(fd)
# An fd number reused for another directory, after a partial listing.
os.lseek(fd, 0, 0)
getdents(fd, 24)
number = fd
os.close(fd)
fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
result['same_number'] = fd == number
result['reused'] = all_of(fd)
os.close(fd)
# And one seeked before its first read: B from index 3, not A's cache.
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
getdents(fd, 24)
os.close(fd)
fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
os.lseek(fd, 3, 0)
result['seeked_reuse'] = all_of(fd)
print(json.dumps(result))
`;
    const result = JSON.parse(
      await output(supervisor, [PYTHON, '-c', script, a, b], { policy, fsRead }),
    );
    expect(result.listdir1).toEqual(['a1', 'a2', 'a3']);
    expect(result.listdir2).toEqual(['a1', 'a2', 'a3']);
    expect(result.small).toBe(-22); // EINVAL: not even one record fits
    expect(result.first).toEqual([['.', 1]]);
    expect(result.rest).toEqual(['..', 'a1', 'a2', 'a3']);
    expect(result.eof).toEqual([]); // 0 at the end, whatever the size
    expect(result.seek).toEqual(['a1', 'a2', 'a3']);
    expect(result.same_number).toBe(true);
    expect(result.reused).toEqual(['.', '..', 'b1', 'b2', 'b5', 'b9']);
    expect(result.seeked_reuse).toEqual(['b2', 'b5', 'b9']);
  });

  it('answers the legacy getdents in its own linux_dirent format', async (context) => {
    if (!hasSyscall('getdents')) {
      console.log('skipped: no legacy getdents on this architecture');
      context.skip();
      return;
    }
    const dir = makeDir('legacy', ['f2', 'f1']);
    mkdirSync(join(dir, 'sub'));
    const fsRead = [...SYSTEM_READ, dir];
    const script = `
import ctypes, os, sys, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(4096)
n = libc.syscall(78, fd, buf, 4096)
out, at = [], 0
while at < n:
    off = int.from_bytes(buf.raw[at + 8:at + 16], 'little', signed=True)
    reclen = int.from_bytes(buf.raw[at + 16:at + 18], 'little')
    name = buf.raw[at + 18:at + reclen].split(b'\\0')[0].decode()
    out.append([name, off, buf.raw[at + reclen - 1], reclen % 8])
    at += reclen
print(json.dumps([out, libc.syscall(78, fd, buf, 4096)]))
`;
    const [records, eof] = JSON.parse(
      await output(supervisor, [PYTHON, '-c', script, dir], { policy, fsRead }),
    );
    const DT_DIR = 4;
    const DT_REG = 8;
    expect(records).toEqual([
      ['.', 1, DT_DIR, 0],
      ['..', 2, DT_DIR, 0],
      ['f1', 3, DT_REG, 0],
      ['f2', 4, DT_REG, 0],
      ['sub', 5, DT_DIR, 0],
    ]);
    expect(eof).toBe(0);
  });

  it('lists /proc and /proc/self/fd as the caller sees them, sorted', async () => {
    const script = `
import os, json
print(json.dumps([os.listdir('/proc/self/fd'), sorted(set(os.listdir('/proc')) & {'self', 'meminfo', 'cpuinfo'})]))
`;
    const [fds, proc] = JSON.parse(await output(supervisor, [PYTHON, '-c', script], { policy }));
    expect(fds).toEqual(bytewise(fds));
    expect(fds).toEqual(expect.arrayContaining(['0', '1', '2']));
    expect(proc).toEqual(['cpuinfo', 'meminfo', 'self']);
    const ls = (await output(supervisor, [LS, '-f', '/proc'], { policy })).split('\n').slice(0, -1);
    expect(ls.slice(0, 2)).toEqual(['.', '..']);
    expect(ls.slice(2)).toEqual(bytewise(ls.slice(2)));
  });

  it('returns the whole records written before a fault, as the kernel does', async () => {
    const dir = makeDir('fault', ['b', 'a', 'c']);
    const fsRead = [...SYSTEM_READ, dir];
    // Room for one 24-byte record ('.') before a page the caller cannot write.
    const script = `
${PY_READ_DIRENTS}
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_getdents64 = {'x86_64': 217, 'aarch64': 61}[os.uname().machine]
m = mmap.mmap(-1, 2 * mmap.PAGESIZE)
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
assert libc.mprotect(ctypes.c_void_p(base + mmap.PAGESIZE), mmap.PAGESIZE, 0) == 0
edge = ctypes.c_void_p(base + mmap.PAGESIZE - 24)
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
first = libc.syscall(SYS_getdents64, d, edge, 4096)
name = ctypes.string_at(base + mmap.PAGESIZE - 24 + 19).decode()
names = [name] + read_dirents(d, 4096)
print(first, names)
`;
    expect(await output(supervisor, [PYTHON, '-c', script, dir], { policy, fsRead })).toBe(
      "24 ['.', '..', 'a', 'b', 'c']\n",
    );
  });

  it('keeps the kernel errors: ENOTDIR, EBADF, EFAULT', async () => {
    const dir = makeDir('errors', ['x']);
    const fsRead = [...SYSTEM_READ, dir];
    const script = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_getdents64 = {'x86_64': 217, 'aarch64': 61}[os.uname().machine]
buf = ctypes.create_string_buffer(4096)
def call(fd, address=None):
    n = libc.syscall(SYS_getdents64, fd, address if address is not None else buf, 4096)
    return n if n >= 0 else -ctypes.get_errno()
f = os.open(sys.argv[1] + '/x', os.O_RDONLY)
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
p = os.open(sys.argv[1], os.O_PATH)
print(call(f), call(999), call(p), call(d, ctypes.c_void_p(8)), call(d) > 0)
`;
    expect(await output(supervisor, [PYTHON, '-c', script, dir], { policy, fsRead })).toBe(
      '-20 -9 -9 -14 True\n',
    );
  });
});
