import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  type Arch,
  CLOCK_REALTIME,
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  CLONE_THREAD,
  ERRNO,
  FS_IOC_FSSETXATTR,
  FS_IOC_SETFLAGS,
  FS_IOC32_SETFLAGS,
  FUTEX_CLOCK_REALTIME,
  FUTEX_CMD_MASK,
  FUTEX_LOCK_PI,
  FUTEX_LOCK_PI2,
  FUTEX_WAIT_BITSET,
  FUTEX_WAIT_REQUEUE_PI,
  hasSyscall,
  hostArch,
  IOPRIO_WHO_USER,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  PERSONALITY_QUERY,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_PTRACER,
  PR_SET_SECUREBITS,
  PRIO_USER,
  REALTIME_CLOCKS,
  SOCK_DGRAM,
  SOCK_PACKET,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCK_TYPE_MASK,
  TIMER_ABSTIME,
  TIOCLINUX,
  TIOCSTI,
  WNOHANG,
  WNOWAIT,
} from '@sandlock/sys';
import { type CompiledFilter, compileRuleSet } from '../compiler.js';
import { allow, errno, notify } from '../rules/actions.js';
import { type ArgIndex, argAnyBits, argEquals, argIn } from '../rules/matchers.js';
import { type Rule, type RuleSet, RuleSetBuilder } from '../rules/rule-set.js';
import { defaultDenyList } from './deny-list.js';

const { EPERM, ENOSYS } = ERRNO;

/** A denied syscall and the errno it fails with (EPERM when not given). */
export interface DenyEntry {
  name: string;
  errno?: number;
}

export interface DenyOnlyFilterOptions {
  /** Defaults to the host's. */
  arch?: Arch;
  /** Replaces {@link defaultDenyList}; extend it with `[...defaultDenyList(arch), …]`. */
  deny?: readonly (string | DenyEntry)[];
  /** Refuse raw IP sockets and packet sockets. */
  denyRawSockets?: boolean;
  /**
   * Which datagram sockets of AF_INET/AF_INET6 may be made: UDP (and
   * UDP-Lite) and ICMP "ping" sockets; the others are refused with EACCES.
   * Default: both.
   */
  datagrams?: { readonly udp: boolean; readonly icmp: boolean };
  /**
   * Refuse metadata changes ({@link metadataCalls}: chmod, chown, utimes,
   * extended attributes) with EACCES: Landlock does not mediate them, so a sandbox
   * that may write nowhere should make none.
   */
  denyMetadata?: boolean;
  /**
   * Refuse socket(AF_UNIX, …) and socketpair(AF_UNIX, SOCK_DGRAM, …) with
   * EACCES: no supervisor checks which named socket such a socket reaches
   * (a datagram socketpair's sendto and connect take a path too:
   * unix_dgram_sendmsg(), unix_dgram_connect()). Stream and seqpacket
   * socketpairs stay: they are connected to each other and to nothing else.
   */
  denyUnixSockets?: boolean;
}

/**
 * The calls that change a file's mode, owner, times or extended attributes
 * (those of this arch). chown needs no capability to change a file's group
 * among the caller's own, and even chown(f, -1, -1) clears the set-user-ID
 * and set-group-ID bits of a file the caller owns (chown_common() in
 * fs/open.c): a root sandbox owns root's files.
 */
export function metadataCalls(arch: Arch = hostArch()): string[] {
  return [
    'chmod',
    'fchmod',
    'fchmodat',
    'fchmodat2',
    'chown',
    'lchown',
    'fchown',
    'fchownat',
    'utime',
    'utimes',
    'futimesat',
    'utimensat',
    'setxattr',
    'lsetxattr',
    'fsetxattr',
    'removexattr',
    'lremovexattr',
    'fremovexattr',
    'setxattrat',
    'removexattrat',
  ].filter((name) => hasSyscall(name, arch));
}

