// The reaper's broker, run for real: a sandbox whose fork-reaper step has a
// broker socket, and syscalls brokerCall() has its reaper run: their results,
// the descriptors and data that come back, the reaper's Landlock domain,
// requests it refuses, and the reaper's own work (reaping, signals) around it.
//
// The host arch goes through launch(). The other one runs under qemu-user,
// which (7.2) refuses prctl(PR_SET_CHILD_SUBREAPER) and the Landlock
// syscalls: a native stub does that setup (both survive execve) and execs
// qemu with the emulated stub, whose script is the reaper data and steps of a
// fork-reaper launch step (encodeReaperData) for that arch.

import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, SYSTEM_DIRS } from '../../../tools/test-support/index.js';
import { BrokerError, brokerCall, brokerSocketPair } from '../src/broker.js';
import { brokeredSendmsg } from '../src/broker-sendmsg.js';
import {
  AT_FDCWD,
  CLOSE_RANGE_CLOEXEC,
  openFlags,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_NO_NEW_PRIVS,
  SFD_CLOEXEC,
  SFD_NONBLOCK,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGCHLD,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
} from '../src/constants.js';
import { ERRNO, F_GETFD, FD_CLOEXEC, SIGTERM } from '../src/index.js';
import { POLLFD_SIZE, POLLIN, poll } from '../src/io.js';
import { addressOf, close, fcntl, openAt, syscall, trySyscall } from '../src/libc.js';
import { cmsgSpace, decodeScmRights, encodeScmRights } from '../src/structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from '../src/structs/iovec.js';
import {
  encodeLandlockPathBeneathAttr,
  encodeLandlockRulesetAttr,
  LANDLOCK_ACCESS_FS,
  LANDLOCK_CREATE_RULESET_VERSION,
  LANDLOCK_RULE_PATH_BENEATH,
  LANDLOCK_RULESET_ATTR_SIZE,
} from '../src/structs/landlock.js';
import {
  decodeMsghdr,
  encodeMsghdrInto,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  MSGHDR_SIZE,
} from '../src/structs/msghdr.js';
import { AF_UNIX } from '../src/structs/sockaddr.js';
import { launch } from '../src/stub/launch.js';
import {
  BROKER_ARG,
  BROKER_PATCH,
  BROKER_REQUEST,
  BROKER_REQUEST_MAX,
  ScriptEncoder,
} from '../src/stub/script.js';
import {
  encodeReaperData,
  type LaunchStep,
  REAPER_SIGNAL,
  type StepContext,
} from '../src/stub/steps.js';
import { ARCHES, type Arch, hostArch, syscallNumber } from '../src/syscalls/index.js';
import { commandPath, QEMU, stubFiles } from './helpers.js';

const CONTROL_FD = 3;
/** Where the emulated stub gets the broker socket and the Landlock ruleset. */
const EMULATED_BROKER_FD = 4;
const EMULATED_RULESET_FD = 5;
/** Long enough that only a hang reaches it. */
const REPLY_MS = 20_000;
const { EACCES, EBADF, EINVAL } = ERRNO;
const HOST = openFlags(hostArch());

const workDir = mkdtempSync(join(tmpdir(), 'sandlock-stub-broker-'));
/** Readable inside the sandbox's Landlock domain. */
const inside = join(workDir, 'inside');
/** Not readable inside it. */
const outside = join(workDir, 'outside');
/** The stubs, readable and executable inside it (qemu loads the emulated one). */
const stubDir = join(workDir, 'stubs');
for (const dir of [inside, outside, stubDir]) mkdirSync(dir);
writeFileSync(join(inside, 'hello.txt'), 'hello from inside\n');
writeFileSync(join(outside, 'secret.txt'), 'secret\n');
symlinkSync('some/target/path', join(inside, 'link'));

/** Processes started; SIGKILLed at the end should a test have failed to end them. */
const started: ChildProcess[] = [];
/** Supervisor ends still open at the end. */
const sockets = new Set<number>();
afterAll(() => {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: no process group of its own yet.
    }
    child.kill('SIGKILL');
  }
  for (const socket of sockets) close(socket);
  rmSync(workDir, { recursive: true, force: true });
});

/** The stub for `arch` as a file (written once). */
const stubPath = stubFiles(stubDir);

