import {
  ADDR_NO_RANDOMIZE,
  CLOSE_RANGE_CLOEXEC,
  LINUX_CAPABILITY_VERSION_3,
  PR_CAPBSET_DROP,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_THP_DISABLE,
  RLIMIT,
  type RlimitResource,
  SFD_CLOEXEC,
  SFD_NONBLOCK,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGCHLD,
  SIGCONT,
  SIGKILL,
  SIGSTOP,
} from '../constants.js';
import { cpuMask } from '../cpu-mask.js';
import { POLLIN } from '../io.js';
import { cmsgLen, encodeCmsghdrInto, SCM_RIGHTS, SOL_SOCKET } from '../structs/cmsghdr.js';
import { encodeIovecInto } from '../structs/iovec.js';
import { encodeMsghdrInto } from '../structs/msghdr.js';
import { type Arch, syscallNumber } from '../syscalls/index.js';
import { TIOCSCTTY } from '../terminal.js';
import {
  BROKER_BLOCK,
  BROKER_BLOCK_SIZE,
  BROKER_REQUEST_MAX,
  REAPER_PARAM,
  REAPER_PARAMS_SIZE,
  REAPER_POLLFDS_SIZE,
  type ScriptEncoder,
} from './script.js';

/**
 * One confinement step the exec stub performs before exec, in the order given.
 * Each becomes one or a few raw syscalls; a failure is fatal and names the
 * step (but the best-effort bounding-set drops of `dropCapabilities`).
 */
export type LaunchStep =
  | { kind: 'setsid' }
  /**
   * setsid(2), then ioctl(0, TIOCSCTTY, 0): the process leads a session of
   * its own whose controlling terminal is stdin's, its group the foreground
   * one, so ^C, job control and /dev/tty work. It must lead no process group.
   */
  | { kind: 'controllingTerminal' }
  | { kind: 'setpgid' }
  | { kind: 'chdir'; path: string }
  /** PR_SET_PDEATHSIG, then a check that the parent is still `parentPid` (prctl(2)). */
  | { kind: 'parentDeathSignal'; signal: number; parentPid: number }
  | { kind: 'noNewPrivs' }
  /**
   * Becomes `uid`:`gid` with the supplementary `groups`: setgroups(2),
   * setresgid(2), setresuid(2) (needs CAP_SETGID and CAP_SETUID; an uid
   * other than 0 then holds no capability, capabilities(7) "Effect of user
   * ID changes on capabilities"), then umask(2) when given. Steps that need
   * root (raised limits) go before it.
   */
  | { kind: 'user'; uid: number; gid: number; groups: readonly number[]; umask?: number }
  /**
   * capset(2) with empty effective, permitted and inheritable sets (which
   * empties the ambient set too): with no_new_privs, an exec cannot give
   * them back, not even to uid 0 (cap_bprm_creds_from_file() in
   * security/commoncap.c keeps what an exec gains within the old permitted
   * set). With `bounding`, first PR_CAPBSET_DROP of capabilities 0…lastCap
   * (needs CAP_SETPCAP; each drop is best-effort, the capset is fatal).
   */
  | { kind: 'dropCapabilities'; bounding: boolean; lastCap: number }
  /** The full persona value; use {@link personalityWithoutRandomization} for ASLR off. */
  | { kind: 'personality'; persona: number }
  | { kind: 'disableTransparentHugePages' }
  | { kind: 'cpuAffinity'; cpus: readonly number[] }
  | { kind: 'rlimit'; resource: RlimitResource; soft: bigint; hard: bigint }
  /** `rulesetFd` is a descriptor of this process; launch() passes it to the child. */
  | { kind: 'landlockRestrictSelf'; rulesetFd: number; flags?: number }
  /**
   * seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). With `listener`, the
   * returned fd number is what the handshake reports to the parent.
   */
  | { kind: 'seccompFilter'; program: Buffer; flags: number; listener?: boolean }
  /**
   * Forks. The parent stays behind as the sandbox's reaper (see
   * {@link encodeForkReaper}); the steps after this one run in the child only.
   * With `brokerFd` (a descriptor of this process, one end of a
   * SOCK_SEQPACKET socketpair, see {@link brokerSocketPair}; launch() passes
   * it to the child), the reaper also runs the syscalls requested over it
   * ({@link brokerCall}), in its own Landlock domain and with its credentials.
   * The program does not keep it: it is closed at exec like every fd above 2.
   */
  | { kind: 'forkReaper'; parentPid: number; killTarget: number; brokerFd?: number };

