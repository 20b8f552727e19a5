import type { Arch } from './syscalls/index.js';

/**
 * Flag values that differ between architectures (asm-generic/fcntl.h is
 * overridden by arch/arm64 for O_DIRECTORY, O_NOFOLLOW, O_DIRECT, O_LARGEFILE).
 * O_LARGEFILE is the kernel's value: 64-bit open(2) sets it on every open
 * (force_o_largefile(), include/linux/fcntl.h), so a caller's flags may carry it.
 */
const OPEN_FLAGS = {
  x86_64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_LARGEFILE: 0o100000 },
  aarch64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000, O_LARGEFILE: 0o400000 },
} as const;

export function openFlags(arch: Arch) {
  return {
    O_RDONLY: 0,
    O_WRONLY: 1,
    O_RDWR: 2,
    O_CREAT: 0o100,
    O_EXCL: 0o200,
    O_TRUNC: 0o1000,
    O_APPEND: 0o2000,
    O_NONBLOCK: 0o4000,
    O_CLOEXEC: 0o2000000,
    O_PATH: 0o10000000,
    /** O_TMPFILE is this bit with O_DIRECTORY (include/uapi/asm-generic/fcntl.h). */
    __O_TMPFILE: 0o20000000,
    ...OPEN_FLAGS[arch],
  };
}

/** sizeof(struct stat) of newfstatat(2): arch/x86/include/uapi/asm/stat.h, include/uapi/asm-generic/stat.h. */
export function structStatSize(arch: Arch): number {
  return arch === 'x86_64' ? 144 : 128;
}

export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;
export const AT_SYMLINK_NOFOLLOW = 0x100;

/** PATH_MAX of include/uapi/linux/limits.h: a path's bytes, the terminating NUL included. */
export const PATH_MAX = 4096;
/** Symlinks one path walk may follow; one more is ELOOP (MAXSYMLINKS, include/linux/namei.h). */
export const MAXSYMLINKS = 40;
/** statfs(2) f_type of procfs (include/uapi/linux/magic.h). */
export const PROC_SUPER_MAGIC = 0x9fa0;
// include/uapi/linux/limits.h: an extended attribute's name (without its NUL) and value.
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
/** struct xattr_args { __aligned_u64 value; __u32 size; __u32 flags; } (setxattrat, Linux 6.13). */
export const XATTR_ARGS_SIZE_VER0 = 16;

// include/uapi/linux/stat.h: the file type bits of st_mode / stx_mode.
export const S_IFMT = 0o170000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;
// include/uapi/linux/stat.h: statx(2) mask bits.
export const STATX_TYPE = 0x1;
export const STATX_INO = 0x100;
/** stx_mnt_id (a u64 at offset 144 of struct statx), since Linux 5.8. */
export const STATX_MNT_ID = 0x1000;
/** STATX_BASIC_STATS: what stat(2) fills in. */
export const STATX_BASIC_STATS = 0x7ff;

/** include/uapi/linux/fcntl.h: faccessat2(2) checks with the effective ids (AT_REMOVEDIR's value). */
export const AT_EACCESS = 0x200;
// include/linux/fs.h (unistd.h): access(2) modes.
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;
// include/uapi/linux/inotify.h: inotify_add_watch(2) flags that say how to
// look the path up, and every event bit.
export const IN_ONLYDIR = 0x01000000;
export const IN_DONT_FOLLOW = 0x02000000;
export const IN_ALL_EVENTS = 0x00000fff;
// include/uapi/linux/fanotify.h: fanotify_mark(2) flags that say how to look
// the path up, FAN_MARK_FLUSH (no path), and the mark's type (none: an inode;
// FAN_MARK_MNTNS is both bits).
export const FAN_MARK_DONT_FOLLOW = 0x4;
export const FAN_MARK_ONLYDIR = 0x8;
export const FAN_MARK_FLUSH = 0x80;
export const FAN_MARK_TYPE_BITS = 0x110;
/** struct file_attr of file_getattr(2) and file_setattr(2) (include/uapi/linux/fs.h, Linux 6.17). */
export const FILE_ATTR_SIZE_VER0 = 24;

/** fallocate(2) mode: allocate without changing the file size (include/uapi/linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;

// include/uapi/asm-generic/fcntl.h, include/uapi/linux/fcntl.h: fcntl(2) commands.
export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const F_GET_SEALS = 1034;

// include/uapi/linux/kcmp.h: kcmp(2) types.
export const KCMP_FILES = 2;

// include/uapi/asm-generic/fcntl.h: flock(2) operations.
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

// include/uapi/linux/fs.h: lseek(2) whence.
export const SEEK_SET = 0;
export const SEEK_CUR = 1;

/** include/uapi/linux/auxvec.h: the auxv entry that holds the vDSO's address. */
export const AT_SYSINFO_EHDR = 33;

/** USER_HZ: the unit of the clock ticks in /proc/<pid>/stat (100 on x86_64 and aarch64). */
export const USER_HZ = 100;

export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
/** Linux 6.3+: memfd_create(2) refuses unknown flags with EINVAL on older kernels. */
export const MFD_NOEXEC_SEAL = 0x8;
export const MFD_EXEC = 0x10;