/** Whether this kernel has Landlock, or why not. */
function landlockProblem(): string | undefined {
  const version = trySyscall('landlock_create_ruleset', null, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return version < 1 ? `landlock_create_ruleset gave errno ${-version}` : undefined;
}

/**
 * A ruleset handling reads and execution: the system directories and the
 * stubs readable and executable, `inside` readable, nothing else (`outside`).
 */
function sandboxRuleset(): number {
  const { READ_FILE, READ_DIR, EXECUTE } = LANDLOCK_ACCESS_FS;
  const attr = encodeLandlockRulesetAttr({ handledAccessFs: READ_FILE | READ_DIR | EXECUTE });
  const ruleset = syscall('landlock_create_ruleset', attr, LANDLOCK_RULESET_ATTR_SIZE, 0);
  const rules: [string, bigint][] = [
    ...SYSTEM_DIRS.map((dir): [string, bigint] => [dir, READ_FILE | READ_DIR | EXECUTE]),
    [stubDir, READ_FILE | READ_DIR | EXECUTE],
    ['/proc', READ_FILE | READ_DIR], // qemu reads /proc/self/*
    [inside, READ_FILE | READ_DIR],
  ];
  for (const [dir, access] of rules) {
    const parent = openAt(dir, HOST.O_PATH | HOST.O_CLOEXEC);
    try {
      const rule = encodeLandlockPathBeneathAttr({ allowedAccess: access, parentFd: parent });
      syscall('landlock_add_rule', ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0);
    } finally {
      close(parent);
    }
  }
  return ruleset;
}

/** Collects a stream's text; `until(pattern)` resolves once the text matches. */
function watch(stream: Readable): { text(): string; until(pattern: RegExp): Promise<string> } {
  let seen = '';
  const waiters: { pattern: RegExp; resolve: (seen: string) => void }[] = [];
  stream.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    for (const waiter of waiters) if (waiter.pattern.test(seen)) waiter.resolve(seen);
  });
  return {
    text: () => seen,
    until: (pattern) =>
      new Promise((resolve) => {
        if (pattern.test(seen)) resolve(seen);
        else waiters.push({ pattern, resolve });
      }),
  };
}

interface Sandbox {
  /** `sh -c` text the program runs. */
  program: string;
  /** Enter {@link sandboxRuleset}'s domain before the fork (reaper and program). */
  landlock?: boolean;
}

interface Started {
  /** The stub's pid, which stays behind as the reaper. */
  reaperPid: number;
  /** The supervisor's end of the broker socket. */
  socket: number;
  /** The inode of the socket end the reaper got. */
  brokerInode: number;
  stdin: Writable;
  stdout: ReturnType<typeof watch>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  child: ChildProcess;
}

function track(child: ChildProcess, socket: number, brokerInode: number): Started {
  started.push(child);
  sockets.add(socket);
  const stdout = watch(child.stdout!);
  child.stderr?.on('data', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve({ code, signal }));
    },
  );
  return { reaperPid: child.pid!, socket, brokerInode, stdin: child.stdin!, stdout, exited, child };
}

/** Through launch(), on this machine's arch: setsid, no_new_privs, the domain, the reaper. */
function startNative(sandbox: Sandbox): Started {
  const { supervisor, reaper } = brokerSocketPair();
  const brokerInode = fstatSync(reaper).ino;
  const ruleset = sandbox.landlock ? sandboxRuleset() : undefined;
  const steps: LaunchStep[] = [{ kind: 'setsid' }, { kind: 'noNewPrivs' }];
  if (ruleset !== undefined) steps.push({ kind: 'landlockRestrictSelf', rulesetFd: ruleset });
  steps.push({ kind: 'forkReaper', parentPid: process.pid, killTarget: 0, brokerFd: reaper });
  try {
    const launched = launch({
      path: '/bin/sh',
      argv: ['sh', '-c', sandbox.program],
      env: { PATH: '/usr/bin:/bin' },
      steps,
      handshake: false,
    });
    return track(launched.child, supervisor, brokerInode);
  } finally {
    close(reaper); // the child has its copy
    if (ruleset !== undefined) close(ruleset);
  }
}