export function personalityWithoutRandomization(current: number): number {
  return (current | ADDR_NO_RANDOMIZE) >>> 0;
}

export interface StepContext {
  arch: Arch;
  encoder: ScriptEncoder;
  /** The child's number for a descriptor of this process passed along. */
  childFd(parentFd: number): number;
  /** The slot the listener fd number is stored in. */
  listenerSlot: bigint;
}

function sys(context: StepContext, name: string): number {
  return syscallNumber(name, context.arch);
}

/** How many stub steps (syscalls) a launch step becomes. */
export function syscallsOfStep(step: LaunchStep): number {
  if (step.kind === 'forkReaper') return 8;
  if (step.kind === 'parentDeathSignal' || step.kind === 'controllingTerminal') return 2;
  if (step.kind === 'user') return step.umask !== undefined ? 4 : 3;
  if (step.kind === 'dropCapabilities') return (step.bounding ? step.lastCap + 1 : 0) + 1;
  return 1;
}

export function encodeStep(step: LaunchStep, context: StepContext): void {
  const { encoder } = context;
  switch (step.kind) {
    case 'setsid':
      encoder.step({ name: 'setsid', nr: sys(context, 'setsid'), args: [], fatal: true });
      return;
    case 'controllingTerminal':
      encodeControllingTerminal(encoder, context.arch);
      return;
    case 'setpgid':
      encoder.step({ name: 'setpgid', nr: sys(context, 'setpgid'), args: [0, 0], fatal: true });
      return;
    case 'chdir':
      encoder.step({
        name: `chdir ${step.path}`,
        nr: sys(context, 'chdir'),
        args: [encoder.cstring(step.path)],
        fatal: true,
      });
      return;
    case 'parentDeathSignal':
      encoder.step({
        name: 'prctl(PR_SET_PDEATHSIG)',
        nr: sys(context, 'prctl'),
        args: [PR_SET_PDEATHSIG, step.signal, 0, 0, 0],
        fatal: true,
      });
      // The parent may have died between fork and prctl: then no signal comes
      // and getppid() already names a reaper instead (prctl(2), PR_SET_PDEATHSIG).
      encoder.step({
        name: 'getppid (parent still alive)',
        nr: sys(context, 'getppid'),
        args: [],
        expect: step.parentPid,
      });
      return;
    case 'noNewPrivs':
      encoder.step({
        name: 'prctl(PR_SET_NO_NEW_PRIVS)',
        nr: sys(context, 'prctl'),
        args: [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
        fatal: true,
      });
      return;
    case 'user': {
      const groups = Buffer.alloc(Math.max(4, step.groups.length * 4));
      for (const [index, gid] of step.groups.entries()) groups.writeUInt32LE(gid, index * 4);
      encoder.step({
        name: `setgroups(${step.groups.join(',')})`,
        nr: sys(context, 'setgroups'),
        args: [step.groups.length, encoder.bytes(groups)],
        fatal: true,
      });
      encoder.step({
        name: `setresgid(${step.gid})`,
        nr: sys(context, 'setresgid'),
        args: [step.gid, step.gid, step.gid],
        fatal: true,
      });
      encoder.step({
        name: `setresuid(${step.uid})`,
        nr: sys(context, 'setresuid'),
        args: [step.uid, step.uid, step.uid],
        fatal: true,
      });
      // umask(2) cannot fail; it returns the previous mask.
      if (step.umask !== undefined) {
        encoder.step({ name: 'umask', nr: sys(context, 'umask'), args: [step.umask & 0o777] });
      }
      return;
    }
    case 'dropCapabilities': {
      if (step.bounding) {
        for (let cap = 0; cap <= step.lastCap; cap++) {
          encoder.step({
            name: `prctl(PR_CAPBSET_DROP, ${cap})`,
            nr: sys(context, 'prctl'),
            args: [PR_CAPBSET_DROP, cap, 0, 0, 0],
          });
        }
      }
      const header = Buffer.alloc(8);
      header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0); // pid 0: this process
      encoder.step({
        name: 'capset',
        nr: sys(context, 'capset'),
        args: [encoder.bytes(header), encoder.bytes(Buffer.alloc(24))],
        fatal: true,
      });
      return;
    }
    case 'personality':
      encoder.step({
        name: 'personality',
        nr: sys(context, 'personality'),
        args: [step.persona],
        fatal: true,
      });
      return;
    case 'disableTransparentHugePages':
      encoder.step({
        name: 'prctl(PR_SET_THP_DISABLE)',
        nr: sys(context, 'prctl'),
        args: [PR_SET_THP_DISABLE, 1, 0, 0, 0],
        fatal: true,
      });
      return;
    case 'cpuAffinity': {
      const mask = cpuMask(step.cpus);
      encoder.step({
        name: 'sched_setaffinity',
        nr: sys(context, 'sched_setaffinity'),
        args: [0, mask.length, encoder.bytes(mask)],
        fatal: true,
      });
      return;
    }
    case 'rlimit': {
      const limit = Buffer.alloc(16);
      limit.writeBigUInt64LE(step.soft, 0);
      limit.writeBigUInt64LE(step.hard, 8);
      encoder.step({
        name: `prlimit64(RLIMIT_${step.resource})`,
        nr: sys(context, 'prlimit64'),
        args: [0, RLIMIT[step.resource], encoder.bytes(limit), 0],
        fatal: true,
      });
      return;
    }
    case 'landlockRestrictSelf':
      encoder.step({
        name: 'landlock_restrict_self',
        nr: sys(context, 'landlock_restrict_self'),
        args: [context.childFd(step.rulesetFd), step.flags ?? 0],
        fatal: true,
      });
      return;
    case 'forkReaper':
      encodeForkReaper(step, context);
      return;
    case 'seccompFilter': {
      const filter = encoder.bytes(step.program);
      const fprog = Buffer.alloc(16);
      fprog.writeUInt16LE(step.program.length / 8, 0);
      fprog.writeBigUInt64LE(filter, 8);
      encoder.step({
        name: 'seccomp',
        nr: sys(context, 'seccomp'),
        args: [1 /* SECCOMP_SET_MODE_FILTER */, step.flags, encoder.bytes(fprog)],
        fatal: true,
        ...(step.listener ? { store: context.listenerSlot } : {}),
      });
      return;
    }
  }
}

