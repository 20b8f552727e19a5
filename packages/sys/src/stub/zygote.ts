// The sandbox's zygote (the stub's `zygote`, ZYGOTE_PARAM): forked on the
// program's side once the whole confinement is in place (after the
// handshake, so its forks are seen by the supervisor), it forks a process for
// each request, which runs a launch script of its own. That process is in
// the sandbox's own Landlock domains, under its seccomp filters, with its
// credentials, limits and reaper: how a second program joins a running
// sandbox, which no new launch could do (a domain or filter is only ever
// inherited, landlock(7), seccomp(2)).

import { Socket } from 'node:net';
import {
  CLOSE_RANGE_CLOEXEC,
  RLIMIT,
  type RlimitResource,
  SIG_DFL,
  SIG_IGN,
  SIG_SETMASK,
  SIGCHLD,
  SOCK_CLOEXEC,
  SOCK_STREAM,
} from '../constants.js';
import { ERRNO } from '../errno.js';
import { SysError } from '../errors.js';
import { addressOf, close, pidfdOpen, trySyscall } from '../libc.js';
import { pidfdInfo } from '../pidfd-info.js';
import { encodeScmRights } from '../structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from '../structs/iovec.js';
import { encodeMsghdrInto, MSG_NOSIGNAL, MSGHDR_SIZE } from '../structs/msghdr.js';
import { AF_UNIX } from '../structs/sockaddr.js';
import { type Arch, hostArch, syscallNumber } from '../syscalls/index.js';
import { LaunchError } from './launch.js';
import {
  decodeStubFailure,
  ScriptEncoder,
  STUB_FAILURE_SIZE,
  ZYGOTE_PARAM,
  ZYGOTE_PARAMS_SIZE,
} from './script.js';
import { encodeControllingTerminal } from './steps.js';

/** The kernel's struct sigaction (handler, flags, restorer, mask) on x86_64 and aarch64. */
const SIGACTION_SIZE = 32;
/** CMSG_SPACE(4 * 4): the zygote takes exactly four descriptors. */
const ZYGOTE_CONTROL_SIZE = 32;

/**
 * The steps that fork the zygote (a getpid for its parent check, then the
 * fork), its end of the socket being `socketFd` in the child. The fork is not
 * fatal: without a zygote the program runs, and a join fails.
 */
export function encodeForkZygote(encoder: ScriptEncoder, arch: Arch, socketFd: number): void {
  const params = encoder.zeros(ZYGOTE_PARAMS_SIZE);
  const byte = encoder.zeros(8);
  const control = encoder.zeros(ZYGOTE_CONTROL_SIZE);
  const iov = Buffer.alloc(IOVEC_SIZE);
  encodeIovecInto(iov, 0, { base: byte, len: 1n });
  const message = Buffer.alloc(MSGHDR_SIZE);
  encodeMsghdrInto(message, 0, {
    iov: encoder.bytes(iov),
    iovLen: 1n,
    control,
    controlLen: BigInt(ZYGOTE_CONTROL_SIZE),
  });
  const ignore = Buffer.alloc(SIGACTION_SIZE);
  ignore.writeBigUInt64LE(BigInt(SIG_IGN), 0);
  const fields = Buffer.alloc(ZYGOTE_PARAMS_SIZE);
  fields.writeBigUInt64LE(BigInt(socketFd), ZYGOTE_PARAM.socket);
  fields.writeBigUInt64LE(encoder.bytes(message), ZYGOTE_PARAM.message);
  fields.writeBigUInt64LE(encoder.bytes(Buffer.alloc(8, 0xff)), ZYGOTE_PARAM.blocked);
  fields.writeBigUInt64LE(encoder.bytes(ignore), ZYGOTE_PARAM.sigaction);
  fields.writeBigUInt64LE(encoder.zeros(STUB_FAILURE_SIZE), ZYGOTE_PARAM.failure);
  encoder.fill(params, fields);
  encoder.step({
    name: 'getpid (zygote parent)',
    nr: syscallNumber('getpid', arch),
    args: [],
    store: params + BigInt(ZYGOTE_PARAM.parent),
  });
  encoder.step({
    name: 'clone (zygote)',
    nr: syscallNumber('clone', arch),
    args: [SIGCHLD, 0, 0, 0, 0],
    zygote: params,
  });
}

/** The steps {@link encodeForkZygote} adds. */
export const ZYGOTE_STEPS = 2;

