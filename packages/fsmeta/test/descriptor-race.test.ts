// A descriptor call is decided and made on the duplicate fs-meta checked,
// never let through by number: a thread of the sandbox swaps descriptor N
// between a writable file and a file it may only read (dup2) while another
// calls an f* metadata call on N many times. Let through after the check,
// the kernel would look N up again and sometimes change the read-only file.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AT_EMPTY_PATH, hasSyscall, syscallNumber, trySyscall } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import { Sandbox } from '../../sandlock/src/index.js';

const asRoot = process.getuid?.() === 0;
const hasPython = existsSync(PYTHON);
if (!asRoot)
  console.warn('descriptor-race.test: skipped: fs-meta is on for a root supervisor only');
if (!hasPython) console.warn(`descriptor-race.test: skipped: ${PYTHON} is missing`);

const ROUNDS = 300;

/** name (the syscall's first) → the Python call on descriptor N (its result: 0 or -1). */
const CALLS: Record<string, string> = {
  fchmod: 'libc.fchmod(N, 0o666)',
  'utimensat NULL (futimens)': 'libc.syscall(nr["utimensat"], N, None, times, 0)',
  'utimensat AT_EMPTY_PATH': 'libc.syscall(nr["utimensat"], N, b"", times, AT_EMPTY_PATH)',
  'fchmodat2 AT_EMPTY_PATH': 'libc.syscall(nr["fchmodat2"], N, b"", 0o666, AT_EMPTY_PATH)',
  fsetxattr: 'libc.fsetxattr(N, b"user.race", b"x", 1, 0)',
  fremovexattr: 'libc.fremovexattr(N, b"user.keep")',
  'setxattrat AT_EMPTY_PATH':
    'libc.syscall(nr["setxattrat"], N, b"", AT_EMPTY_PATH, b"user.race", args, ctypes.c_size_t(16))',
  fchown: 'libc.fchown(N, -1, 0)',
  'fchownat AT_EMPTY_PATH': 'libc.fchownat(N, b"", -1, 0, AT_EMPTY_PATH)',
  'removexattrat AT_EMPTY_PATH':
    'libc.syscall(nr["removexattrat"], N, b"", AT_EMPTY_PATH, b"user.keep")',
};

const SCRIPT = `
import ctypes, errno, json, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
sys.setswitchinterval(1e-5)
w, r, rounds, nr, AT_EMPTY_PATH = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
calls = json.loads(sys.argv[6])
fdw, fdr = os.open(w, os.O_RDONLY), os.open(r, os.O_RDONLY)
N = 100
times = (ctypes.c_long * 4)(1, 0, 2, 0)
value = ctypes.create_string_buffer(b"x")
args = (ctypes.c_uint64 * 2)(ctypes.addressof(value), 1)
for name, call in calls.items():
    code = compile(call, name, 'eval')
    os.dup2(fdw, N)
    stop = False
    def swap():
        while not stop:
            libc.dup2(fdr, N)
            libc.dup2(fdw, N)
    swapper = threading.Thread(target=swap)
    swapper.start()
    seen = {}
    for i in range(rounds):
        answer = 'ok' if eval(code) == 0 else errno.errorcode[ctypes.get_errno()]
        seen[answer] = seen.get(answer, 0) + 1
    refused = seen.pop('EACCES', 0)
    done = sum(seen.values())
    stop = True
    swapper.join()
    print('%s|%d|%d|%s' % (name, done, refused, ','.join(sorted(seen))))
`;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A file's mode, group, times and user xattrs (the access time left out when the file is read). */
function metadata(path: string, withAtime = true): string {
  const st = statSync(path, { bigint: true });
  const attrs = ['user.keep', 'user.race'].filter(
    (name) =>
      trySyscall(
        'getxattr',
        Buffer.from(`${path}\0`),
        Buffer.from(`${name}\0`),
        Buffer.alloc(8),
        8,
      ) >= 0,
  );
  const atime = withAtime ? st.atimeNs : '';
  return `${(st.mode & 0o7777n).toString(8)} ${st.gid} ${atime} ${st.mtimeNs} ${attrs}`;
}