/** The steps of a `controllingTerminal` launch step, also what a joined program with a terminal runs. */
export function encodeControllingTerminal(encoder: ScriptEncoder, arch: Arch): void {
  // setsid(2) fails for a group leader. A session leader without a terminal
  // takes stdin's with TIOCSCTTY, which also makes its group the terminal's
  // foreground one (ioctl_tty(2)).
  encoder.step({ name: 'setsid', nr: syscallNumber('setsid', arch), args: [], fatal: true });
  encoder.step({
    name: 'ioctl(0, TIOCSCTTY)',
    nr: syscallNumber('ioctl', arch),
    args: [0, TIOCSCTTY, 0],
    fatal: true,
  });
}

/** close_range(3, ~0U, CLOSE_RANGE_CLOEXEC): every fd above stdio closes at exec. */
export function encodeCloseExtraFds(context: StepContext): void {
  context.encoder.step({
    name: 'close_range',
    nr: sys(context, 'close_range'),
    args: [3, 0xffffffff, CLOSE_RANGE_CLOEXEC],
    fatal: true,
  });
}

/**
 * The broker block at `address` (BROKER_BLOCK): two msghdrs and their
 * iovecs, pointing at the request buffer and at the control buffers, the one
 * to send holding an SCM_RIGHTS header for one descriptor.
 */