export const F_ADD_SEALS = 1033;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

export const CLOSE_RANGE_UNSHARE = 0x2;
export const CLOSE_RANGE_CLOEXEC = 0x4;

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_SET_THP_DISABLE = 41;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_CAPBSET_DROP = 24;

// include/uapi/linux/capability.h: capset(2)'s header version for 64-bit sets.
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** CAP_SETPCAP: needed to drop capabilities from the bounding set (PR_CAPBSET_DROP). */
export const CAP_SETPCAP = 8;
export const CAP_DAC_OVERRIDE = 1;
export const CAP_DAC_READ_SEARCH = 2;
export const CAP_FOWNER = 3;

/** personality(2): query without changing. */
export const PERSONALITY_QUERY = 0xffffffff;
export const ADDR_NO_RANDOMIZE = 0x0040000;

export const RLIMIT = {
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
} as const;
export type RlimitResource = keyof typeof RLIMIT;
export const RLIM_INFINITY = 0xffffffffffffffffn;

export const PIDFD_NONBLOCK = 0o4000;
/** pidfd_open(2): a pidfd for one thread, any thread (= O_EXCL; Linux 6.9+). */
export const PIDFD_THREAD = 0o200;

// include/uapi/linux/random.h: getrandom(2) flags.
export const GRND_NONBLOCK = 0x1;
export const GRND_RANDOM = 0x2;
export const GRND_INSECURE = 0x4;

// include/uapi/linux/resource.h, include/uapi/linux/ioprio.h: `which` of setpriority(2), ioprio_set(2).
export const PRIO_USER = 2;
export const IOPRIO_WHO_USER = 3;

// include/uapi/linux/sched.h
export const CLONE_PARENT = 0x00008000;
export const CLONE_THREAD = 0x00010000;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

// include/uapi/asm-generic/ioctls.h
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
// include/uapi/linux/fs.h: _IOW('f', 2, long), its 32-bit twin _IOW('f', 2, int), and
// _IOW('X', 32, struct fsxattr): a file's attribute flags (append-only, no-atime, no-dump…).
export const FS_IOC_SETFLAGS = 0x40086602;
export const FS_IOC32_SETFLAGS = 0x40046602;
export const FS_IOC_FSSETXATTR = 0x401c5820;

// include/uapi/linux/prctl.h
export const PR_SET_SECUREBITS = 28;
/** "Ya" "ma": the value is ASCII, see prctl(2). */
export const PR_SET_PTRACER = 0x59616d61;

// include/linux/net.h
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
/** Obsolete; socket(AF_INET, SOCK_PACKET) still makes a packet socket. */
export const SOCK_PACKET = 10;
/**
 * The low bits of socket(2)'s `type` are the type; SOCK_NONBLOCK and SOCK_CLOEXEC live above
 * (__sys_socket() in net/socket.c masks with SOCK_TYPE_MASK and refuses other flag bits).
 */
export const SOCK_TYPE_MASK = 0xf;
/** socket(2) and socketpair(2) type flag: close-on-exec (O_CLOEXEC's value, include/linux/net.h). */
export const SOCK_CLOEXEC = 0o2000000;

// include/uapi/linux/wait.h
export const WNOHANG = 0x00000001;
export const WNOWAIT = 0x01000000;

// include/uapi/asm-generic/signal-defs.h, signal.h (the same numbers on x86_64 and aarch64)
export const SIG_BLOCK = 0;
export const SIG_SETMASK = 2;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGUSR2 = 12;
export const SIGTERM = 15;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGWINCH = 28;

// include/uapi/linux/signalfd.h
export const SFD_NONBLOCK = 0o4000;
export const SFD_CLOEXEC = 0o2000000;

// include/uapi/linux/time.h: clock ids (clock_gettime(2)).
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
/** The calling thread's CPU-time clock. */
export const CLOCK_THREAD_CPUTIME_ID = 3;
export const CLOCK_REALTIME_COARSE = 5;
export const CLOCK_REALTIME_ALARM = 8;
export const CLOCK_TAI = 11;
/** The clocks that read wall-clock time. */
export const REALTIME_CLOCKS: readonly number[] = [
  CLOCK_REALTIME,
  CLOCK_REALTIME_COARSE,
  CLOCK_REALTIME_ALARM,
  CLOCK_TAI,
];
/** TIMER_ABSTIME (linux/time.h) and TFD_TIMER_ABSTIME (linux/timerfd.h) are both bit 0. */
export const TIMER_ABSTIME = 1;

// include/uapi/linux/futex.h: futex(2) operations and flags.
export const FUTEX_CMD_MASK = 0x7f;
export const FUTEX_CLOCK_REALTIME = 256;
export const FUTEX_LOCK_PI = 6;
export const FUTEX_WAIT_BITSET = 9;
export const FUTEX_WAIT_REQUEUE_PI = 11;
export const FUTEX_LOCK_PI2 = 13;

/** Signal dispositions (sa_handler values, signal(7)). */
export const SIG_DFL = 0;
export const SIG_IGN = 1;
