import type { LibraryHandle } from 'koffi';
import koffi from 'koffi';
import { AT_FDCWD, openFlags } from './constants.js';
import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { hostArch, syscallNumber } from './syscalls/index.js';

function loadLibc(): LibraryHandle {
  const names = ['libc.so.6', `libc.musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`];
  let lastError: unknown;
  for (const name of names) {
    try {
      return koffi.load(name);
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`sandlock: cannot load the C library (${String(lastError)})`);
}

/** The C library, for bindings elsewhere in this package. */
export const libc = loadLibc();

// glibc's syscall() is a small assembly routine that only moves registers, so
// declaring it with a fixed prototype of seven 64-bit integers is exact on
// both x86_64 and aarch64 (see syscall(2), "Architecture calling conventions").
/** The raw syscall(2) entry, for this package's own bindings. */
export const syscall7 = libc.func(
  'int64_t syscall(int64_t nr, int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t a4, int64_t a5)',
);

/** A syscall argument: an integer, or a Buffer whose address is passed. */
export type SyscallArg = number | bigint | Buffer | null | undefined;

/** A syscall argument as the integer passed in its register. */
export function toWord(arg: SyscallArg): number | bigint {
  if (arg === null || arg === undefined) return 0;
  if (Buffer.isBuffer(arg)) return koffi.address(arg);
  return arg;
}

/** The address of a Buffer's first byte; valid while the Buffer is alive. */
export function addressOf(buffer: Buffer): bigint {
  return koffi.address(buffer);
}

/**
 * Runs a raw system call by number. Returns the result, or the negated errno
 * on failure, as the kernel does. Buffers passed as arguments must stay
 * referenced by the caller for the duration of the call (they are).
 */
export function rawSyscall(nr: number, ...args: SyscallArg[]): number {
  const result = syscall7(
    nr,
    toWord(args[0]),
    toWord(args[1]),
    toWord(args[2]),
    toWord(args[3]),
    toWord(args[4]),
    toWord(args[5]),
  );
  if (Number(result) === -1) return -koffi.errno();
  return Number(result);
}

const numberCache = new Map<string, number>();
function numberOf(name: string): number {
  let nr = numberCache.get(name);
  if (nr === undefined) {
    nr = syscallNumber(name, hostArch());
    numberCache.set(name, nr);
  }
  return nr;
}

/** Runs a system call by name; returns its result or the negated errno. */
export function trySyscall(name: string, ...args: SyscallArg[]): number {
  return rawSyscall(numberOf(name), ...args);
}

/** Runs a system call by name; throws a {@link SysError} on failure. */
export function syscall(name: string, ...args: SyscallArg[]): number {
  const result = rawSyscall(numberOf(name), ...args);
  if (result < 0) throw new SysError(name, -result);
  return result;
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

const flags = openFlags(hostArch());

/** Closes a file descriptor; EBADF is reported, EINTR is not (close(2): the fd is gone either way). */
export function close(fd: number): void {
  const result = trySyscall('close', fd);
  if (result < 0 && result !== -ERRNO.EINTR) throw new SysError('close', -result);
}

/** openat(AT_FDCWD, path, flags, mode) */
export function openAt(path: string, openFlagsValue: number, mode = 0, dirfd = AT_FDCWD): number {
  const result = trySyscall('openat', dirfd, cString(path), openFlagsValue, mode);
  if (result < 0) throw new SysError('open', -result, path);
  return result;
}

/** An `O_PATH|O_CLOEXEC` descriptor for a path, as Landlock rules want. */
export function openPath(path: string, extraFlags = 0): number {
  return openAt(path, flags.O_PATH | flags.O_CLOEXEC | extraFlags);
}

export function pidfdOpen(pid: number, pidfdFlags = 0): number {
  const result = trySyscall('pidfd_open', pid, pidfdFlags);
  if (result < 0) throw new SysError('pidfd_open', -result, `pid ${pid}`);
  return result;
}

/** Duplicates `targetFd` of the process behind `pidfd` into this process (close-on-exec). */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  const result = trySyscall('pidfd_getfd', pidfd, targetFd, 0);
  if (result < 0) throw new SysError('pidfd_getfd', -result, `fd ${targetFd}`);
  return result;
}

export function pidfdSendSignal(pidfd: number, signal: number): void {
  syscall('pidfd_send_signal', pidfd, signal, null, 0);
}

/**
 * flock(2) on an open descriptor; with LOCK_NB, false when another open file
 * description holds a conflicting lock (EWOULDBLOCK), instead of waiting.
 */
export function flock(fd: number, operation: number): boolean {
  const result = trySyscall('flock', fd, operation);
  if (result === -ERRNO.EAGAIN) return false; // EWOULDBLOCK
  if (result < 0) throw new SysError('flock', -result);
  return true;
}

export function memfdCreate(name: string, memfdFlags: number): number {
  const result = trySyscall('memfd_create', cString(name), memfdFlags);
  if (result < 0) throw new SysError('memfd_create', -result, name);
  return result;
}

export function closeRange(first: number, last: number, rangeFlags = 0): void {
  syscall('close_range', first, last, rangeFlags);
}

export function fcntl(fd: number, command: number, arg: number | bigint = 0): number {
  return syscall('fcntl', fd, command, arg);
}

/** ioctl(fd, request, arg): `arg` is a Buffer (passed by address) or an integer (by value). */
export function ioctl(fd: number, request: number, arg: SyscallArg): number {
  return syscall('ioctl', fd, request, arg);
}
