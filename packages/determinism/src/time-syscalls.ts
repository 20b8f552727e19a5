import { hasSyscall, hostArch } from '@sandlock/sys';

/**
 * The calls the time module answers or adjusts (the sandbox's filter notifies only the
 * realtime, unmarked, absolute ones: addNotifyBypasses in @sandlock/seccomp).
 */
export const TIME_SYSCALLS: readonly string[] = [
  'clock_gettime',
  'gettimeofday',
  'time',
  'clock_nanosleep',
  'timerfd_settime',
  'timer_settime',
  'futex',
  'futex_waitv',
  'mq_timedsend',
  'mq_timedreceive',
].filter((name) => hasSyscall(name));

/**
 * Calls every runtime makes right after exec, before user code, on which the module patches
 * the new image. strace on x86_64 (Linux 6.18, Debian 12): /bin/true, python3, node and java
 * start with brk(NULL), arch_prctl(ARCH_SET_FS), set_tid_address (glibc's ld.so); a static Go
 * binary starts with arch_prctl(ARCH_SET_FS) (settls), then sched_getaffinity (osinit). Static
 * glibc starts with brk(0) too, musl with set_tid_address. aarch64 has no arch_prctl and Go
 * sets its TLS register without a syscall there: sched_getaffinity, Go's first call on every
 * arch, takes its place (not verified on aarch64 hardware here).
 */
export const TIME_HOOK_SYSCALLS: readonly string[] = [
  'brk',
  'set_tid_address',
  hostArch() === 'x86_64' ? 'arch_prctl' : 'sched_getaffinity',
].filter((name) => hasSyscall(name));
