// A metadata call by path whose path lies outside the workdir, under a
// supervisor that is not root (no fs-meta) and a policy that may write
// elsewhere: cow makes the change on the object it pinned, never lets the
// call through (the kernel would read the path again and walk it anew).
// A thread of the sandbox swaps, while another makes each call N times:
// the path string between a file outside and a real file of the workdir
// (same length), or a symlink outside between the two. Let through, the
// call sometimes changed the real file (its ctime tells any change, a
// chown to the same ids included). Also the calls that no race is needed
// for: the *at calls with AT_EMPTY_PATH and a path, setxattrat and
// removexattrat (Linux 6.13), futimesat of a descriptor.
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasSyscall, trySyscall } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { scriptUnder } from '../support/run-child.js';
import { cleanup, PYTHON, scratch } from './helpers.js';

const UID = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot) console.log('path-race.test skipped: running a supervisor as uid 1000 needs root');
const run = fileURLToPath(new URL('../support/workdir-run.mjs', import.meta.url));
const AS_USER = ['setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--'];
const ROUNDS = 150;

const root = scratch('cow-path-race-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

/** Python: numbers and helpers of both architectures. */
const PRELUDE = `
import ctypes, errno, json, os, platform, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
X86 = platform.machine() == 'x86_64'
NR = dict(utimensat=280 if X86 else 88, fchmodat2=452, fchownat=260 if X86 else 54,
          setxattrat=463, removexattrat=466, futimesat=261)
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
class XattrArgs(ctypes.Structure):
    _fields_ = [('value', ctypes.c_uint64), ('size', ctypes.c_uint32), ('flags', ctypes.c_uint32)]
value = ctypes.create_string_buffer(b'x')
xargs = XattrArgs(ctypes.addressof(value), 1, 0)
times = (ctypes.c_long * 4)(1, 0, 2, 0)
def outcome(result):
    return 'ok' if result >= 0 else errno.errorcode[ctypes.get_errno()]
`;

/** name → the call on path P (a ctypes char buffer). */
const RACED: Record<string, string> = {
  chmod: 'libc.chmod(P, 0o600)',
  fchmodat2: 'libc.syscall(NR["fchmodat2"], AT_FDCWD, P, 0o600, 0)',
  chown: 'libc.chown(P, UID, UID)',
  fchownat: 'libc.syscall(NR["fchownat"], AT_FDCWD, P, UID, UID, 0)',
  utimensat: 'libc.syscall(NR["utimensat"], AT_FDCWD, P, times, 0)',
  setxattr: 'libc.setxattr(P, b"user.race", b"x", 1, 0)',
  setxattrat:
    'libc.syscall(NR["setxattrat"], AT_FDCWD, P, 0, b"user.race", ctypes.byref(xargs), ctypes.c_size_t(16))',
  // Landlock mediates truncate: let through, the kernel refuses it in the workdir.
  truncate: 'libc.truncate(P, ctypes.c_long(0))',
};

const RACE = `${PRELUDE}
sys.setswitchinterval(1e-5)
UID = os.getuid()
outside, real, link, rounds, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
assert len(outside) == len(real)
def strings():
    P = ctypes.create_string_buffer(outside.encode())
    a, b = outside.encode(), real.encode()
    def swap():
        while not stop:
            ctypes.memmove(P, b, len(b))
            ctypes.memmove(P, a, len(a))
    return P, swap
def symlinks():
    P = ctypes.create_string_buffer(link.encode())
    here = os.path.dirname(link)
    targets = [os.path.relpath(real, here), os.path.relpath(outside, here)]
    if not os.path.lexists(link):
        os.symlink(targets[1], link)
    def swap():
        n = 0
        while not stop:
            for target in targets:
                n += 1
                tmp = '%s.%d' % (link, n)
                os.symlink(target, tmp)
                os.rename(tmp, link)
    return P, swap
for how, make in (('string', strings), ('symlink', symlinks)):
    for name, call in calls.items():
        code = compile(call, name, 'eval')
        stop = False
        P, swap = make()
        swapper = threading.Thread(target=swap)
        swapper.start()
        seen = {}
        for i in range(rounds):
            answer = outcome(eval(code))
            seen[answer] = seen.get(answer, 0) + 1
        stop = True
        swapper.join()
        print('%s %s|%s' % (how, name, ','.join(sorted(seen))))
`;

/** A file's mode, times, size and user xattrs (ctime: any metadata change). */
function metadata(path: string): string {
  const st = statSync(path, { bigint: true });
  const list = Buffer.alloc(256);
  const length = trySyscall('listxattr', Buffer.from(`${path}\0`), list, list.length);
  return `${(st.mode & 0o7777n).toString(8)} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${list.toString('latin1', 0, Math.max(0, length))}`;
}

/** The workdir `wrk` and the writable `out` (names of one length), each with `f`, owned by UID. */
function trees(): { workdir: string; outside: string; storage: string } {
  const base = join(root, String(Math.random()).slice(2, 8));
  const workdir = join(base, 'wrk');
  const outside = join(base, 'out');
  for (const dir of [base, workdir, outside]) mkdirSync(dir);
  for (const dir of [workdir, outside]) {
    writeFileSync(join(dir, 'f'), 'content\n');
    chmodSync(join(dir, 'f'), 0o644);
    for (const path of [dir, join(dir, 'f')]) chownSync(path, UID, UID);
  }
  chmodSync(base, 0o755);
  const storage = join(base, 'store');
  mkdirSync(storage);
  chownSync(storage, UID, UID);
  return { workdir, outside, storage };
}

async function runAsUser(
  dirs: { workdir: string; outside: string; storage: string },
  argv: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const config = {
    workdir: dirs.workdir,
    storage: dirs.storage,
    fsWrite: [dirs.outside],
    onExit: 'abort',
    argv,
  };
  const end = await scriptUnder(AS_USER, run, [JSON.stringify(config)]);
  expect(end.stderr).toBe('');
  const result = JSON.parse(end.stdout) as {
    exitCode: number;
    stdout: string;
    stderr: string;
    uid: number;
  };
  expect(result.uid).toBe(UID);
  return result;
}

describe.skipIf(!asRoot)('metadata calls by path, supervisor of uid 1000', () => {
  it('never change the real file of the workdir while a thread swaps the path', async () => {
    const dirs = trees();
    const real = join(dirs.workdir, 'f');
    const before = metadata(real);
    const calls = Object.fromEntries(
      Object.entries(RACED).filter(([name]) => name !== 'setxattrat' || hasSyscall('setxattrat')),
    );
    const result = await runAsUser(dirs, [
      PYTHON,
      '-c',
      RACE,
      join(dirs.outside, 'f'),
      real,
      join(dirs.outside, 'l'),
      String(ROUNDS),
      JSON.stringify(calls),
    ]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(2 * Object.keys(calls).length);
    for (const line of lines) {
      const [label, answers] = line.split('|') as [string, string];
      // Every call was made on the file outside or on the layer's copy;
      // truncate of the real file (the swapped string) is Landlock's EACCES.
      const allowed = label.endsWith('truncate') ? ['EACCES', 'ok'] : ['ok'];
      expect(answers.split(','), label).toContain('ok');
      for (const answer of answers.split(',')) expect(allowed, label).toContain(answer);
    }
    expect(metadata(real)).toBe(before);
    expect(readFileSync(real, 'utf8')).toBe('content\n');
  }, 300_000);

  it('change a workdir file in the layer through the calls that need no race', async () => {
    const dirs = trees();
    const real = join(dirs.workdir, 'f');
    const before = metadata(real);
    const program = `${PRELUDE}
UID = os.getuid()
def show(label, result):
    st = os.stat('f')
    print(label, outcome(result), '%o' % (st.st_mode & 0o7777), st.st_mtime_ns, os.listxattr('f'))
show('fchmodat2 empty-path flag', libc.syscall(NR['fchmodat2'], AT_FDCWD, b'f', 0o600, AT_EMPTY_PATH))
show('utimensat empty-path flag', libc.syscall(NR['utimensat'], AT_FDCWD, b'f', times, AT_EMPTY_PATH))
show('fchownat empty-path flag', libc.syscall(NR['fchownat'], AT_FDCWD, b'f', UID, UID, AT_EMPTY_PATH))
if ${hasSyscall('setxattrat') ? 'True' : 'False'}:
    show('setxattrat', libc.syscall(NR['setxattrat'], AT_FDCWD, b'f', 0, b'user.a', ctypes.byref(xargs), ctypes.c_size_t(16)))
    show('removexattrat', libc.syscall(NR['removexattrat'], AT_FDCWD, b'f', 0, b'user.a'))
    show('setxattrat bad flag', libc.syscall(NR['setxattrat'], AT_FDCWD, b'f', 0x8000, b'user.a', ctypes.byref(xargs), ctypes.c_size_t(16)))
if X86:
    fd = os.open('f', os.O_RDONLY)
    tv = (ctypes.c_long * 4)(3, 0, 4, 0)
    show('futimesat NULL', libc.syscall(NR['futimesat'], fd, None, tv))
show('chmod empty', libc.chmod(b'', 0o600))
`;
    const result = await runAsUser(dirs, [PYTHON, '-c', program]);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    // Before the utimensat, the mtime is the real file's.
    expect(lines.shift()).toMatch(/^fchmodat2 empty-path flag ok 600 \d+ \[\]$/);
    const expected = [
      'utimensat empty-path flag ok 600 2000000000 []',
      'fchownat empty-path flag ok 600 2000000000 []',
    ];
    if (hasSyscall('setxattrat')) {
      expected.push(
        "setxattrat ok 600 2000000000 ['user.a']",
        'removexattrat ok 600 2000000000 []',
        'setxattrat bad flag EINVAL 600 2000000000 []',
      );
    }
    const x86 = process.arch === 'x64';
    if (x86) expected.push('futimesat NULL ok 600 4000000000 []');
    expected.push(`chmod empty ENOENT 600 ${x86 ? 4 : 2}000000000 []`);
    expect(lines).toEqual(expected);
    expect(result.exitCode).toBe(0);
    expect(metadata(real)).toBe(before);
  }, 120_000);
});