export interface JoinOptions {
  /** The program, as the sandbox sees it (execve(2) inside the sandbox). */
  path: string;
  argv: readonly string[];
  /** `KEY=VALUE` strings: the whole environment. */
  env: readonly string[];
  /** Descriptors of this process for the program's stdin, stdout and stderr. */
  stdio: readonly [number, number, number];
  /** The working directory, as the sandbox sees it. */
  cwd?: string;
  umask?: number;
  /** Limits set before exec (lowering only: the sandbox holds no capability). */
  rlimits?: readonly { resource: RlimitResource; soft: bigint; hard: bigint }[];
  /**
   * `stdio[0]` is a terminal the program gets as its controlling terminal:
   * it runs in a session of its own (setsid) whose foreground process group
   * it is (TIOCSCTTY), so ^C, job control and /dev/tty work.
   */
  terminal?: boolean;
}

export interface Joined {
  pid: number;
  /** A pidfd of the program (close-on-exec), the caller's to close. */
  pidfd: number;
}

// Child layout: 0-2 stdio, 3 the socket the script comes in on (reports,
// failures and the go byte over it).
const CONTROL_FD = 3;
const PID_TAG = 0x44495054524c53n; // "SLRTPID"
const PARENT_TAG = 0x544e524150524c53n; // "SLRPARNT"
/** Only a hang reaches it. */
const JOIN_TIMEOUT_MS = 60_000;

function encodeJoinScript(
  options: JoinOptions,
  arch: Arch,
): { script: Buffer; stepNames: string[] } {
  const rlimits = options.rlimits ?? [];
  const encoder = new ScriptEncoder({ maxSteps: 13 + rlimits.length });
  const nr = (name: string) => syscallNumber(name, arch);
  // Step 0 is what the zygote reports a failed fork as.
  encoder.step({ name: 'fork in the sandbox', nr: nr('getpid'), args: [] });
  encoder.step({
    name: 'rt_sigprocmask(SIG_SETMASK)',
    nr: nr('rt_sigprocmask'),
    args: [SIG_SETMASK, encoder.bytes(Buffer.alloc(8)), 0, 8],
    fatal: true,
  });
  const byDefault = Buffer.alloc(SIGACTION_SIZE);
  byDefault.writeBigUInt64LE(BigInt(SIG_DFL), 0);
  encoder.step({
    name: 'rt_sigaction(SIGCHLD, SIG_DFL)',
    nr: nr('rt_sigaction'),
    args: [SIGCHLD, encoder.bytes(byDefault), 0, 8],
    fatal: true,
  });
  for (const limit of rlimits) {
    const value = Buffer.alloc(16);
    value.writeBigUInt64LE(limit.soft, 0);
    value.writeBigUInt64LE(limit.hard, 8);
    encoder.step({
      name: `prlimit64(RLIMIT_${limit.resource})`,
      nr: nr('prlimit64'),
      args: [0, RLIMIT[limit.resource], encoder.bytes(value), 0],
      fatal: true,
    });
  }
  // The zygote's child leads no group.
  if (options.terminal === true) encodeControllingTerminal(encoder, arch);
  if (options.umask !== undefined) {
    encoder.step({ name: 'umask', nr: nr('umask'), args: [options.umask] });
  }
  if (options.cwd !== undefined) {
    encoder.step({
      name: `chdir ${options.cwd}`,
      nr: nr('chdir'),
      args: [encoder.cstring(options.cwd)],
      fatal: true,
    });
  }
  encoder.step({
    name: 'close_range',
    nr: nr('close_range'),
    args: [3, 0xffffffff, CLOSE_RANGE_CLOEXEC],
    fatal: true,
  });
  const report = Buffer.alloc(32);
  report.writeBigUInt64LE(PID_TAG, 0);
  report.writeBigUInt64LE(PARENT_TAG, 16);
  const reportAddress = encoder.bytes(report);
  encoder.step({ name: 'getpid', nr: nr('getpid'), args: [], store: reportAddress + 8n });
  encoder.step({ name: 'getppid', nr: nr('getppid'), args: [], store: reportAddress + 24n });
  encoder.step({
    name: 'report to the supervisor',
    nr: nr('write'),
    args: [CONTROL_FD, reportAddress, 32],
    expect: 32,
  });
  encoder.step({
    name: 'wait for the supervisor',
    nr: nr('read'),
    args: [CONTROL_FD, encoder.u64Slot(0n), 1],
    expect: 1,
  });
  encoder.step({
    name: `execve ${options.path}`,
    nr: nr('execve'),
    args: [
      encoder.cstring(options.path),
      encoder.cstringArray([...options.argv]),
      encoder.cstringArray([...options.env]),
    ],
    fatal: true,
  });
  return { script: encoder.encode(CONTROL_FD), stepNames: encoder.stepNames() };
}

