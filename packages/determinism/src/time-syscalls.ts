import { hasSyscall } from '@sandlock/sys';

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
].filter((name) => hasSyscall(name));

/**
 * Calls every runtime makes right after exec, before user code, on which the module patches
 * the new image (strace of /bin/true, python3, node, java, a static Go binary on x86_64):
 * brk(0) (ld.so, static glibc), arch_prctl(ARCH_SET_FS) (glibc, Go's settls; x86_64 only),
 * set_tid_address (glibc, musl).
 */
export const TIME_HOOK_SYSCALLS: readonly string[] = [
  'brk',
  'arch_prctl',
  'set_tid_address',
].filter((name) => hasSyscall(name));