/** The emulated stub's script: the reaper of a forkReaper step, then the program. */
function emulatedScript(arch: Arch, sandbox: Sandbox, brokerFd: number): Buffer {
  const nr = (name: string) => syscallNumber(name, arch);
  const encoder = new ScriptEncoder();
  const context: StepContext = {
    arch,
    encoder,
    listenerSlot: 0n,
    childFd(fd) {
      if (fd !== brokerFd) throw new Error(`no child number for fd ${fd}`);
      return EMULATED_BROKER_FD;
    },
  };
  const data = encodeReaperData(
    { kind: 'forkReaper', parentPid: process.pid, killTarget: 0, brokerFd },
    context,
  );
  encoder.step({
    name: 'pidfd_open',
    nr: nr('pidfd_open'),
    args: [process.pid, 0],
    fatal: true,
    store: data.pollfds + 8n,
  });
  encoder.step({
    name: 'block signals',
    nr: nr('rt_sigprocmask'),
    args: [SIG_BLOCK, data.blocked, 0, 8],
    fatal: true,
  });
  encoder.step({
    name: 'signalfd4',
    nr: nr('signalfd4'),
    args: [-1, data.blocked, 8, SFD_NONBLOCK | SFD_CLOEXEC],
    fatal: true,
    store: data.pollfds,
  });
  encoder.step({
    name: 'clone',
    nr: nr('clone'),
    args: [SIGCHLD, 0, 0, 0, 0],
    reaper: data.params,
  });
  encoder.step({
    name: 'unblock signals',
    nr: nr('rt_sigprocmask'),
    args: [SIG_SETMASK, encoder.zeros(8), 0, 8],
    fatal: true,
  });
  encoder.step({
    name: 'close_range',
    nr: nr('close_range'),
    args: [3, 0xffffffff, CLOSE_RANGE_CLOEXEC],
    fatal: true,
  });
  encoder.step({
    name: 'execve /bin/sh',
    nr: nr('execve'),
    args: [
      encoder.cstring('/bin/sh'),
      encoder.cstringArray(['sh', '-c', sandbox.program]),
      encoder.cstringArray(['PATH=/usr/bin:/bin']),
    ],
    fatal: true,
  });
  return encoder.encode(CONTROL_FD);
}

/** A native stub does setsid, no_new_privs, the domain and the subreaper, then execs qemu. */
function startEmulated(arch: Arch, qemu: string, sandbox: Sandbox): Started {
  const native = hostArch();
  const nr = (name: string) => syscallNumber(name, native);
  const { supervisor, reaper } = brokerSocketPair();
  const brokerInode = fstatSync(reaper).ino;
  const ruleset = sandbox.landlock ? sandboxRuleset() : undefined;
  const setup = new ScriptEncoder({ maxSteps: 8 });
  setup.step({ name: 'setsid', nr: nr('setsid'), fatal: true });
  setup.step({
    name: 'no_new_privs',
    nr: nr('prctl'),
    args: [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
    fatal: true,
  });
  if (ruleset !== undefined) {
    setup.step({
      name: 'landlock_restrict_self',
      nr: nr('landlock_restrict_self'),
      args: [EMULATED_RULESET_FD, 0],
      fatal: true,
    });
  }
  setup.step({
    name: 'subreaper',
    nr: nr('prctl'),
    args: [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0],
    fatal: true,
  });
  setup.step({
    name: 'execve qemu',
    nr: nr('execve'),
    args: [setup.cstring(qemu), setup.cstringArray([qemu, stubPath(arch)]), setup.pointerArray([])],
    fatal: true,
  });
  const stdio: ('pipe' | number)[] = ['pipe', 'pipe', 'pipe', 'pipe', reaper];
  if (ruleset !== undefined) stdio.push(ruleset);
  try {
    const child = spawn(stubPath(native), [], { stdio });
    const control = child.stdio[CONTROL_FD] as Writable;
    control.on('error', () => {});
    control.end(Buffer.concat([setup.encode(CONTROL_FD), emulatedScript(arch, sandbox, reaper)]));
    return track(child, supervisor, brokerInode);
  } finally {
    close(reaper);
    if (ruleset !== undefined) close(ruleset);
  }
}

/** The descriptors open in `pid`, as their /proc/PID/fd link texts. */
function openFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      return [readlinkSync(join(dir, fd))];
    } catch {
      return []; // closed meanwhile
    }
  });
}

function state(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0];
  } catch {
    return undefined;
  }
}

