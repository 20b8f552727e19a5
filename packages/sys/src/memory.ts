import koffi from 'koffi';
import { remoteAccess } from './access.js';
import { AT_FDCWD, openFlags } from './constants.js';
import { ERRNO } from './errno.js';
import { SysError } from './errors.js';
import { addressOf, close, syscall7, trySyscall } from './libc.js';
import { hostArch, syscallNumber } from './syscalls/index.js';

/** Longest string execve(2) accepts as one argument (MAX_ARG_STRLEN = 32 pages). */
export const MAX_ARG_STRLEN = 32 * 4096;

// Reads never cross a 4 KiB boundary in one go: process_vm_readv(2) stops at
// the first unmapped page, and every supported page size is a multiple of 4 KiB.
const CHUNK = 4096;

function iovec(address: bigint, length: number): Buffer {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(address, 0);
  iov.writeBigUInt64LE(BigInt(length), 8);
  return iov;
}

// Where process_vm_readv/writev are refused (a container's default seccomp
// profile, see access.ts), memory goes through /proc/<pid>/mem instead:
// pread/pwrite on a descriptor opened once per notification. The open pins
// the memory of whichever task has that id then; the caller's check of the
// notification's id after reading (as with process_vm_readv) proves it was
// the caller's. It is not kept longer: a task that execs, or a vfork child
// that execs, gets new memory while an old descriptor still reads the
// former (mem_open() takes the mm once, fs/proc/base.c).
// Differences from process_vm_*: the kernel's access is FOLL_FORCE, so a
// page the caller has mapped read-only (or PROT_NONE) is read and written
// where process_vm_* would fail with EFAULT (the caller's own memory).
let memory: { pid: number; fd: number } | null = null;
/** The route chosen by a test; null: the probe's (remoteAccess). */
let forcedRoute: 'process_vm' | 'proc_mem' | null = null;

/** Makes this thread use one route whatever the probe says (tests of both); null: the probe's. */
export function forceMemoryRoute(route: 'process_vm' | 'proc_mem' | null): void {
  forcedRoute = route;
  forgetProcessMemory();
}

function viaProcMem(): boolean {
  return forcedRoute !== null ? forcedRoute === 'proc_mem' : !remoteAccess().processVm;
}
const { O_RDWR, O_CLOEXEC } = openFlags(hostArch());

/** Closes the /proc/<pid>/mem descriptor kept for the last notification: call before each new one. */
export function forgetProcessMemory(): void {
  if (memory !== null) close(memory.fd);
  memory = null;
}

function procMem(pid: number): number {
  if (memory !== null && memory.pid === pid) return memory.fd;
  forgetProcessMemory();
  const fd = trySyscall(
    'openat',
    AT_FDCWD,
    Buffer.from(`/proc/${pid}/mem\0`),
    O_RDWR | O_CLOEXEC,
    0,
  );
  if (fd < 0) return fd === -ERRNO.ENOENT ? -ERRNO.ESRCH : fd;
  memory = { pid, fd };
  return fd;
}

/** pread/pwrite of /proc/<pid>/mem: bytes moved or -errno (EIO, the kernel's for an unmapped page, as EFAULT). */
function procMemTransfer(
  write: boolean,
  pid: number,
  local: Buffer,
  remoteAddress: bigint,
): number {
  const fd = procMem(pid);
  if (fd < 0) return fd;
  // Offsets are the addresses, unsigned; pread64 takes them as loff_t bits.
  const offset = BigInt.asIntN(64, remoteAddress);
  const done = trySyscall(write ? 'pwrite64' : 'pread64', fd, local, local.length, offset);
  if (done === -ERRNO.EIO) return -ERRNO.EFAULT;
  // mm gone (the task exited): mem_rw() reads nothing.
  if (done === 0 && local.length > 0) return -ERRNO.ESRCH;
  return done;
}

function transfer(
  call: 'process_vm_readv' | 'process_vm_writev',
  pid: number,
  local: Buffer,
  remoteAddress: bigint,
): number {
  if (viaProcMem()) {
    return procMemTransfer(call === 'process_vm_writev', pid, local, remoteAddress);
  }
  const localIov = iovec(addressOf(local), local.length);
  const remoteIov = iovec(remoteAddress, local.length);
  return trySyscall(call, pid, localIov, 1, remoteIov, 1, 0);
}

/**
 * Reads up to `length` bytes of another process's memory at `address`.
 * Returns fewer bytes when the range runs into unmapped memory; throws when
 * nothing at all could be read.
 */
