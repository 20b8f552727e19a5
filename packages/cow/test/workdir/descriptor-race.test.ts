// A metadata call on a descriptor outside the workdir, under a supervisor
// that is not root (no fs-meta) and a policy that may write elsewhere: cow
// makes it on the duplicate it checked, never lets it through by number.
// A thread of the sandbox swaps descriptor N between a file outside the
// workdir and a real file of the workdir (a read the kernel opened) while
// another calls an f* metadata call on N many times; let through, the
// kernel would look N up again and sometimes change the real file.
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { scriptUnder } from '../support/run-child.js';
import { cleanup, PYTHON, scratch } from './helpers.js';

const UID = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('descriptor-race.test skipped: running a supervisor as uid 1000 needs root');
const run = fileURLToPath(new URL('../support/workdir-run.mjs', import.meta.url));
const AS_USER = ['setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--'];
const ROUNDS = 300;

const root = scratch('cow-fd-race-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

/** name → the Python call on descriptor N (0 or -1). */
const CALLS: Record<string, string> = {
  fchmod: 'libc.fchmod(N, 0o666)',
  'utimensat NULL (futimens)': 'libc.syscall(UTIMENSAT, N, None, times, 0)',
  fsetxattr: 'libc.fsetxattr(N, b"user.race", b"x", 1, 0)',
};

const SCRIPT = `
import ctypes, errno, json, os, platform, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
sys.setswitchinterval(1e-5)
UTIMENSAT = 280 if platform.machine() == 'x86_64' else 88
outside, real, rounds, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
fdo, fdr = os.open(outside, os.O_RDONLY), os.open(real, os.O_RDONLY)
N = 100
times = (ctypes.c_long * 4)(1, 0, 2, 0)
for name, call in calls.items():
    code = compile(call, name, 'eval')
    os.dup2(fdo, N)
    stop = False
    def swap():
        while not stop:
            libc.dup2(fdr, N)
            libc.dup2(fdo, N)
    swapper = threading.Thread(target=swap)
    swapper.start()
    seen = {}
    for i in range(rounds):
        answer = 'ok' if eval(code) == 0 else errno.errorcode[ctypes.get_errno()]
        seen[answer] = seen.get(answer, 0) + 1
    stop = True
    swapper.join()
    print('%s|%s' % (name, ','.join(sorted(seen))))
`;

/** A file's mode, times and user xattrs. */
function metadata(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${(st.mode & 0o7777n).toString(8)} ${st.mtimeNs}`;
}

describe.skipIf(!asRoot)('a descriptor swapped by another thread (supervisor of uid 1000)', () => {
  it('never changes the real file of the workdir', async () => {
    const workdir = join(root, 'w');
    const outside = join(root, 'out');
    for (const dir of [workdir, outside]) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'f'), 'x\n');
      chmodSync(join(dir, 'f'), 0o644);
      for (const path of [dir, join(dir, 'f')]) chownSync(path, UID, UID);
    }
    const real = join(workdir, 'f');
    const before = metadata(real);
    const config = {
      workdir,
      storage: join(root, 'store'),
      fsWrite: [outside],
      onExit: 'abort',
      argv: [PYTHON, '-c', SCRIPT, join(outside, 'f'), real, String(ROUNDS), JSON.stringify(CALLS)],
    };
    mkdirSync(config.storage);
    chownSync(config.storage, UID, UID);
    const end = await scriptUnder(AS_USER, run, [JSON.stringify(config)]);
    expect(end.stderr).toBe('');
    const result = JSON.parse(end.stdout) as { exitCode: number; stdout: string; uid: number };
    expect(result.uid).toBe(UID);
    expect(result.exitCode).toBe(0);
    // Each call was made (on the file outside, or on the layer's copy).
    expect(result.stdout.trim().split('\n').sort()).toEqual(
      Object.keys(CALLS)
        .sort()
        .map((name) => `${name}|ok`),
    );
    expect(metadata(real)).toBe(before);
    const xattr = Buffer.alloc(8);
    expect(
      (await import('@sandlock/sys')).trySyscall(
        'getxattr',
        Buffer.from(`${real}\0`),
        Buffer.from('user.race\0'),
        xattr,
        8,
      ),
    ).toBeLessThan(0);
  }, 180_000);
});