/** Reads all of `fd` from its offset. */
function readAll(fd: number): string {
  const buffer = Buffer.alloc(4096);
  const length = readSync(fd, buffer, 0, buffer.length, null);
  return buffer.subarray(0, length).toString();
}

function cstring(text: string, room = 0): Buffer {
  return Buffer.concat([Buffer.from(`${text}\0`), Buffer.alloc(room)]);
}

/**
 * Sends `message` with `fds` as it is (no checks: what brokerCall would not
 * send) and receives the reply: its bytes, and the descriptors it brought.
 */
function exchange(socket: number, message: Buffer, fds: readonly number[] = []) {
  const iovec = Buffer.alloc(IOVEC_SIZE);
  encodeIovecInto(iovec, 0, { base: addressOf(message), len: BigInt(message.length) });
  const control = fds.length > 0 ? encodeScmRights(fds) : null;
  const header = Buffer.alloc(MSGHDR_SIZE);
  encodeMsghdrInto(header, 0, {
    iov: addressOf(iovec),
    iovLen: 1n,
    control: control ? addressOf(control) : 0n,
    controlLen: BigInt(control?.length ?? 0),
  });
  syscall('sendmsg', socket, header, 0);

  const pollfd = Buffer.alloc(POLLFD_SIZE);
  pollfd.writeInt32LE(socket, 0);
  pollfd.writeInt16LE(POLLIN, 4);
  expect(poll(pollfd, 1, REPLY_MS)).toBe(1);
  const reply = Buffer.alloc(BROKER_REQUEST_MAX + 64);
  const replyControl = Buffer.alloc(64);
  encodeIovecInto(iovec, 0, { base: addressOf(reply), len: BigInt(reply.length) });
  encodeMsghdrInto(header, 0, {
    iov: addressOf(iovec),
    iovLen: 1n,
    control: addressOf(replyControl),
    controlLen: BigInt(replyControl.length),
  });
  const length = syscall('recvmsg', socket, header, MSG_CMSG_CLOEXEC);
  const received = decodeScmRights(replyControl, Number(decodeMsghdr(header).controlLen));
  return { reply: reply.subarray(0, length), fds: received };
}

/** A request message: nr, args with their kinds, flags, data (after `patches` raw entries). */
function rawRequest(
  nr: number,
  args: readonly [bigint, number][],
  data: Buffer = Buffer.alloc(0),
  patches: readonly [number, number][] = [],
): Buffer {
  const start = BROKER_REQUEST.data + patches.length * BROKER_PATCH.size;
  const message = Buffer.alloc(start + data.length);
  message.writeBigUInt64LE(BigInt(nr), BROKER_REQUEST.nr);
  args.forEach(([value, kind], index) => {
    message.writeBigUInt64LE(BigInt.asUintN(64, value), BROKER_REQUEST.args + index * 8);
    message[BROKER_REQUEST.kinds + index] = kind;
  });
  message.writeUInt16LE(patches.length, BROKER_REQUEST.patches);
  patches.forEach(([at, kind], index) => {
    message.writeUInt32LE(at, BROKER_REQUEST.data + index * BROKER_PATCH.size + BROKER_PATCH.at);
    message.writeUInt32LE(
      kind,
      BROKER_REQUEST.data + index * BROKER_PATCH.size + BROKER_PATCH.kind,
    );
  });
  data.copy(message, start);
  return message;
}