function brokerBlock(address: bigint): Buffer {
  const at = (offset: number) => address + BigInt(offset);
  const block = Buffer.alloc(BROKER_BLOCK.request); // the request buffer stays zero
  encodeMsghdrInto(block, BROKER_BLOCK.recvMsg, {
    iov: at(BROKER_BLOCK.recvIov),
    iovLen: 1n,
    control: at(BROKER_BLOCK.recvControl),
  });
  encodeMsghdrInto(block, BROKER_BLOCK.sendMsg, {
    iov: at(BROKER_BLOCK.sendIov),
    iovLen: 1n,
    control: at(BROKER_BLOCK.sendControl),
  });
  encodeIovecInto(block, BROKER_BLOCK.recvIov, {
    base: at(BROKER_BLOCK.request),
    len: BigInt(BROKER_REQUEST_MAX),
  });
  encodeIovecInto(block, BROKER_BLOCK.sendIov, { base: at(BROKER_BLOCK.request), len: 0n });
  encodeCmsghdrInto(block, BROKER_BLOCK.sendControl, {
    len: BigInt(cmsgLen(4)),
    level: SOL_SOCKET,
    type: SCM_RIGHTS,
  });
  return block;
}

/** Signals the reaper turns into SIGKILL, SIGSTOP and SIGCONT for the whole sandbox. */
export const REAPER_SIGNAL = { killAll: 34, stopAll: 35, continueAll: 36 } as const;

// Signals the reaper passes on to the sandbox unchanged when it receives them.
const FORWARDED_SIGNALS = [1, 2, 3, 10, 12, 15, 18, 28]; // HUP INT QUIT USR1 USR2 TERM CONT WINCH

function sigset(signals: readonly number[]): Buffer {
  let mask = 0n;
  for (const signal of signals) mask |= 1n << BigInt(signal - 1);
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(mask);
  return set;
}

/** Where {@link encodeReaperData} placed what the reaper reads. */
export interface ReaperData {
  /** The ReaperParams block (REAPER_PARAM), for the fork step's `reaper`. */
  params: bigint;
  /** The pollfd array: the signalfd's fd goes at +0, the pidfd's at +8 (steps' `store`). */
  pollfds: bigint;
  /** The signals to block and take on the signalfd, a sigset_t of 8 bytes. */
  blocked: bigint;
}

/**
 * Places the data of a fork-reaper step: ReaperParams, its pollfds, signal
 * map, siginfo buffer and (with `brokerFd`) broker block, and the set of
 * signals the reaper takes on its signalfd. The broker block comes after
 * everything else the reaper reads, so that a brokered syscall writing past
 * its request's data reaches only what the child alone uses.
 */