export interface SandboxFilterOptions extends DenyOnlyFilterOptions {
  /** Syscalls the supervisor answers (SECCOMP_RET_USER_NOTIF). A denied syscall is never notified. */
  notify?: readonly string[];
}

const NAMESPACE_FLAGS =
  CLONE_NEWNS |
  CLONE_NEWCGROUP |
  CLONE_NEWUTS |
  CLONE_NEWIPC |
  CLONE_NEWUSER |
  CLONE_NEWPID |
  CLONE_NEWNET;

/**
 * Refusals that look at arguments; they come first, so they win over the deny list's exceptions
 * and over notification.
 */
function addArgumentRefusals(rules: RuleSetBuilder, options: DenyOnlyFilterOptions): void {
  const refuse = errno(EPERM);
  // sys_clone() in kernel/fork.c keeps only lower_32_bits(clone_flags). CLONE_NEWTIME (0x80)
  // cannot be asked for through clone(2): its low byte is the exit signal.
  rules.add('clone', { when: [argAnyBits(0, 32, NAMESPACE_FLAGS)], action: refuse });
  // clone3 takes its flags in memory, out of BPF's sight. ENOSYS makes glibc (2.34+) and musl fall
  // back to clone(2), whose flags the rule above sees; threads then still work.
  rules.add('clone3', { action: errno(ENOSYS) });
  // listmount(2) and statmount(2) (Linux 6.8) describe every mount of the mount namespace by id
  // (fs/namespace.c), out of Landlock's reach and around the sandbox's filtered /proc mount
  // tables. ENOSYS is what an older kernel says: libmount falls back on /proc/self/mountinfo.
  for (const name of ['listmount', 'statmount']) {
    if (hasSyscall(name, options.arch ?? hostArch())) rules.add(name, { action: errno(ENOSYS) });
  }
  // fs/ioctl.c: SYSCALL_DEFINE3(ioctl, unsigned int, fd, unsigned int, cmd, unsigned long, arg).
  // `cmd` is 32 bits: 0x100005412 is TIOCSTI to the kernel, so only the low word may be compared.
  // TIOCSTI pushes input into the terminal; TIOCLINUX can do the same on a virtual console.
  rules.add('ioctl', { when: [argIn(1, 32, [TIOCSTI, TIOCLINUX])], action: refuse });
  // A file's attribute flags are metadata Landlock does not mediate either, and the ioctl needs
  // only a descriptor (even a read-only one of a file outside the grants, to its owner): refused.
  rules.add('ioctl', {
    when: [argIn(1, 32, [FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR])],
    action: refuse,
  });
  // file_setattr(2) (Linux 6.17, fs/file_attr.c) sets the same attributes by path or
  // descriptor, to the file's owner without a capability (nodump, noatime, sync): refused too.
  if (hasSyscall('file_setattr', options.arch ?? hostArch())) {
    rules.add('file_setattr', { action: refuse });
  }
  // kernel/sys.c: SYSCALL_DEFINE5(prctl, int, option, ...).
  rules.add('prctl', {
    when: [argIn(0, 32, [PR_SET_DUMPABLE, PR_SET_SECUREBITS, PR_SET_PTRACER])],
    action: refuse,
  });
  // net/socket.c: SYSCALL_DEFINE3(socket, int, family, int, type, int, protocol).
  rules.add('socket', { when: [argEquals(0, 32, AF_NETLINK)], action: refuse });
  const inet = argIn(0, 32, [AF_INET, AF_INET6]);
  // Landlock's TCP rules (LANDLOCK_ACCESS_NET_BIND_TCP, CONNECT_TCP) cover
  // SOCK_STREAM sockets of IPPROTO_TCP only: an MPTCP socket (protocol 262,
  // net/mptcp) binds and connects to any port, measured on Linux 6.18, and
  // SCTP (SOCK_SEQPACKET, or SOCK_STREAM with protocol 132) is not covered
  // either. A stream socket's protocol must be 0 or IPPROTO_TCP (6): any bit
  // outside 0b111 refuses it (1…5 and 7 are the kernel's EPROTONOSUPPORT).
  rules.add(
    'socket',
    {
      when: [inet, argEquals(1, 32, SOCK_STREAM, SOCK_TYPE_MASK), argAnyBits(2, 32, 0xfffffff8)],
      action: refuse,
    },
    { when: [inet, argEquals(1, 32, SOCK_SEQPACKET, SOCK_TYPE_MASK)], action: refuse },
  );
  // Calls that act on another process by pid, which Landlock's scoping does
  // not cover (it covers signals and ptrace): prlimit64 of a host process of
  // the same uid set its RLIMIT_CPU (killed a second later) or the
  // supervisor's RLIMIT_NOFILE (measured); the scheduling and I/O priority
  // calls renice or starve host processes. Only the caller itself (pid 0) is
  // let through; setpriority's and ioprio_set's "every process of a user"
  // never.
  const otherPid = (index: ArgIndex) => argAnyBits(index, 32, 0xffffffff);
  for (const name of ['prlimit64', 'sched_setscheduler', 'sched_setparam', 'sched_setattr']) {
    rules.add(name, { when: [otherPid(0)], action: refuse });
  }
  for (const name of ['migrate_pages', 'move_pages']) {
    rules.add(name, { when: [otherPid(0)], action: refuse });
  }
  rules.add(
    'setpriority',
    { when: [argEquals(0, 32, PRIO_USER)], action: refuse },
    { when: [otherPid(1)], action: refuse },
  );
  rules.add(
    'ioprio_set',
    { when: [argEquals(0, 32, IOPRIO_WHO_USER)], action: refuse },
    { when: [otherPid(1)], action: refuse },
  );
  if (options.denyRawSockets) {
    rules.add(
      'socket',
      { when: [inet, argEquals(1, 32, SOCK_RAW, SOCK_TYPE_MASK)], action: refuse },
      { when: [argEquals(0, 32, AF_PACKET)], action: refuse },
      // __sock_create() in net/socket.c still turns socket(AF_INET, SOCK_PACKET) into a packet
      // socket for old programs.
      {
        when: [argEquals(0, 32, AF_INET), argEquals(1, 32, SOCK_PACKET, SOCK_TYPE_MASK)],
        action: refuse,
      },
    );
  }
  // inet_create() in net/ipv4/af_inet.c (and inet6_create()): a SOCK_DGRAM
  // socket is UDP for protocol 0 or IPPROTO_UDP, UDP-Lite for 136, a ping
  // socket for IPPROTO_ICMP (ICMPV6 on AF_INET6); any other protocol is
  // EPROTONOSUPPORT. `int protocol`: the low 32 bits.
  const dgram = argEquals(1, 32, SOCK_DGRAM, SOCK_TYPE_MASK);
  const datagrams = options.datagrams ?? { udp: true, icmp: true };
  const { EACCES } = ERRNO;
  if (!datagrams.udp) {
    rules.add('socket', {
      when: [inet, dgram, argIn(2, 32, [0, IPPROTO_UDP, IPPROTO_UDPLITE])],
      action: errno(EACCES),
    });
  }
  if (!datagrams.icmp) {
    rules.add('socket', {
      when: [inet, dgram, argIn(2, 32, [IPPROTO_ICMP, IPPROTO_ICMPV6])],
      action: errno(EACCES),
    });
  }
  if (options.denyUnixSockets) {
    rules.add('socket', { when: [argEquals(0, 32, AF_UNIX)], action: errno(EACCES) });
    rules.add('socketpair', {
      when: [argEquals(0, 32, AF_UNIX), argEquals(1, 32, SOCK_DGRAM, SOCK_TYPE_MASK)],
      action: errno(EACCES),
    });
  }
  if (options.denyMetadata) {
    for (const name of metadataCalls(options.arch ?? hostArch())) {
      rules.add(name, { action: errno(EACCES) });
    }
  }
}