/** A SOCK_SEQPACKET socketpair of this process, close-on-exec. */
function seqpacketPair(): [number, number] {
  const fds = Buffer.alloc(8);
  syscall('socketpair', AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/** One message waiting on `socket`: its bytes and descriptors (close-on-exec). */
function receiveWithFds(socket: number): { data: Buffer; fds: number[] } {
  const pollfd = Buffer.alloc(POLLFD_SIZE);
  pollfd.writeInt32LE(socket, 0);
  pollfd.writeInt16LE(POLLIN, 4);
  expect(poll(pollfd, 1, REPLY_MS)).toBe(1);
  const data = Buffer.alloc(256);
  const control = Buffer.alloc(cmsgSpace(4 * 8));
  const header = Buffer.alloc(MSGHDR_SIZE + IOVEC_SIZE);
  encodeIovecInto(header, MSGHDR_SIZE, { base: addressOf(data), len: BigInt(data.length) });
  encodeMsghdrInto(header, 0, {
    iov: addressOf(header) + BigInt(MSGHDR_SIZE),
    iovLen: 1n,
    control: addressOf(control),
    controlLen: BigInt(control.length),
  });
  const length = syscall('recvmsg', socket, header, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  const fds = decodeScmRights(control, Number(decodeMsghdr(header).controlLen));
  return { data: data.subarray(0, length), fds };
}

const landlockSkip = landlockProblem();
if (landlockSkip) console.warn(`stub-broker: skipping the Landlock test: ${landlockSkip}`);

describe.each(ARCHES)('the reaper broker on %s', (arch) => {
  const native = arch === hostArch();
  const qemu = native ? undefined : QEMU[arch].map(commandPath).find((path) => path);
  const skip =
    native || qemu
      ? undefined
      : `no ${QEMU[arch].join(' or ')} on PATH to run ${arch} code on this ${hostArch()} host`;
  if (skip) console.warn(`stub-broker: skipping the ${arch} stub: ${skip}`);
  const test = it.skipIf(skip !== undefined);
  const nr = (name: string) => syscallNumber(name, arch);
  const O = openFlags(arch);

  function start(sandbox: Sandbox): Started {
    return native ? startNative(sandbox) : startEmulated(arch, qemu!, sandbox);
  }

  /** The usual program: prints its pid, exits 7 when a line comes on stdin. */
  async function startWaiting(sandbox: Partial<Sandbox> = {}) {
    const sandboxed = start({ program: 'echo "pid=$$"; read line; exit 7', ...sandbox });
    const output = await sandboxed.stdout.until(/pid=\d+\n/);
    const programPid = Number(/pid=(\d+)/.exec(output)![1]);
    // Answered from the reaper's loop: it has closed what it does not keep.
    expect(getpid(sandboxed.socket).result).toBe(sandboxed.reaperPid);
    return { ...sandboxed, programPid };
  }

  async function finish(sandboxed: Started): Promise<void> {
    sandboxed.stdin.end('\n');
    expect(await sandboxed.exited).toEqual({ code: 7, signal: null });
    close(sandboxed.socket);
    sockets.delete(sandboxed.socket);
  }

  function getpid(socket: number) {
    return brokerCall(socket, { syscall: nr('getpid') }, REPLY_MS);
  }

  test('runs getpid in the reaper', async () => {
    const sandboxed = await startWaiting();
    expect(getpid(sandboxed.socket)).toEqual({
      result: sandboxed.reaperPid,
      fd: -1,
      data: Buffer.alloc(0),
    });
    expect(sandboxed.programPid).not.toBe(sandboxed.reaperPid);
    await finish(sandboxed);
  });

  test('opens a file beneath a directory fd it is given, and sends the descriptor back', async () => {
    const sandboxed = await startWaiting();
    const dir = openAt(inside, HOST.O_RDONLY | HOST.O_DIRECTORY | HOST.O_CLOEXEC);
    try {
      const reply = brokerCall(
        sandboxed.socket,
        {
          syscall: nr('openat'),
          args: [{ fd: dir }, { data: 0 }, O.O_RDONLY | O.O_CLOEXEC],
          data: cstring('hello.txt'),
          returnsFd: true,
        },
        REPLY_MS,
      );
      expect(reply.result).toBeGreaterThanOrEqual(0); // the reaper's number for it
      expect(reply.fd).toBeGreaterThanOrEqual(0);
      try {
        expect(fcntl(reply.fd, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);
        const file = statSync(join(inside, 'hello.txt'));
        expect(fstatSync(reply.fd)).toMatchObject({ dev: file.dev, ino: file.ino });
        expect(readAll(reply.fd)).toBe('hello from inside\n');
      } finally {
        close(reply.fd);
      }
      // A name that is not there: the errno, and no descriptor.
      expect(
        brokerCall(
          sandboxed.socket,
          {
            syscall: nr('openat'),
            args: [{ fd: dir }, { data: 0 }, O.O_RDONLY],
            data: cstring('missing.txt'),
            returnsFd: true,
          },
          REPLY_MS,
        ),
      ).toMatchObject({ result: -2, fd: -1 });
    } finally {
      close(dir);
    }
    await finish(sandboxed);
  });

  test('sends back what the syscall wrote into the data', async () => {
    const sandboxed = await startWaiting();
    const dir = openAt(inside, HOST.O_PATH | HOST.O_CLOEXEC);
    try {
      const data = Buffer.alloc(64, 0xaa);
      data.write('link\0', 0);
      const reply = brokerCall(
        sandboxed.socket,
        { syscall: nr('readlinkat'), args: [{ fd: dir }, { data: 0 }, { data: 16 }, 48], data },
        REPLY_MS,
      );
      expect(reply.result).toBe('some/target/path'.length);
      expect(reply.data.subarray(16, 16 + reply.result).toString()).toBe('some/target/path');
      expect(reply.data.subarray(0, 16)).toEqual(data.subarray(0, 16));
      expect(reply.data.subarray(16 + reply.result).every((byte) => byte === 0xaa)).toBe(true);
    } finally {
      close(dir);
    }
    await finish(sandboxed);
  });

  test('sends a message it builds from patches, with the descriptors it was given', async () => {
    const sandboxed = await startWaiting();
    const [mine, theirs] = seqpacketPair();
    const file = openAt(join(inside, 'hello.txt'), HOST.O_RDONLY | HOST.O_CLOEXEC);
    const dir = openAt(inside, HOST.O_PATH | HOST.O_CLOEXEC);
    try {
      // The request names sendmsg for this host: the number for `arch` instead.
      const sendmsg = (message: Parameters<typeof brokeredSendmsg>[1]) => ({
        ...brokeredSendmsg(mine, message, MSG_DONTWAIT),
        syscall: nr('sendmsg'),
      });
      const request = sendmsg({ payload: Buffer.from('two fds'), fds: [file, dir, file] });
      const reply = brokerCall(sandboxed.socket, request, REPLY_MS);
      expect(reply.result).toBe('two fds'.length);
      const received = receiveWithFds(theirs);
      try {
        expect(received.data.toString()).toBe('two fds');
        expect(received.fds).toHaveLength(3);
        const same = (a: number, b: number) => {
          const [x, y] = [fstatSync(a), fstatSync(b)];
          return x.dev === y.dev && x.ino === y.ino;
        };
        expect(received.fds.map((fd, index) => same(fd, [file, dir, file][index]!))).toEqual([
          true,
          true,
          true,
        ]);
      } finally {
        for (const fd of received.fds) close(fd);
      }
      // A message with no descriptors, and an empty one.
      for (const payload of ['plain', '']) {
        const plain = sendmsg({ payload: Buffer.from(payload) });
        expect(brokerCall(sandboxed.socket, plain, REPLY_MS).result).toBe(payload.length);
        expect(receiveWithFds(theirs)).toEqual({ data: Buffer.from(payload), fds: [] });
      }
    } finally {
      for (const fd of [mine, theirs, file, dir]) close(fd);
    }
    await finish(sandboxed);
  });

  it.skipIf(skip !== undefined || landlockSkip !== undefined)(
    "opens in the reaper's Landlock domain: EACCES outside it, a descriptor inside",
    async () => {
      const sandboxed = await startWaiting({ landlock: true });
      const open = (path: string, dirfd?: number) =>
        brokerCall(
          sandboxed.socket,
          {
            syscall: nr('openat'),
            args: [dirfd === undefined ? AT_FDCWD : { fd: dirfd }, { data: 0 }, O.O_RDONLY],
            data: cstring(path),
            returnsFd: true,
          },
          REPLY_MS,
        );
      const denied = open(join(outside, 'secret.txt'));
      expect(denied).toMatchObject({ result: -EACCES, fd: -1 });
      // A directory descriptor opened out here does not widen the domain.
      const dir = openAt(outside, HOST.O_RDONLY | HOST.O_DIRECTORY | HOST.O_CLOEXEC);
      try {
        expect(open('secret.txt', dir)).toMatchObject({ result: -EACCES, fd: -1 });
      } finally {
        close(dir);
      }
      const allowed = open(join(inside, 'hello.txt'));
      expect(allowed.fd).toBeGreaterThanOrEqual(0);
      expect(readAll(allowed.fd)).toBe('hello from inside\n');
      close(allowed.fd);
      // This process, outside the domain, may read it: the EACCES was the domain's.
      expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
      await finish(sandboxed);
    },
  );

  test('refuses a malformed request without running it, and serves the next', async () => {
    const sandboxed = await startWaiting();
    const { socket } = sandboxed;
    const dir = openAt(inside, HOST.O_PATH | HOST.O_CLOEXEC);
    const made = join(inside, 'made');
    const mkdirat = (dirArg: [bigint, number], pathArg: [bigint, number], data: Buffer) =>
      rawRequest(nr('mkdirat'), [dirArg, pathArg, [0o700n, BROKER_ARG.literal]], data);
    const name = cstring('made');
    const at = BigInt(BROKER_REQUEST.data);
    const refusals: [string, Buffer, number[], number][] = [
      // An fd index past the descriptors received.
      ['fd index 1 of 1', mkdirat([1n, BROKER_ARG.fd], [at, BROKER_ARG.data], name), [dir], -EBADF],
      ['fd index 0 of 0', mkdirat([0n, BROKER_ARG.fd], [at, BROKER_ARG.data], name), [], -EBADF],
      // An offset at or past the end of the message.
      [
        'offset at the end',
        mkdirat([BigInt(AT_FDCWD), 0], [at + BigInt(name.length), BROKER_ARG.data], name),
        [],
        -EINVAL,
      ],
      ['offset -1', mkdirat([0n, BROKER_ARG.fd], [-1n, BROKER_ARG.data], name), [dir], -EINVAL],
      ['unknown kind', mkdirat([0n, BROKER_ARG.fd], [at, 3], name), [dir], -EINVAL],
      // Shorter than the header.
      ['short', Buffer.alloc(BROKER_REQUEST.data - 1), [dir], -EINVAL],
      // Longer than the buffer: truncated.
      [
        'too long',
        mkdirat(
          [0n, BROKER_ARG.fd],
          [at, BROKER_ARG.data],
          Buffer.alloc(BROKER_REQUEST_MAX - BROKER_REQUEST.data + 1),
        ),
        [dir],
        -EINVAL,
      ],
    ];
    // Patches: an fd index past those received, a place or an offset past
    // the end, an unknown kind, a table longer than the message.
    const patched = (patches: [number, number][], value: bigint, data = Buffer.alloc(16)) => {
      const message = rawRequest(
        nr('mkdirat'),
        [
          [BigInt(AT_FDCWD), 0],
          [BigInt(BROKER_REQUEST.data + patches.length * 8 + 16), BROKER_ARG.data],
          [0o700n, 0],
        ],
        Buffer.concat([data, name]),
        patches,
      );
      message.writeBigUInt64LE(value, BROKER_REQUEST.data + patches.length * 8);
      return message;
    };
    const slot = BROKER_REQUEST.data + 8;
    refusals.push(
      ['patch: fd index 1 of 1', patched([[slot, BROKER_ARG.fd]], 1n), [dir], -EBADF],
      ['patch: offset past the end', patched([[slot, BROKER_ARG.data]], 1000n), [], -EINVAL],
      [
        'patch: at the last byte',
        patched([[slot + 16 + name.length - 1, BROKER_ARG.data]], 0n),
        [],
        -EINVAL,
      ],
      ['patch: kind 0', patched([[slot, 0]], 0n), [], -EINVAL],
      ['patch: kind 3', patched([[slot, 3]], 0n), [], -EINVAL],
    );
    const longTable = rawRequest(nr('mkdirat'), [[BigInt(AT_FDCWD), 0]], Buffer.alloc(0));
    longTable.writeUInt16LE(2, BROKER_REQUEST.patches);
    refusals.push([
      'patch table past the end',
      Buffer.concat([longTable, Buffer.alloc(8)]),
      [],
      -EINVAL,
    ]);
    const before = openFiles(sandboxed.reaperPid).length;
    try {
      for (const [what, message, fds, errno] of refusals) {
        const { reply, fds: back } = exchange(socket, message, fds);
        expect({ what, length: reply.length }).toEqual({
          what,
          length: Math.min(message.length, BROKER_REQUEST_MAX),
        });
        expect({ what, result: Number(reply.readBigInt64LE(0)) }).toEqual({ what, result: errno });
        expect(reply.subarray(8)).toEqual(message.subarray(8, reply.length));
        expect(back).toEqual([]);
        expect(existsSync(made)).toBe(false);
        expect(getpid(socket).result).toBe(sandboxed.reaperPid);
      }
      // The same request, well formed, runs.
      const { reply } = exchange(
        socket,
        mkdirat([0n, BROKER_ARG.fd], [at, BROKER_ARG.data], name),
        [dir],
      );
      expect(reply.readBigInt64LE(0)).toBe(0n);
      expect(statSync(made).isDirectory()).toBe(true);
    } finally {
      close(dir);
      rmSync(made, { recursive: true, force: true });
    }
    // Every descriptor the refused requests brought was closed. The reaper
    // closes them after it has replied: wait for that, not for a moment.
    expect(await eventually(() => openFiles(sandboxed.reaperPid).length === before)).toBe(true);
    await finish(sandboxed);
  });

  test('leaks no descriptor over many requests', async () => {
    const sandboxed = await startWaiting();
    const dir = openAt(inside, HOST.O_RDONLY | HOST.O_DIRECTORY | HOST.O_CLOEXEC);
    const before = openFiles(sandboxed.reaperPid);
    try {
      for (let round = 0; round < 2000; round++) {
        const reply = brokerCall(
          sandboxed.socket,
          {
            syscall: nr('openat'),
            args: [{ fd: dir }, { data: 0 }, O.O_RDONLY | O.O_CLOEXEC],
            data: cstring(round % 2 ? 'hello.txt' : 'missing.txt'),
            returnsFd: true,
          },
          REPLY_MS,
        );
        if (round % 2) {
          expect(reply.fd).toBeGreaterThanOrEqual(0);
          close(reply.fd);
        } else {
          expect(reply.result).toBe(-2);
        }
      }
    } finally {
      close(dir);
    }
    // The reaper closes a request's fds after its reply: one more round trip
    // has them closed.
    expect(getpid(sandboxed.socket).result).toBe(sandboxed.reaperPid);
    const same = () => openFiles(sandboxed.reaperPid).sort().join() === [...before].sort().join();
    expect(await eventually(same)).toBe(true);
    await finish(sandboxed);
  });

  test('hands the broker socket to the reaper only: the program does not keep it', async () => {
    const sandboxed = await startWaiting();
    const link = `socket:[${sandboxed.brokerInode}]`;
    expect(openFiles(sandboxed.reaperPid)).toContain(link);
    expect(openFiles(sandboxed.programPid)).not.toContain(link);
    await finish(sandboxed);
  });

  test('keeps reaping once the supervisor closes its end, and exits as the program did', async () => {
    const sandboxed = await startWaiting();
    expect(getpid(sandboxed.socket).result).toBe(sandboxed.reaperPid);
    close(sandboxed.socket);
    sockets.delete(sandboxed.socket);
    // The end of stream polls readable for good: a reaper still polling it
    // would spin, never sleeping (state R), instead of waiting in ppoll.
    expect(await eventually(() => state(sandboxed.reaperPid) === 'S')).toBe(true);
    sandboxed.stdin.end('\n');
    expect(await sandboxed.exited).toEqual({ code: 7, signal: null });
  });

  test('forwards signals with a broker attached', async () => {
    const sandboxed = start({
      program: 'trap "exit 9" TERM; echo ready; while :; do sleep 0.05; done',
    });
    await sandboxed.stdout.until(/ready\n/);
    expect(getpid(sandboxed.socket).result).toBe(sandboxed.reaperPid);
    process.kill(sandboxed.reaperPid, SIGTERM);
    expect(await sandboxed.exited).toEqual({ code: 9, signal: null });
    // The reaper is gone, and with it the only other holder of its end.
    let error: unknown;
    try {
      getpid(sandboxed.socket);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BrokerError);
    expect((error as BrokerError).reason).toBe('closed');
  });

  // qemu-user moves real-time signals (host 34 arrives as guest 32 with qemu
  // 7.2): the control signals are checked natively only.
  if (!native) console.warn(`stub-broker: the control signal is not checked on emulated ${arch}`);
  it.skipIf(!native)(
    'kills the whole sandbox on the control signal with a broker attached',
    async () => {
      const sandboxed = await startWaiting();
      expect(getpid(sandboxed.socket).result).toBe(sandboxed.reaperPid);
      process.kill(sandboxed.reaperPid, REAPER_SIGNAL.killAll);
      expect(await sandboxed.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // Kill target 0, its own process group, took the reaper too: the
      // program may be left unreaped, but not running.
      const dead = () => [undefined, 'Z'].includes(state(sandboxed.programPid));
      expect(await eventually(dead)).toBe(true);
    },
  );
});
