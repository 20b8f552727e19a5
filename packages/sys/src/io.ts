// Direct koffi bindings for hot paths (the supervisor's receive loop) that
// return -errno instead of throwing, and the event primitives it polls with:
// poll, epoll, eventfd, plain fd reads and writes, and an async syscall.

import koffi from 'koffi';
import { SIG_BLOCK } from './constants.js';
import { libc, rawSyscall, type SyscallArg, syscall7, toWord } from './libc.js';
import { hostArch, syscallNumber } from './syscalls/index.js';

// ioctl(2) is variadic in glibc, but its third argument is one register on
// x86_64 and aarch64, so fixed prototypes are exact. Two of them: the seccomp
// ioctls take a pointer, except SECCOMP_IOCTL_NOTIF_SET_FLAGS, whose flag goes
// BY VALUE (kernel/seccomp.c: seccomp_notify_set_flags(filter, arg)).
const ioctlPointer = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
const ioctlValue = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const pollCall = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const readCall = libc.func('long read(int fd, void *buf, unsigned long count)');
const writeCall = libc.func('long write(int fd, void *buf, unsigned long count)');
const eventfdCall = libc.func('int eventfd(unsigned int initval, int flags)');
const epollCreate1 = libc.func('int epoll_create1(int flags)');
const epollCtlCall = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
const epollWaitCall = libc.func(
  'int epoll_wait(int epfd, void *events, int maxevents, int timeout)',
);

/** ioctl(fd, request, buffer): the result, or -errno. */
export function ioctlBuffer(fd: number, request: number, buffer: Buffer): number {
  const result = ioctlPointer(fd, request, buffer) as number;
  return result < 0 ? -koffi.errno() : result;
}

/** ioctl(fd, request, value) with an integer argument: the result, or -errno. */
export function ioctlInteger(fd: number, request: number, value: number): number {
  const result = ioctlValue(fd, request, value) as number;
  return result < 0 ? -koffi.errno() : result;
}

/** poll(2) over a packed `struct pollfd[]`: the count of ready entries, or -errno. */
export function poll(fds: Buffer, count: number, timeoutMs: number): number {
  const result = pollCall(fds, count, timeoutMs) as number;
  return result < 0 ? -koffi.errno() : result;
}

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const POLLFD_SIZE = 8;

const pollOne = Buffer.alloc(POLLFD_SIZE);

/** Whether `fd` is readable now (poll(2) without waiting): a pidfd whose process exited, a socket with a message. */
export function readableNow(fd: number): boolean {
  pollOne.writeInt32LE(fd, 0);
  pollOne.writeInt16LE(POLLIN, 4);
  pollOne.writeInt16LE(0, 6);
  return poll(pollOne, 1, 0) > 0 && (pollOne.readInt16LE(6) & POLLIN) !== 0;
}

export function readFd(fd: number, buffer: Buffer): number {
  const result = Number(readCall(fd, buffer, buffer.length));
  return result < 0 ? -koffi.errno() : result;
}

export function writeFd(fd: number, buffer: Buffer): number {
  const result = Number(writeCall(fd, buffer, buffer.length));
  return result < 0 ? -koffi.errno() : result;
}

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** A non-blocking, close-on-exec eventfd (or -errno). */
export function eventfd(): number {
  const result = eventfdCall(0, EFD_CLOEXEC | EFD_NONBLOCK) as number;
  return result < 0 ? -koffi.errno() : result;
}

const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
/** sizeof(struct epoll_event) on x86_64, where the struct is packed; 16 elsewhere. */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const EPOLL_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;

export function epollCreate(): number {
  const result = epollCreate1(EPOLL_CLOEXEC) as number;
  return result < 0 ? -koffi.errno() : result;
}

/** epoll_ctl with `data` = the fd itself. */
export function epollCtl(epfd: number, op: number, fd: number, events: number): number {
  const event = Buffer.alloc(EPOLL_EVENT_SIZE);
  event.writeUInt32LE(events, 0);
  event.writeBigUInt64LE(BigInt(fd), EPOLL_DATA_OFFSET);
  const result = epollCtlCall(epfd, op, fd, event) as number;
  return result < 0 ? -koffi.errno() : result;
}

/** Ready fds (the `data` of each event), without waiting. */
export function epollReady(epfd: number, events: Buffer): number[] {
  const count = epollWaitCall(epfd, events, events.length / EPOLL_EVENT_SIZE, 0) as number;
  const ready: number[] = [];
  for (let index = 0; index < count; index++) {
    ready.push(Number(events.readBigUInt64LE(index * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET)));
  }
  return ready;
}

/**
 * Runs a system call on a thread of libuv's pool: for on-behalf operations
 * that may block (connect, a large copy) from the main thread. Resolves with
 * the result or -errno. Buffers passed stay referenced until it settles.
 * koffi restores the call's errno around the completion callback.
 */
export function syscallAsync(name: string, ...args: SyscallArg[]): Promise<number> {
  const nr = syscallNumber(name, hostArch());
  const words = [0, 1, 2, 3, 4, 5].map((index) => toWord(args[index]));
  return new Promise((resolve, reject) => {
    syscall7.async(nr, ...words, (error: unknown, result: number | bigint) => {
      void args; // keeps the Buffers alive until the call is over
      if (error) {
        reject(error);
        return;
      }
      const value = Number(result);
      resolve(value === -1 ? -koffi.errno() : value);
    });
  });
}

// Signals a thread must not block: the faults its own instructions raise
// (blocked, they kill the process instead of reaching a handler: force_sig_fault
// in kernel/signal.c), SIGKILL and SIGSTOP (which cannot be blocked), and
// SIGPROF (V8's sampling profiler signals each thread it samples).
const KEEP_UNBLOCKED = [4, 5, 7, 8, 9, 11, 19, 27, 31]; // ILL TRAP BUS FPE KILL SEGV STOP PROF SYS

/**
 * Blocks the classic asynchronous signals (1–31 but those above) in the
 * calling thread only (rt_sigprocmask acts per thread): the kernel then
 * delivers process-directed signals such as SIGCHLD to another thread, and
 * this thread's blocking calls are not interrupted by them. The real-time
 * signals (glibc uses 32 and 33 internally, setxid waits on every thread)
 * are left alone. Returns 0 or -errno.
 */
export function blockAsyncSignals(): number {
  let mask = 0n;
  for (let signal = 1; signal <= 31; signal++) {
    if (!KEEP_UNBLOCKED.includes(signal)) mask |= 1n << BigInt(signal - 1);
  }
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(mask);
  return rawSyscall(syscallNumber('rt_sigprocmask', hostArch()), SIG_BLOCK, set, 0, 8);
}