function addDenyList(rules: RuleSetBuilder, arch: Arch, deny: DenyOnlyFilterOptions['deny']): void {
  for (const entry of deny ?? defaultDenyList(arch)) {
    const { name, errno: code = EPERM } = typeof entry === 'string' ? { name: entry } : entry;
    if (name === 'personality') {
      // kernel/exec_domain.c: SYSCALL_DEFINE1(personality, unsigned int, personality); the value
      // 0xffffffff only reads the current persona, which libc and `setarch` ask for.
      rules.add(name, { when: [argEquals(0, 32, PERSONALITY_QUERY)], action: allow });
    }
    rules.add(name, { action: errno(code) });
  }
}

/**
 * Calls in the notification set that the supervisor never needs to see. Rules of one syscall are
 * tried in the order added and the first match decides ({@link RuleSetBuilder}); the catch-all
 * `notify` rule of {@link sandboxRules} comes after these, so a syscall whose last rule here is an
 * unconditional `allow` is notified only by the `notify` rules above it.
 */
function addNotifyBypasses(rules: RuleSetBuilder, notified: ReadonlySet<string>): void {
  const bypass = (name: string, arg: ArgIndex, mask: number) => {
    if (notified.has(name)) rules.add(name, { when: [argAnyBits(arg, 32, mask)], action: allow });
  };
  /** Notify `name` only when `when` holds; everything else is allowed. */
  const notifyOnly = (name: string, ...when: Rule[]) => {
    if (notified.has(name)) rules.add(name, ...when, { action: allow });
  };
  // A wait that does not block or does not reap changes no process count
  // (kernel/exit.c: SYSCALL_DEFINE4(wait4, pid_t, upid, int __user *, stat_addr, int, options, ...)
  // and SYSCALL_DEFINE5(waitid, int, which, pid_t, upid, ..., int, options, ...)).
  bypass('wait4', 2, WNOHANG | WNOWAIT);
  bypass('waitid', 3, WNOHANG | WNOWAIT);
  // A thread is not a new process (namespace flags were refused above).
  bypass('clone', 0, CLONE_THREAD);

  // The time module (@sandlock/determinism). No argument value lets a clock read pass: any
  // value its vDSO code could put in a register, the sandbox's own code could too. Its x86_64
  // clock_gettime detour makes no syscall; its syscall trampolines are answered like raw calls.
  // kernel/time/posix-timers.c: SYSCALL_DEFINE2(clock_gettime, const clockid_t, which_clock, ...);
  // clockid_t is an int. Only the wall clocks are shifted; monotonic, boottime and the CPU-time
  // clocks (negative ids) are answered by the kernel. gettimeofday and time are always notified.
  notifyOnly('clock_gettime', {
    when: [argIn(0, 32, REALTIME_CLOCKS)],
    action: notify,
  });
  // brk(0) only queries the break: ld.so and static glibc make that call first after exec, which
  // is when the module patches the new image. Growing the heap is not its business (a module
  // that must see every brk would have to change this rule).
  notifyOnly('brk', { when: [argEquals(0, 64, 0)], action: notify });
  // Relative sleeps and timers do not depend on the wall clock; absolute ones are shifted back.
  // clock_nanosleep(clockid_t, int flags, ...), timerfd_settime(int, int flags, ...),
  // timer_settime(timer_t, int flags, ...): the flags are the second argument, an int.
  for (const name of ['clock_nanosleep', 'timerfd_settime', 'timer_settime']) {
    notifyOnly(name, { when: [argAnyBits(1, 32, TIMER_ABSTIME)], action: notify });
  }
  // futex is the hottest syscall there is: only absolute waits on CLOCK_REALTIME are notified
  // (kernel/futex/syscalls.c, futex_init_timeout(): FUTEX_LOCK_PI always counts in realtime,
  // WAIT_BITSET, WAIT_REQUEUE_PI and LOCK_PI2 only with FUTEX_CLOCK_REALTIME). The op is an int;
  // FUTEX_PRIVATE_FLAG (128) is masked out.
  notifyOnly('futex', {
    when: [
      argIn(
        1,
        32,
        [
          FUTEX_LOCK_PI,
          FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME,
          FUTEX_WAIT_REQUEUE_PI | FUTEX_CLOCK_REALTIME,
          FUTEX_LOCK_PI2 | FUTEX_CLOCK_REALTIME,
        ],
        FUTEX_CMD_MASK | FUTEX_CLOCK_REALTIME,
      ),
    ],
    action: notify,
  });
  // futex_waitv(waiters, nr_futexes, flags, timeout, clockid_t clockid) (kernel/futex/syscalls.c):
  // the timeout is absolute on CLOCK_MONOTONIC or CLOCK_REALTIME.
  notifyOnly('futex_waitv', { when: [argEquals(4, 32, CLOCK_REALTIME)], action: notify });
  // sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dest_addr,
  // socklen_t addrlen) (net/socket.c): without dest_addr it sends to the connected peer, which a
  // connect already decided; send(2) is this call. dest_addr is a register the caller cannot
  // change once it trapped. (A module that must see every sendto would have to change this rule.)
  notifyOnly('sendto', { when: [argAnyBits(4, 64, 0xffff_ffff_ffff_ffffn)], action: notify });
  // prctl is notified for one option: a process of the sandbox that makes itself a child
  // subreaper (@sandlock/dispatch: an orphan reparented to it loses its ancestry).
  notifyOnly('prctl', { when: [argEquals(0, 32, PR_SET_CHILD_SUBREAPER)], action: notify });
  // mq_timedsend/mq_timedreceive(..., const struct timespec *abs_timeout): always realtime
  // (ipc/mqueue.c); without a timeout they do not look at the clock.
  for (const name of ['mq_timedsend', 'mq_timedreceive']) {
    if (notified.has(name)) rules.add(name, { when: [argEquals(4, 64, 0)], action: allow });
  }
}

