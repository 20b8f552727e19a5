import { type ChildProcess, type StdioNull, type StdioPipe, spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { remoteAccess } from '../access.js';
import { brokerSocketPair } from '../broker.js';
import { AT_EMPTY_PATH } from '../constants.js';
import { ERRNO } from '../errno.js';
import { errnoMessage, errnoName, SysError } from '../errors.js';
import { addressOf, close, pidfdGetfd, pidfdOpen, trySyscall } from '../libc.js';
import { decodeScmRights, encodeScmRights } from '../structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from '../structs/iovec.js';
import {
  decodeMsghdr,
  encodeMsghdrInto,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSGHDR_SIZE,
} from '../structs/msghdr.js';
import { type Arch, hostArch, syscallNumber } from '../syscalls/index.js';
import { stubExecutable } from './executable.js';
import { decodeStubFailure, ScriptEncoder, STUB_FAILURE_SIZE } from './script.js';
import {
  encodeCloseExtraFds,
  encodeStep,
  type LaunchStep,
  type StepContext,
  syscallsOfStep,
} from './steps.js';
import { encodeForkZygote, ZYGOTE_STEPS } from './zygote.js';

/** One of the child's standard streams, as `child_process.spawn` takes it. */
export type StdioEntry = StdioPipe | StdioNull | 'inherit' | number | Readable | Writable;

export interface LaunchOptions {
  /** Absolute path of the program to run (see {@link resolveExecutable}). */
  path: string;
  /** The program's argv, passed exactly (argv[0] included). */
  argv: readonly string[];
  /** The program's whole environment: `KEY=VALUE` strings or a record. */
  env: readonly string[] | Readonly<Record<string, string>>;
  /** Confinement steps, run in order before the handshake and exec. */
  steps?: readonly LaunchStep[];
  stdio?: readonly [StdioEntry, StdioEntry, StdioEntry];
  /**
   * After its steps the child always reports (its pid, the listener fd).
   * With a handshake (the default) it then waits for {@link Launched.release},
   * as a supervisor needs; without, it goes straight on to exec.
   */
  handshake?: boolean;
  arch?: Arch;
  /**
   * How the seccomp listener comes to this process: `pidfd_getfd` of the
   * child's, or sent by the child over a socket (`SCM_RIGHTS`), for where a
   * seccomp profile refuses pidfd_getfd (a container's default). Default:
   * pidfd_getfd where it works. With `socket`, the child's last step before
   * the report is a sendmsg(2): its filter must not notify sendmsg, or the
   * child waits for a supervisor that has no listener yet.
   */
  listenerTransfer?: 'pidfd' | 'socket';
  /**
   * Execute a descriptor of this process instead of `path`: execveat(fd,
   * "", AT_EMPTY_PATH). `interpreterFd` is handed down too (close-on-exec,
   * like every descriptor handed down), and `file` is given its number in
   * the child. What `file` returns is the caller's to close.
   */
  exec?: {
    interpreterFd: number | null;
    file(interpreterChildFd: number | null): number;
  };
  /**
   * Fork a zygote after the handshake, so programs can join the sandbox
   * later ({@link joinSandbox}): `socketFd` is the child's end of a
   * SOCK_SEQPACKET socketpair ({@link brokerSocketPair}), passed to the
   * child like the steps' descriptors; close it once launch() has returned.
   */
  zygote?: { socketFd: number };
}

export interface LaunchReport {
  /** The seccomp listener's fd number in the child, when a step created one. */
  listenerFd: number | null;
  /** The pid of the process that execs the program (after a `forkReaper` step, not the stub's). */
  pid: number;
}

export interface Launched {
  child: ChildProcess;
  pid: number;
  /** Settles when every step has run: resolves with the report, or rejects with a {@link LaunchError}. */
  ready: Promise<LaunchReport>;
  /** Duplicates the child's seccomp listener into this process (needs `ready` first). */
  takeListener(): number;
  /** Lets the child go on to exec; resolves once exec succeeded, rejects with a {@link LaunchError}. */
  release(): Promise<void>;
  /** Resolves once the child has exited and its stdio streams have closed (or it never started). */
  closed: Promise<void>;
}

/** A launch that failed in the child: names the step, and the errno when there is one. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
  readonly errno: number | undefined;
  readonly code: string | undefined;

  constructor(
    readonly step: string,
    detail: { errno?: number; message?: string; cause?: unknown },
  ) {
    const errno = detail.errno;
    const reason =
      detail.message ?? (errno !== undefined ? `${errnoName(errno)} (${errnoMessage(errno)})` : '');
    super(`sandlock: ${step} failed: ${reason}`, { cause: detail.cause });
    this.errno = errno;
    this.code = errno !== undefined ? errnoName(errno) : undefined;
  }
}

const SPAWN_STEP = 'spawn of the exec stub';

/**
 * A failure in this process while launching (a SysError or a Node error) as
 * a LaunchError of `step`, keeping its errno; `ownMessage`: say what failed
 * in the error's own words rather than by its errno alone.
 */
function launchErrorOf(step: string, error: unknown, ownMessage = true): LaunchError {
  if (error instanceof LaunchError) return error;
  const errno = (error as { errno?: unknown }).errno;
  const message = (error as Error)?.message ?? String(error);
  // SysError's errno is positive, a Node (libuv) error's negative.
  if (typeof errno === 'number' && errno !== 0) {
    return new LaunchError(step, {
      errno: Math.abs(errno),
      ...(ownMessage ? { message } : {}),
      cause: error,
    });
  }
  return new LaunchError(step, { message, cause: error });
}

/**
 * Throws EMFILE (or ENFILE) unless this process can open the descriptors a
 * spawn with `stdio` needs: a socket pair per pipe and libuv's exec-status
 * pipe here, and in the child a spare one per entry it may have to move.
 * Node leaks the parent ends of the pipes when libuv fails past them (at the
 * exec-status pipe, or in the child): libuv hands them to their streams, and
 * Node returns on EMFILE before it keeps the streams (uv_spawn in
 * deps/uv/src/unix/process.c, ChildProcess.spawn in
 * lib/internal/child_process.js). Measured with Node 20: 4 sockets per failed
 * launch. This thread opens no descriptor between the probe and the spawn;
 * a worker thread still may, so it narrows the leak rather than ruling it out.
 */
function assertDescriptorsFor(stdio: readonly unknown[]): void {
  const pipes = stdio.filter((entry) => entry === 'pipe').length;
  const probes: number[] = [];
  try {
    for (let index = 0; index < 2 * pipes + 2 + stdio.length; index++) {
      probes.push(openSync('/dev/null', 'r'));
    }
  } finally {
    for (const fd of probes) closeSync(fd);
  }
}

// Child fd layout: 0-2 stdio, 3 the control socket (script in; report, go and
// failures over it), 4 the stub memfd, 5.. the descriptors steps hand down.
const CONTROL_FD = 3;
const MEMFD_FD = 4;
const FIRST_PASSED_FD = 5;
/** Tags a handshake report; step indexes are always smaller. */
const REPORT_TAG = 0x54524f5045524c53n; // "SLREPORT"
const PID_TAG = 0x44495054524c53n; // "SLRTPID"

function assertNoNul(what: string, value: string): void {
  if (value.includes('\0')) throw new TypeError(`sandlock: ${what} contains a NUL byte`);
}

function environmentStrings(env: LaunchOptions['env']): string[] {
  return Array.isArray(env)
    ? [...(env as readonly string[])]
    : Object.entries(env as Record<string, string>).map(([key, value]) => `${key}=${value}`);
}

/**
 * Finds `command` the way execvp(3) would, in `pathList` (colon-separated);
 * names containing a slash are taken as they are. Returns undefined when no
 * executable file is found.
 */
export function resolveExecutable(
  command: string,
  pathList: string | undefined,
): string | undefined {
  const isExecutable = (candidate: string) => {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return command;
  for (const dir of (pathList ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir || '.', command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

interface Encoded {
  script: Buffer;
  stepNames: string[];
  passedFds: number[];
}

/**
 * A msghdr sending one byte and one descriptor (SCM_RIGHTS) in the script
 * data; returns its address and the address of the descriptor's slot, which
 * the seccomp step's result is stored to (8 bytes: the int and the record's
 * padding, CMSG_SPACE(4) = 24).
 */
function listenerMessage(encoder: ScriptEncoder): { message: bigint; slot: bigint } {
  const control = encoder.bytes(encodeScmRights([-1]));
  const payload = encoder.bytes(Buffer.from([1]));
  const iov = Buffer.alloc(IOVEC_SIZE);
  encodeIovecInto(iov, 0, { base: payload, len: 1n });
  const iovAddress = encoder.bytes(iov);
  const header = Buffer.alloc(MSGHDR_SIZE);
  encodeMsghdrInto(header, 0, {
    iov: iovAddress,
    iovLen: 1n,
    control,
    controlLen: BigInt(encodeScmRights([-1]).length),
  });
  return { message: encoder.bytes(header), slot: control + 16n };
}

function encodeLaunchScript(
  options: LaunchOptions,
  arch: Arch,
  handshake: boolean,
  channelFd: number | null,
): Encoded {
  const encoder = new ScriptEncoder({
    maxSteps:
      (options.steps ?? []).reduce((sum, step) => sum + syscallsOfStep(step), 0) +
      (channelFd !== null ? 6 : 5) +
      (options.zygote !== undefined ? ZYGOTE_STEPS : 0),
  });
  const passedFds: number[] = [];
  // The report is two records, {REPORT_TAG, listener fd} and {PID_TAG, pid}: a
  // seccomp step that creates a listener stores the fd number straight into
  // the first one, getpid() into the second (after a forkReaper step, the pid
  // of the program rather than of the reaper).
  const report = Buffer.alloc(32);
  report.writeBigUInt64LE(REPORT_TAG, 0);
  report.writeBigInt64LE(-1n, 8);
  report.writeBigUInt64LE(PID_TAG, 16);
  const reportAddress = encoder.bytes(report);
  const sent = channelFd !== null ? listenerMessage(encoder) : null;
  const context: StepContext = {
    arch,
    encoder,
    listenerSlot: sent?.slot ?? reportAddress + 8n,
    childFd(parentFd) {
      let index = passedFds.indexOf(parentFd);
      if (index < 0) index = passedFds.push(parentFd) - 1;
      return FIRST_PASSED_FD + index;
    },
  };
  for (const step of options.steps ?? []) encodeStep(step, context);
  if (sent !== null && channelFd !== null) {
    encoder.step({
      name: 'send the seccomp listener to parent',
      nr: syscallNumber('sendmsg', arch),
      args: [context.childFd(channelFd), sent.message, 0],
      expect: 1,
    });
  }

  encoder.step({
    name: 'getpid',
    nr: syscallNumber('getpid', arch),
    args: [],
    store: reportAddress + 24n,
  });
  encoder.step({
    name: 'report to parent',
    nr: syscallNumber('write', arch),
    args: [CONTROL_FD, reportAddress, 32],
    expect: 32,
  });
  if (handshake) {
    const go = encoder.u64Slot(0n);
    encoder.step({
      name: 'wait for parent',
      nr: syscallNumber('read', arch),
      args: [CONTROL_FD, go, 1],
      expect: 1,
    });
  }
  if (options.zygote !== undefined) {
    encodeForkZygote(encoder, arch, context.childFd(options.zygote.socketFd));
  }
  encodeCloseExtraFds(context);

  assertNoNul('program path', options.path);
  const argv = options.argv.map((arg) => {
    assertNoNul('argument', arg);
    return encoder.cstring(arg);
  });
  const envp = environmentStrings(options.env).map((entry) => {
    assertNoNul('environment entry', entry);
    return encoder.cstring(entry);
  });
  if (options.exec !== undefined) {
    const { interpreterFd } = options.exec;
    const interpreter = interpreterFd === null ? null : context.childFd(interpreterFd);
    const file = context.childFd(options.exec.file(interpreter));
    encoder.step({
      name: `execve ${options.path}`,
      nr: syscallNumber('execveat', arch),
      args: [
        file,
        encoder.cstring(''),
        encoder.pointerArray(argv),
        encoder.pointerArray(envp),
        AT_EMPTY_PATH,
      ],
      fatal: true,
    });
    return { script: encoder.encode(CONTROL_FD), stepNames: encoder.stepNames(), passedFds };
  }
  encoder.step({
    name: `execve ${options.path}`,
    nr: syscallNumber('execve', arch),
    args: [encoder.cstring(options.path), encoder.pointerArray(argv), encoder.pointerArray(envp)],
    fatal: true,
  });
  return { script: encoder.encode(CONTROL_FD), stepNames: encoder.stepNames(), passedFds };
}

/**
 * Starts `options.path` through the exec stub: the child runs the
 * confinement steps, reports (handshake), waits for {@link Launched.release},
 * closes every fd above 2 and execs. Node does the stdio plumbing, exit
 * tracking and reaping.
 */
export function launch(options: LaunchOptions): Launched {
  const arch = options.arch ?? hostArch();
  const handshake = options.handshake ?? true;
  if (options.argv.length === 0) throw new TypeError('sandlock: argv must not be empty');
  const wantsListener = (options.steps ?? []).some(
    (step) => step.kind === 'seccompFilter' && step.listener === true,
  );
  const transfer = options.listenerTransfer ?? (remoteAccess().pidfdGetfd ? 'pidfd' : 'socket');
  let channel: { supervisor: number; reaper: number } | null = null;
  if (wantsListener && transfer === 'socket') {
    try {
      channel = brokerSocketPair();
    } catch (error) {
      throw launchErrorOf('listener socket', error);
    }
  }
  let encoded: Encoded;
  try {
    encoded = encodeLaunchScript(options, arch, handshake, channel?.reaper ?? null);
  } catch (error) {
    if (channel !== null) {
      close(channel.supervisor);
      close(channel.reaper);
    }
    throw error;
  }
  const { script, stepNames, passedFds } = encoded;
  // The child has its copy once spawn has returned (or failed).
  const closeChildEnd = () => {
    if (channel !== null && channel.reaper >= 0) {
      close(channel.reaper);
      channel.reaper = -1;
    }
  };
  const closeChannel = () => {
    closeChildEnd();
    if (channel !== null && channel.supervisor >= 0) {
      close(channel.supervisor);
      channel.supervisor = -1;
    }
  };

  let executable: ReturnType<typeof stubExecutable>;
  try {
    executable = stubExecutable(arch);
  } catch (error) {
    closeChannel();
    throw launchErrorOf('exec stub', error);
  }
  const stdio: (StdioEntry | 'pipe' | null)[] = [...(options.stdio ?? ['pipe', 'pipe', 'pipe'])];
  stdio.push('pipe');
  stdio.push(executable.kind === 'memfd' ? executable.fd : 'ignore');
  stdio.push(...passedFds);
  const file = executable.kind === 'memfd' ? `/proc/self/fd/${MEMFD_FD}` : executable.path;

  let child: ChildProcess;
  try {
    assertDescriptorsFor(stdio);
    child = spawn(file, [], {
      argv0: 'sandlock-exec-stub',
      env: {},
      stdio: stdio as Parameters<typeof spawn>[2]['stdio'],
      windowsHide: true,
    });
  } catch (error) {
    closeChannel();
    throw launchErrorOf(SPAWN_STEP, error, false);
  }
  closeChildEnd();
  child.once('close', closeChannel);
  // When spawn fails with EMFILE or ENFILE, Node returns before it sets up
  // the child's stdio (child.stdio stays undefined) and reports the failure
  // as an 'error' event on the next tick (lib/internal/child_process.js).
  const control = child.stdio?.[CONTROL_FD] as Socket | undefined;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  let reportResolve!: (report: LaunchReport) => void;
  let reportReject!: (error: Error) => void;
  const ready = new Promise<LaunchReport>((resolve, reject) => {
    reportResolve = resolve;
    reportReject = reject;
  });
  let execResolve!: () => void;
  let execReject!: (error: Error) => void;
  const execDone = new Promise<void>((resolve, reject) => {
    execResolve = resolve;
    execReject = reject;
  });
  // Callers may only look at one of the two; neither rejection is unhandled.
  ready.catch(() => {});
  execDone.catch(() => {});

  let reported: LaunchReport | null = null;
  let listenerFd: number | null = null;
  let pending = Buffer.alloc(0);
  let failed = false;

  const fail = (error: Error) => {
    failed = true;
    reportReject(error);
    execReject(error);
  };

  control?.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= STUB_FAILURE_SIZE) {
      const record = pending.subarray(0, STUB_FAILURE_SIZE);
      pending = pending.subarray(STUB_FAILURE_SIZE);
      const tag = record.readBigUInt64LE(0);
      if (tag === REPORT_TAG) {
        const fd = record.readBigInt64LE(8);
        listenerFd = fd >= 0n ? Number(fd) : null;
        continue;
      }
      if (tag === PID_TAG) {
        reported = { listenerFd, pid: Number(record.readBigInt64LE(8)) };
        reportResolve(reported);
        continue;
      }
      const failure = decodeStubFailure(record);
      const step = stepNames[failure.step] ?? `step ${failure.step}`;
      fail(
        failure.errno !== undefined
          ? new LaunchError(step, { errno: failure.errno })
          : new LaunchError(step, { message: `unexpected result ${failure.result}` }),
      );
    }
  });
  control?.on('error', () => {});
  // The control socket is close-on-exec in the child: end of stream with no
  // failure record means the exec happened (or the child died, which 'exit' tells).
  control?.on('end', () => {
    control.destroy();
    if (failed) return;
    if (!reported) {
      fail(new LaunchError('exec stub', { message: 'exited before finishing its steps' }));
      return;
    }
    execResolve();
  });
  child.on('error', (error) => fail(launchErrorOf(SPAWN_STEP, error, false)));

  if (control) {
    control.write(script);
  }

  let released = false;
  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    ready,
    closed,
    takeListener() {
      if (channel !== null) {
        if (!reported) throw new Error('sandlock: the child has not reported yet');
        return receiveListener(channel.supervisor);
      }
      if (!reported || reported.listenerFd === null) {
        throw new Error('sandlock: no seccomp listener was reported by the child');
      }
      const pidfd = pidfdOpen(reported.pid);
      try {
        return pidfdGetfd(pidfd, reported.listenerFd);
      } finally {
        close(pidfd);
      }
    },
    async release() {
      if (handshake && !released) {
        released = true;
        await ready;
        control?.write(Buffer.from([1]));
      }
      return execDone;
    },
  };
}

/** The descriptor the child sent over the listener socket (sent before its report, so queued now). */
function receiveListener(socket: number): number {
  if (socket < 0) throw new Error('sandlock: the listener socket is closed');
  const payload = Buffer.alloc(1);
  const control = Buffer.alloc(encodeScmRights([-1]).length);
  const header = Buffer.alloc(MSGHDR_SIZE + IOVEC_SIZE);
  encodeIovecInto(header, MSGHDR_SIZE, { base: addressOf(payload), len: 1n });
  encodeMsghdrInto(header, 0, {
    iov: addressOf(header) + BigInt(MSGHDR_SIZE),
    iovLen: 1n,
    control: addressOf(control),
    controlLen: BigInt(control.length),
  });
  let length: number;
  do {
    length = trySyscall('recvmsg', socket, header, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (length === -ERRNO.EINTR);
  if (length < 0) throw new SysError('recvmsg', -length, 'the seccomp listener');
  const received = decodeMsghdr(header);
  const fds = decodeScmRights(control, Number(received.controlLen));
  if (length !== 1 || fds.length !== 1 || received.flags & MSG_CTRUNC) {
    for (const fd of fds) close(fd);
    throw new Error('sandlock: the child sent no seccomp listener');
  }
  return fds[0]!;
}