export function readMemoryPartial(pid: number, address: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  const done = transfer('process_vm_readv', pid, out, address);
  if (done < 0) throw new SysError('process_vm_readv', -done, `pid ${pid}`);
  return done === length ? out : out.subarray(0, done);
}

/** Reads exactly `length` bytes of another process's memory, or throws (EFAULT when short). */
export function readMemory(pid: number, address: bigint, length: number): Buffer {
  if (length === 0) return Buffer.alloc(0);
  const data = readMemoryPartial(pid, address, length);
  if (data.length !== length) throw new SysError('process_vm_readv', ERRNO.EFAULT, `pid ${pid}`);
  return data;
}

/** Writes `data` into another process's memory at `address`, or throws. */
export function writeMemory(pid: number, address: bigint, data: Buffer): void {
  if (data.length === 0) return;
  const done = transfer('process_vm_writev', pid, data, address);
  if (done < 0) throw new SysError('process_vm_writev', -done, `pid ${pid}`);
  if (done !== data.length) throw new SysError('process_vm_writev', 14, `pid ${pid}`);
}

// Strings are read through one scratch page and two iovecs made once per
// thread (a supervisor reads a path for every open it sees: allocating them
// per call cost more than the syscall).
let scratch: {
  page: Buffer;
  local: Buffer;
  remote: Buffer;
  localAt: bigint;
  remoteAt: bigint;
} | null = null;
let processVmReadv = -1;
/** The first read of a string: paths are short, most fit. */
const FIRST_READ = 256;
const PAGE_MASK = BigInt(CHUNK - 1);

/** Reads up to `length` (≤ CHUNK) bytes at `address` into the scratch page; bytes read or -errno. */
function readScratch(pid: number, address: bigint, length: number): number {
  if (scratch === null) {
    const page = Buffer.alloc(CHUNK);
    const local = Buffer.alloc(16);
    const remote = Buffer.alloc(16);
    local.writeBigUInt64LE(addressOf(page), 0);
    scratch = { page, local, remote, localAt: addressOf(local), remoteAt: addressOf(remote) };
    processVmReadv = syscallNumber('process_vm_readv', hostArch());
  }
  if (viaProcMem()) {
    return procMemTransfer(false, pid, scratch.page.subarray(0, length), address);
  }
  scratch.local.writeUInt32LE(length, 8);
  scratch.remote.writeBigUInt64LE(address, 0);
  scratch.remote.writeUInt32LE(length, 8);
  const result = Number(syscall7(processVmReadv, pid, scratch.localAt, 1, scratch.remoteAt, 1, 0));
  return result === -1 ? -koffi.errno() : result;
}

/**
 * Reads a NUL-terminated string from another process, across any number of
 * pages. Throws ENAMETOOLONG past `maxLength` bytes and EFAULT when the string
 * runs into unmapped memory. Returns the raw bytes without the terminator.
 */
export function readCStringBytes(pid: number, address: bigint, maxLength = MAX_ARG_STRLEN): Buffer {
  if (address === 0n) throw new SysError('process_vm_readv', ERRNO.EFAULT, 'NULL string');
  const chunks: Buffer[] = [];
  let total = 0;
  let cursor = address;
  let first = true;
  while (total <= maxLength) {
    const toBoundary = CHUNK - Number(cursor & PAGE_MASK);
    const wanted = first ? Math.min(toBoundary, FIRST_READ) : toBoundary;
    first = false;
    const got = readScratch(pid, cursor, wanted);
    if (got < 0) {
      if (chunks.length === 0) throw new SysError('process_vm_readv', -got, `pid ${pid}`);
      throw new SysError('process_vm_readv', ERRNO.EFAULT, `pid ${pid}`);
    }
    const page = scratch!.page.subarray(0, got);
    const nul = page.indexOf(0);
    if (nul >= 0) {
      total += nul;
      if (total > maxLength) break;
      const last = Buffer.from(page.subarray(0, nul));
      if (chunks.length === 0) return last;
      chunks.push(last);
      return Buffer.concat(chunks, total);
    }
    if (got < wanted) throw new SysError('process_vm_readv', ERRNO.EFAULT, `pid ${pid}`);
    chunks.push(Buffer.from(page));
    total += got;
    cursor += BigInt(got);
  }
  throw new SysError(
    'process_vm_readv',
    ERRNO.ENAMETOOLONG,
    `string longer than ${maxLength} bytes`,
  );
}

/** {@link readCStringBytes} decoded as UTF-8 (paths are bytes; use the bytes form to keep them exact). */
export function readCString(pid: number, address: bigint, maxLength = MAX_ARG_STRLEN): string {
  return readCStringBytes(pid, address, maxLength).toString('utf8');
}