/**
 * The sandbox's rules: argument refusals, the deny list, then the notification set, default
 * allow. Priority when a syscall is in several: argument refusal > deny list > notification.
 */
export function sandboxRules(options: SandboxFilterOptions = {}): RuleSet {
  const arch = options.arch ?? hostArch();
  const rules = new RuleSetBuilder(arch, allow);
  addArgumentRefusals(rules, options);
  addDenyList(rules, arch, options.deny);
  const notified = new Set(options.notify ?? []);
  addNotifyBypasses(rules, notified);
  for (const name of notified) rules.add(name, { action: notify });
  return rules.build();
}

/** The same filter without a notification set, for sandboxes that run without a supervisor. */
export function denyOnlyRules(options: DenyOnlyFilterOptions = {}): RuleSet {
  const { arch, deny, denyRawSockets, datagrams, denyMetadata } = options;
  return sandboxRules({ arch, deny, denyRawSockets, datagrams, denyMetadata });
}

// Sandboxes started one after another mostly share a policy: compile each shape once.
const compiled = new Map<string, CompiledFilter>();
const COMPILED_KEEP = 32;

export function compileSandboxFilter(options: SandboxFilterOptions = {}): CompiledFilter {
  const key = JSON.stringify([
    options.arch ?? hostArch(),
    options.deny ?? null,
    options.notify ?? [],
    options.denyRawSockets ?? false,
    options.datagrams ?? null,
    options.denyMetadata ?? false,
  ]);
  let filter = compiled.get(key);
  if (filter === undefined) {
    filter = compileRuleSet(sandboxRules(options));
    if (compiled.size >= COMPILED_KEEP) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, filter);
  }
  // The program is a Buffer: every caller gets its own copy.
  return { ...filter, program: Buffer.from(filter.program) };
}

export function compileDenyOnlyFilter(options: DenyOnlyFilterOptions = {}): CompiledFilter {
  return compileRuleSet(denyOnlyRules(options));
}