/** Sends one byte with `fds` (SCM_RIGHTS) on a SOCK_SEQPACKET socket. */
function sendDescriptors(socket: number, fds: readonly number[]): void {
  const payload = Buffer.from([1]);
  const control = encodeScmRights(fds);
  const header = Buffer.alloc(MSGHDR_SIZE + IOVEC_SIZE);
  encodeIovecInto(header, MSGHDR_SIZE, { base: addressOf(payload), len: 1n });
  encodeMsghdrInto(header, 0, {
    iov: addressOf(header) + BigInt(MSGHDR_SIZE),
    iovLen: 1n,
    control: addressOf(control),
    controlLen: BigInt(control.length),
  });
  let sent: number;
  do {
    sent = trySyscall('sendmsg', socket, header, MSG_NOSIGNAL);
  } while (sent === -ERRNO.EINTR);
  if (sent < 0) throw new SysError('sendmsg', -sent, "to the sandbox's zygote");
}

/**
 * Runs a program in a running sandbox: its zygote (the supervisor's end of
 * the socket given to launch()'s `zygote`) forks it, and it runs `options`'
 * steps and execs. Resolves once the exec has happened; rejects with a
 * {@link LaunchError} naming what failed (the zygote gone, the fork refused,
 * a step).
 */
export async function joinSandbox(zygoteSocket: number, options: JoinOptions): Promise<Joined> {
  if (options.argv.length === 0) throw new TypeError('sandlock: argv must not be empty');
  const { script, stepNames } = encodeJoinScript(options, hostArch());
  const pair = Buffer.alloc(8);
  const made = trySyscall('socketpair', AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
  if (made < 0) throw new LaunchError('join socket', { errno: -made });
  const ours = pair.readInt32LE(0);
  const theirs = pair.readInt32LE(4);
  try {
    sendDescriptors(zygoteSocket, [...options.stdio, theirs]);
  } catch (error) {
    close(ours);
    throw new LaunchError("the sandbox's zygote", {
      message:
        (error as SysError).errno === ERRNO.EPIPE || (error as SysError).errno === ERRNO.ECONNRESET
          ? 'it is gone (the sandbox has ended, or could not fork it)'
          : (error as Error).message,
      cause: error,
    });
  } finally {
    close(theirs);
  }
  const control = new Socket({ fd: ours, readable: true, writable: true });
  return new Promise<Joined>((resolve, reject) => {
    let pending = Buffer.alloc(0);
    let pid = 0;
    let pidfd = -1;
    let failure: LaunchError | null = null;
    const timer = setTimeout(() => {
      failure ??= new LaunchError('join', { message: 'the sandbox did not start it in time' });
      control.destroy();
    }, JOIN_TIMEOUT_MS);
    const finish = () => {
      clearTimeout(timer);
      if (failure === null && pidfd < 0) {
        failure = new LaunchError("the sandbox's zygote", {
          message: 'the process ended before it started',
        });
      }
      if (failure !== null) {
        if (pidfd >= 0) close(pidfd);
        reject(failure);
        return;
      }
      resolve({ pid, pidfd });
    };
    control.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= STUB_FAILURE_SIZE) {
        const record = pending.subarray(0, STUB_FAILURE_SIZE);
        pending = pending.subarray(STUB_FAILURE_SIZE);
        const tag = record.readBigUInt64LE(0);
        if (tag === PID_TAG) {
          pid = Number(record.readBigInt64LE(8));
          continue;
        }
        if (tag === PARENT_TAG) {
          const parent = Number(record.readBigInt64LE(8));
          try {
            pidfd = pidfdOpen(pid);
            // It is blocked until the go byte; only a signal can end it before,
            // and then its pid could be another process's by now.
            const info = pidfdInfo(pidfd, false);
            if (info === null || info.ppid !== parent) {
              throw new Error('the process ended before it started');
            }
          } catch (error) {
            failure = new LaunchError("the sandbox's zygote", {
              message: (error as Error).message,
              cause: error,
            });
            control.destroy();
            return;
          }
          control.write(Buffer.from([1]));
          continue;
        }
        const decoded = decodeStubFailure(record);
        const step = stepNames[decoded.step] ?? `step ${decoded.step}`;
        failure ??=
          decoded.errno !== undefined
            ? new LaunchError(step, { errno: decoded.errno })
            : new LaunchError(step, { message: `unexpected result ${decoded.result}` });
      }
    });
    control.on('error', () => {});
    control.on('close', finish);
    control.on('end', () => control.destroy());
    control.write(script);
  });
}