describe.skipIf(!asRoot || !hasPython)('fs-meta and a descriptor swapped by another thread', () => {
  it('never changes the file the sandbox may only read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-fd-race-'));
    dirs.push(dir);
    for (const side of ['w', 'r']) {
      mkdirSync(join(dir, side));
      writeFileSync(join(dir, side, 'f'), 'x\n');
      chmodSync(join(dir, side, 'f'), 0o644);
    }
    const w = join(dir, 'w', 'f');
    const r = join(dir, 'r', 'f');
    // Another group, which the root sandbox could make its own (chgrp 0).
    chownSync(r, 0, 2000);
    const keep = Buffer.from('1');
    expect(
      trySyscall('setxattr', Buffer.from(`${r}\0`), Buffer.from('user.keep\0'), keep, 1, 0),
    ).toBe(0);
    const before = metadata(r);
    const calls = Object.fromEntries(
      Object.entries(CALLS).filter(([name]) => hasSyscall(name.split(' ')[0]!)),
    );
    const numbers = Object.fromEntries(
      ['utimensat', 'fchmodat2', 'setxattrat', 'removexattrat']
        .filter((name) => hasSyscall(name))
        .map((name) => [name, syscallNumber(name)]),
    );
    const sandbox = Sandbox.builder()
      .fsRead(...SYSTEM_DIRS, join(dir, 'r'))
      .fsWrite(join(dir, 'w'))
      .build();
    const result = await sandbox.run(
      [
        PYTHON,
        '-c',
        SCRIPT,
        w,
        r,
        String(ROUNDS),
        JSON.stringify(numbers),
        String(AT_EMPTY_PATH),
        JSON.stringify(calls),
      ],
      { encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    const lines = String(result.stdout).trim().split('\n');
    expect(lines.map((line) => line.split('|')[0])).toEqual(Object.keys(calls));
    expect(metadata(r)).toBe(before);
    // Not vacuous: each call met both files: refused on the read-only one
    // (EACCES), made on the writable one (or ENODATA once its xattr is gone).
    for (const line of lines) {
      const [name, done, refused] = line.split('|');
      expect({ name, both: Number(done) > 0 && Number(refused) > 0 }).toEqual({ name, both: true });
    }
  }, 300_000);

  it('never changes a real file of a copy-on-write workdir inside a writable tree', async () => {
    // The cow module changes a workdir file's copy and leaves an object
    // outside the workdir to fs-meta: a descriptor swapped in between must
    // not reach the real file (the change belongs in the layer).
    const dir = mkdtempSync(join(tmpdir(), 'sandlock-fd-race-cow-'));
    dirs.push(dir);
    for (const side of ['workdir', 'out']) {
      mkdirSync(join(dir, side));
      writeFileSync(join(dir, side, 'f'), 'x\n');
      chmodSync(join(dir, side, 'f'), 0o644);
    }
    const real = join(dir, 'workdir', 'f');
    // Its access time is the layer's to change (the copy reads it).
    const before = metadata(real, false);
    const calls = {
      fchmod: CALLS.fchmod!,
      'utimensat NULL (futimens)': CALLS['utimensat NULL (futimens)']!,
    };
    const sandbox = Sandbox.builder()
      .fsRead(...SYSTEM_DIRS)
      .fsWrite(dir)
      .workdir(join(dir, 'workdir'))
      .fsStorage(join(dir, 'store'))
      .onExit('abort')
      .build();
    const result = await sandbox.run(
      [
        PYTHON,
        '-c',
        SCRIPT,
        join(dir, 'out', 'f'),
        real,
        String(ROUNDS),
        JSON.stringify({ utimensat: syscallNumber('utimensat') }),
        String(AT_EMPTY_PATH),
        JSON.stringify(calls),
      ],
      { encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    expect(String(result.stdout).trim().split('\n')).toHaveLength(2);
    expect(metadata(real, false)).toBe(before);
  }, 300_000);
});