export function encodeReaperData(
  step: Extract<LaunchStep, { kind: 'forkReaper' }>,
  context: StepContext,
): ReaperData {
  const { encoder } = context;
  // struct pollfd [3] { fd, events, revents }: steps store the signalfd and
  // pidfd in [0] and [1]; [2] is the broker, or -1.
  const pollfdArray = Buffer.alloc(REAPER_POLLFDS_SIZE);
  pollfdArray.writeInt32LE(step.brokerFd === undefined ? -1 : context.childFd(step.brokerFd), 16);
  pollfdArray.writeInt16LE(POLLIN, 20);
  const pollfds = encoder.bytes(pollfdArray);
  const sigmap = Buffer.alloc(65);
  for (const signal of FORWARDED_SIGNALS) sigmap[signal] = signal;
  sigmap[REAPER_SIGNAL.killAll] = SIGKILL;
  sigmap[REAPER_SIGNAL.stopAll] = SIGSTOP;
  sigmap[REAPER_SIGNAL.continueAll] = SIGCONT;

  const params = Buffer.alloc(REAPER_PARAMS_SIZE);
  params.writeBigUInt64LE(pollfds, REAPER_PARAM.pollfds);
  params.writeBigInt64LE(BigInt(step.killTarget), REAPER_PARAM.killTarget);
  params.writeBigUInt64LE(encoder.bytes(sigmap), REAPER_PARAM.sigmap);
  params.writeBigUInt64LE(encoder.bytes(Buffer.alloc(128)), REAPER_PARAM.siginfo);
  params.writeBigUInt64LE(3n, REAPER_PARAM.closeLast); // stdio and the control socket
  const paramsAddress = encoder.zeros(REAPER_PARAMS_SIZE);
  if (step.brokerFd !== undefined) {
    const block = encoder.zeros(BROKER_BLOCK_SIZE);
    encoder.fill(block, brokerBlock(block));
    params.writeBigUInt64LE(block + BigInt(BROKER_BLOCK.request), REAPER_PARAM.broker);
  }
  encoder.fill(paramsAddress, params);
  const blocked = encoder.bytes(
    sigset([SIGCHLD, ...FORWARDED_SIGNALS, ...Object.values(REAPER_SIGNAL)]),
  );
  return { params: paramsAddress, pollfds, blocked };
}

/**
 * The reaper: the stub forks; the parent (a child subreaper, so every orphan
 * of the sandbox is reparented to it) reaps every process, forwards signals to
 * `killTarget`, kills `killTarget` when the process `parentPid` (Node) dies,
 * and exits with its first child's status once nothing is left. Only with a
 * Landlock signal scope around the sandbox is `killTarget` -1 safe: kill(2)
 * then reaches exactly the processes of the nested domain (landlock(7),
 * "Scoped access rights").
 */
function encodeForkReaper(
  step: Extract<LaunchStep, { kind: 'forkReaper' }>,
  context: StepContext,
): void {
  const { encoder } = context;
  const { params, pollfds, blocked: blockedAddress } = encodeReaperData(step, context);
  encoder.step({
    name: 'prctl(PR_SET_CHILD_SUBREAPER)',
    nr: sys(context, 'prctl'),
    args: [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0],
    fatal: true,
  });
  encoder.step({
    name: 'pidfd_open (parent)',
    nr: sys(context, 'pidfd_open'),
    args: [step.parentPid, 0],
    fatal: true,
    store: pollfds + 8n,
  });
  // Checked after pidfd_open: if the parent had died and its pid been reused,
  // we would already have been reparented (see parentDeathSignal).
  encoder.step({
    name: 'getppid (parent still alive)',
    nr: sys(context, 'getppid'),
    args: [],
    expect: step.parentPid,
  });
  encoder.step({
    name: 'rt_sigprocmask(SIG_BLOCK)',
    nr: sys(context, 'rt_sigprocmask'),
    args: [SIG_BLOCK, blockedAddress, 0, 8],
    fatal: true,
  });
  encoder.step({
    name: 'signalfd4',
    nr: sys(context, 'signalfd4'),
    args: [-1, blockedAddress, 8, SFD_NONBLOCK | SFD_CLOEXEC],
    fatal: true,
    store: pollfds,
  });
  encoder.step({
    name: 'clone (reaper)',
    nr: sys(context, 'clone'),
    args: [SIGCHLD, 0, 0, 0, 0],
    reaper: params,
  });
  // From here on: the child.
  encoder.step({
    name: 'rt_sigprocmask(SIG_SETMASK)',
    nr: sys(context, 'rt_sigprocmask'),
    args: [SIG_SETMASK, encoder.bytes(Buffer.alloc(8)), 0, 8],
    fatal: true,
  });
  encoder.step({
    name: 'prctl(PR_SET_PDEATHSIG)',
    nr: sys(context, 'prctl'),
    args: [PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0],
    fatal: true,
  });
}
