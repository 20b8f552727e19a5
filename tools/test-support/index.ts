// What the packages' kernel tests share: collecting a child's output,
// polling for a condition, and the system paths a program needs. Tests import
// it by relative path (it is not a package and is never built).
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { syscallNumber } from '@sandlock/sys';

export interface Finished<Output = string> {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Output;
  stderr: Output;
}

/** Collects a child's stdout and stderr as bytes; resolves when it has closed them and exited. */
export function collectBytes(child: ChildProcess): Promise<Finished<Buffer>> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }),
    );
  });
}

/** {@link collectBytes}, as UTF-8 text. */
export async function collect(child: ChildProcess): Promise<Finished> {
  const finished = await collectBytes(child);
  return { ...finished, stdout: finished.stdout.toString(), stderr: finished.stderr.toString() };
}

/**
 * Polls `condition` every 10 ms for up to `ms`; false if it never held. The
 * default only catches a hang: a loaded machine makes the wait longer, never
 * the test fail.
 */
export async function eventually(condition: () => boolean, ms = 30_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Whether a process exists and is not a zombie. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_DIRS: readonly string[] = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter(
  (path) => existsSync(path),
);

/** The system's Python (not a version manager's shim, which reads the home directory). */
export const PYTHON = '/usr/bin/python3';

/**
 * Python lines that start a thread flipping a path buffer `buf` between
 * `benign` and `hidden` (Python bytes expressions) until `stop = True`; the
 * caller then passes `buf` to a libc call many times (the race a supervisor
 * that checks a path and lets the kernel read it again would lose), and
 * joins `flipper`. The GIL passes between the threads often: more races.
 */
export function pathFlipper(benign: string, hidden: string, size = 256): string {
  return `import ctypes, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
sys.setswitchinterval(1e-5)
buf = ctypes.create_string_buffer(${size})
buf.value = ${benign}
stop = False
def flip():
    while not stop:
        buf.value = ${hidden}
        buf.value = ${benign}
flipper = threading.Thread(target=flip)
flipper.start()
`;
}

/**
 * Python: `read_dirents(fd, size=65536)`, the names getdents64 returns for
 * `fd` from its offset to the end, in the kernel's order, with `size`-byte
 * calls; `GETDENTS64` is the syscall's number on this machine.
 */
export const PY_READ_DIRENTS = `
import ctypes
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
GETDENTS64 = ${syscallNumber('getdents64')}
def read_dirents(fd, size=65536):
    buf = ctypes.create_string_buffer(size)
    names = []
    while True:
        n = _libc.syscall(GETDENTS64, fd, buf, size)
        if n <= 0:
            return names
        at = 0
        while at < n:
            reclen = int.from_bytes(buf.raw[at+16:at+18], 'little')
            names.append(buf.raw[at+19:at+reclen].split(b'\\0')[0].decode())
            at += reclen
`;

/** Python: `attempt(fn)` calls `fn` and returns 'ok', or the errno name of the OSError it raised. */
export const PY_ATTEMPT = `import ctypes, errno, os, sys, threading
def attempt(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
`;
