// The exec stub's reaper mode (STEP_FORK_REAPER), run for real: the stub
// forks, the child execs /bin/sh, the parent stays behind as a child
// subreaper that reaps, forwards signals, kills the sandbox when the process
// behind its pidfd dies, and exits as the program did.
//
// kill(-1) would signal every process of this user: a test uses it only
// inside a Landlock domain scoped for signals (LANDLOCK_SCOPE_SIGNAL), which
// limits it to the sandbox; a launch whose landlock_restrict_self fails stops
// before the fork. Elsewhere the kill target is -(stub pid), the process group
// a setsid() step makes (the reaper is in it too, and must ignore what it sends
// itself).
//
// The host arch runs natively. The other one runs under qemu-user, which
// (7.2) refuses prctl(PR_SET_CHILD_SUBREAPER) with EINVAL and the Landlock
// syscalls with ENOSYS: there a native stub does that setup (both survive
// execve) and execs qemu with the emulated stub, which reads its own script
// from what is left on fd 3. The emulated child enters no nested domain.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLONE_THREAD,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_NO_NEW_PRIVS,
  SFD_CLOEXEC,
  SFD_NONBLOCK,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGCHLD,
  SIGKILL,
  SIGTERM,
  SIGUSR1,
  SIGUSR2,
  SIGWINCH,
} from '../src/constants.js';
import { ERRNO } from '../src/errno.js';
import { trySyscall } from '../src/libc.js';
import {
  decodeStubFailure,
  REAPER_PARAM,
  REAPER_PARAMS_SIZE,
  REAPER_POLLFDS_SIZE,
  ScriptEncoder,
} from '../src/stub/script.js';
import { ARCHES, type Arch, hostArch, syscallNumber } from '../src/syscalls/index.js';
import { commandPath, QEMU, stubFiles } from './helpers.js';

const CONTROL_FD = 3;
/** Where a Landlock ruleset fd is passed to the stub. */
const RULESET_FD = 4;

const SIGRTMIN_2 = 34; // the control signal the reaper turns into SIGKILL
const { EINVAL } = ERRNO;
const LANDLOCK_SCOPE_SIGNAL = 2n;

const workDir = mkdtempSync(join(tmpdir(), 'sandlock-stub-reaper-'));
/** Pids to SIGKILL at the end, should a test have failed to end them. */
const strays: number[] = [];
/** Stubs started; their process groups (after setsid) too are SIGKILLed at the end. */
const stubs: ChildProcess[] = [];
afterAll(() => {
  for (const stub of stubs) {
    if (stub.exitCode !== null || stub.signalCode !== null) continue;
    try {
      process.kill(-stub.pid!, 'SIGKILL');
    } catch {
      // ESRCH: it did not get as far as setsid().
    }
    stub.kill('SIGKILL');
  }
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already, as it should be.
    }
  }
  rmSync(workDir, { recursive: true, force: true });
});

/** The stub for `arch` as a file (written once). */
const stubPath = stubFiles(workDir);

/** Whether this kernel gives a scope-only Landlock ruleset (ABI 6+), or why not. */
function landlockScopeProblem(): string | undefined {
  const fd = scopeOnlyRuleset();
  if (fd < 0) return `landlock_create_ruleset with LANDLOCK_SCOPE_SIGNAL failed: errno ${-fd}`;
  closeSync(fd);
  return undefined;
}

/** A Landlock ruleset handling nothing but signal scoping: its fd, or -errno. */
function scopeOnlyRuleset(): number {
  const attr = Buffer.alloc(24); // handled_access_fs, handled_access_net, scoped
  attr.writeBigUInt64LE(LANDLOCK_SCOPE_SIGNAL, 16);
  return trySyscall('landlock_create_ruleset', attr, attr.length, 0);
}

function sigset(signals: readonly number[]): Buffer {
  let mask = 0n;
  for (const signal of signals) mask |= 1n << BigInt(signal - 1);
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(mask);
  return set;
}

interface Sandbox {
  /** `sh -c` text the child execs. */
  program: string;
  /** The process whose end makes the reaper kill the sandbox (default: this one). */
  parentPid?: number;
  /** Signals the reaper forwards: received -> sent. SIGCHLD is blocked too. */
  sigmap?: Readonly<Record<number, number>>;
  /**
   * Kill target -1 inside a scope-only Landlock domain (ruleset at
   * RULESET_FD), entered before the fork, and a nested one in the child.
   * Otherwise: setsid() first and kill target -(stub pid).
   */
  landlock?: boolean;
  /** The clone flags (default SIGCHLD: a fork). */
  cloneFlags?: number;
}

type Nr = (name: string) => number;

/**
 * Steps before the reaper's own: setsid or the Landlock domain, and
 * PR_SET_CHILD_SUBREAPER. In the stub itself, or in the native stub that
 * execs qemu with it.
 */
function setupSteps(encoder: ScriptEncoder, nr: Nr, sandbox: Sandbox): void {
  if (sandbox.landlock) {
    encoder.step({
      name: 'no_new_privs',
      nr: nr('prctl'),
      args: [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
      fatal: true,
    });
    encoder.step({
      name: 'landlock_restrict_self',
      nr: nr('landlock_restrict_self'),
      args: [RULESET_FD, 0],
      fatal: true,
    });
  } else {
    encoder.step({ name: 'setsid', nr: nr('setsid'), fatal: true });
  }
  encoder.step({
    name: 'subreaper',
    nr: nr('prctl'),
    args: [PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0],
    fatal: true,
  });
}

/** The reaper test's script for the stub of `arch`; `cloneStep` is the index of its fork. */
function reaperScript(
  arch: Arch,
  stubPid: number,
  sandbox: Sandbox,
  withSetup: boolean,
): { script: Buffer; cloneStep: number } {
  const nr: Nr = (name) => syscallNumber(name, arch);
  const encoder = new ScriptEncoder();
  const sigmap = Buffer.alloc(65);
  for (const [from, to] of Object.entries(sandbox.sigmap ?? {})) sigmap[Number(from)] = to;
  const blocked = encoder.bytes(
    sigset([SIGCHLD, ...Object.keys(sandbox.sigmap ?? {}).map(Number)]),
  );
  // [0] signalfd and [1] pidfd, stored by the steps below; [2] no broker.
  const pollfdArray = Buffer.alloc(REAPER_POLLFDS_SIZE);
  pollfdArray.writeInt32LE(-1, 16);
  const pollfds = encoder.bytes(pollfdArray);
  const params = Buffer.alloc(REAPER_PARAMS_SIZE);
  params.writeBigUInt64LE(pollfds, REAPER_PARAM.pollfds);
  params.writeBigInt64LE(sandbox.landlock ? -1n : BigInt(-stubPid), REAPER_PARAM.killTarget);
  params.writeBigUInt64LE(encoder.bytes(sigmap), REAPER_PARAM.sigmap);
  params.writeBigUInt64LE(encoder.zeros(128), REAPER_PARAM.siginfo);
  params.writeBigUInt64LE(BigInt(CONTROL_FD), REAPER_PARAM.closeLast);

  if (withSetup) setupSteps(encoder, nr, sandbox);
  encoder.step({
    name: 'pidfd_open',
    nr: nr('pidfd_open'),
    args: [sandbox.parentPid ?? process.pid, 0],
    fatal: true,
    store: pollfds + 8n,
  });
  encoder.step({
    name: 'block signals',
    nr: nr('rt_sigprocmask'),
    args: [SIG_BLOCK, blocked, 0, 8],
    fatal: true,
  });
  encoder.step({
    name: 'signalfd4',
    nr: nr('signalfd4'),
    args: [-1, blocked, 8, SFD_NONBLOCK | SFD_CLOEXEC],
    fatal: true,
    store: pollfds,
  });
  const cloneStep = encoder.step({
    name: 'clone',
    nr: nr('clone'),
    args: [sandbox.cloneFlags ?? SIGCHLD, 0, 0, 0, 0],
    reaper: encoder.bytes(params),
  });
  // The child from here on.
  encoder.step({
    name: 'unblock signals',
    nr: nr('rt_sigprocmask'),
    args: [SIG_SETMASK, encoder.zeros(8), 0, 8],
    fatal: true,
  });
  if (sandbox.landlock && withSetup) {
    // A nested domain: the sandbox may not signal its reaper.
    encoder.step({
      name: 'landlock_restrict_self (nested)',
      nr: nr('landlock_restrict_self'),
      args: [RULESET_FD, 0],
      fatal: true,
    });
  }
  if (sandbox.landlock) {
    encoder.step({ name: 'close ruleset', nr: nr('close'), args: [RULESET_FD], fatal: true });
  }
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
  return { script: encoder.encode(CONTROL_FD), cloneStep };
}

/** How to run the reaper of `arch` here: a command and what to write on its fd 3. */
interface Launcher {
  command: string[];
  /** The bytes for fd 3 of the stub started as `pid`. */
  feed(pid: number, sandbox: Sandbox): Buffer;
  cloneStep(sandbox: Sandbox): number;
}

function launcherFor(arch: Arch): Launcher | { skip: string } {
  const native = hostArch();
  if (arch === native) {
    return {
      command: [stubPath(arch)],
      feed: (pid, sandbox) => reaperScript(arch, pid, sandbox, true).script,
      cloneStep: (sandbox) => reaperScript(arch, 0, sandbox, true).cloneStep,
    };
  }
  const qemu = QEMU[arch].map(commandPath).find((path) => path !== undefined);
  if (!qemu) {
    return {
      skip: `no ${QEMU[arch].join(' or ')} on PATH to run ${arch} code on this ${native} host`,
    };
  }
  return {
    command: [stubPath(native)],
    feed(pid, sandbox) {
      const nr: Nr = (name) => syscallNumber(name, native);
      const setup = new ScriptEncoder({ maxSteps: 8 });
      setupSteps(setup, nr, sandbox);
      setup.step({
        name: 'execve qemu',
        nr: nr('execve'),
        args: [
          setup.cstring(qemu),
          setup.cstringArray([qemu, stubPath(arch)]),
          setup.pointerArray([]),
        ],
        fatal: true,
      });
      return Buffer.concat([
        setup.encode(CONTROL_FD),
        reaperScript(arch, pid, sandbox, false).script,
      ]);
    },
    cloneStep: (sandbox) => reaperScript(arch, 0, sandbox, false).cloneStep,
  };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Time from the spawn to the exit. */
  ms: number;
}

/** Collects a stream's text; `until(pattern)` resolves once the text matches. */
function watch(stream: Readable): {
  text(): string;
  until(pattern: string | RegExp): Promise<string>;
} {
  let seen = '';
  const matches = (pattern: string | RegExp) =>
    typeof pattern === 'string' ? seen.includes(pattern) : pattern.test(seen);
  const waiters: { pattern: string | RegExp; resolve: (seen: string) => void }[] = [];
  stream.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    for (const waiter of waiters) if (matches(waiter.pattern)) waiter.resolve(seen);
  });
  return {
    text: () => seen,
    until: (pattern) =>
      new Promise((resolve) => {
        if (matches(pattern)) resolve(seen);
        else waiters.push({ pattern, resolve });
      }),
  };
}

interface Started {
  child: ChildProcess;
  stdout: ReturnType<typeof watch>;
  /** At the stub's exit. */
  exited: Promise<Exit>;
  /** Once every stdio stream has closed too: stderr and what came on fd 3. */
  closed: Promise<{ stderr: string; control: Buffer }>;
}

function start(launcher: Launcher, sandbox: Sandbox, rulesetFd?: number): Started {
  const began = performance.now();
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe', 'pipe'];
  if (rulesetFd !== undefined) stdio.push(rulesetFd);
  const child = spawn(launcher.command[0]!, launcher.command.slice(1), { stdio });
  stubs.push(child);
  const control = child.stdio[CONTROL_FD] as Readable & NodeJS.WritableStream;
  const stdout = watch(child.stdout!);
  const stderr = watch(child.stderr!);
  const fromControl: Buffer[] = [];
  control.on('data', (chunk: Buffer) => fromControl.push(chunk));
  control.on('error', () => {});
  control.end(launcher.feed(child.pid!, sandbox));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - began }));
  });
  const closed = new Promise<{ stderr: string; control: Buffer }>((resolve) => {
    child.on('close', () =>
      resolve({ stderr: stderr.text(), control: Buffer.concat(fromControl) }),
    );
  });
  return { child, stdout, exited, closed };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Whether `pid` has ended and waits to be reaped. */
function zombie(pid: number): boolean {
  try {
    // pid (comm) state ...: comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Waits up to `ms` for `pid` to be gone (ESRCH), or a zombie when `orZombie`; whether it is. */
async function gone(pid: number, ms: number, orZombie = false): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (alive(pid) && !(orZombie && zombie(pid))) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** A `<name>=<pid>` a program printed. */
function printedPid(output: string, name: string): number {
  const match = new RegExp(`${name}=(\\d+)`).exec(output);
  if (!match) throw new Error(`no ${name}=<pid> in ${JSON.stringify(output)}`);
  const pid = Number(match[1]);
  strays.push(pid);
  return pid;
}

/** A process outside the sandbox that kill(-1) from inside must not reach. */
function bystander(): ChildProcess {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  strays.push(sleeper.pid!);
  return sleeper;
}

// The sandbox prints the pids of its shell and of a setsid'd sleep, then "ready".
const SHELL_AND_SETSID_SLEEP = 'setsid sleep 30 & echo "sh=$$ setsid=$!"; echo ready; sleep 30';

const landlockProblem = landlockScopeProblem();
if (landlockProblem) console.warn(`stub-reaper: skipping the kill(-1) tests: ${landlockProblem}`);

describe.each(ARCHES)('exec stub reaper on %s', (arch) => {
  const found = launcherFor(arch);
  const skip = 'skip' in found ? found.skip : undefined;
  const launcher = found as Launcher; // used only by tests that run when skip is undefined
  if (skip) console.warn(`stub-reaper: skipping the ${arch} stub: ${skip}`);
  const test = it.skipIf(skip !== undefined);
  const landlockTest = it.skipIf(skip !== undefined || landlockProblem !== undefined);

  function run(sandbox: Sandbox): Started {
    if (!sandbox.landlock) return start(launcher, sandbox);
    const ruleset = scopeOnlyRuleset();
    try {
      return start(launcher, sandbox, ruleset);
    } finally {
      closeSync(ruleset); // the child has its copy
    }
  }

  test('exits with the exit code of the program', async () => {
    const started = run({ program: 'echo hi; exit 42' });
    expect(await started.exited).toMatchObject({ code: 42, signal: null });
    const { stderr, control } = await started.closed;
    expect(stderr).toBe('');
    expect(started.stdout.text()).toBe('hi\n');
    expect(control.length).toBe(0);
  });

  test('dies by the signal that killed the program', async () => {
    const started = run({ program: 'kill -TERM $$; sleep 5' });
    expect(await started.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect((await started.closed).stderr).toBe('');
  });

  test('ends only after every process of the sandbox, a setsid one too', async () => {
    const started = run({ program: '(setsid sh -c "sleep 0.5; echo late") & echo early; exit 0' });
    const exit = await started.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeGreaterThanOrEqual(450);
    await started.closed;
    expect(started.stdout.text()).toBe('early\nlate\n');
  });

  test('forwards a mapped signal to the sandbox, not to itself (kill target -pgid)', async () => {
    // The reaper is in the process group it signals: it gets each signal it
    // forwards back on its signalfd, and must not forward it again.
    const started = run({
      program:
        'trap "echo TERM" TERM; trap "echo USR2" USR2; trap "exit 5" USR1; echo ready; while :; do sleep 0.05; done',
      // The reaper gets what it sends too: SIGUSR2 read and dropped.
      sigmap: { [SIGTERM]: SIGTERM, [SIGWINCH]: SIGUSR2, [SIGUSR1]: SIGUSR1, [SIGUSR2]: 0 },
    });
    await started.stdout.until('ready\n');
    started.child.kill('SIGTERM');
    await started.stdout.until('TERM\n');
    // Its own SIGTERM is pending on the reaper's signalfd (kill(2) queued it before the
    // program saw its copy), or read already. A signalfd read takes the lowest pending
    // signal first (next_signal() in kernel/signal.c): SIGTERM (15) before SIGWINCH (28). A
    // SIGTERM forwarded again would reach the program before the SIGUSR2 that SIGWINCH
    // becomes, and print a second TERM.
    started.child.kill('SIGWINCH');
    await started.stdout.until('USR2\n');
    started.child.kill('SIGUSR1');
    expect(await started.exited).toMatchObject({ code: 5, signal: null });
    expect(started.stdout.text()).toBe('ready\nTERM\nUSR2\n');
  });

  test('does not forward an unmapped signal', async () => {
    const started = run({
      program: 'trap "exit 6" USR1; trap "exit 7" USR2; echo ready; while :; do sleep 0.05; done',
      sigmap: { [SIGTERM]: SIGUSR2, [SIGUSR1]: 0, [SIGUSR2]: 0 },
    });
    await started.stdout.until('ready\n');
    started.child.kill('SIGUSR1'); // blocked, read, dropped
    // Read by the reaper before SIGTERM: sent first, and the lower number. Forwarded, it
    // would reach the program before the SIGUSR2 that SIGTERM becomes: exit 6.
    started.child.kill('SIGTERM'); // becomes SIGUSR2
    expect(await started.exited).toMatchObject({ code: 7, signal: null });
  });

  landlockTest('kills the whole sandbox on a control signal with kill(-1), only it', async () => {
    // qemu-user moves real-time signals (host 34 arrives as guest 32 with
    // qemu 7.2), so an emulated reaper gets SIGUSR2 as its control signal.
    const control = arch === hostArch() ? SIGRTMIN_2 : SIGUSR2;
    const outside = bystander();
    const started = run({
      program: SHELL_AND_SETSID_SLEEP,
      landlock: true,
      sigmap: { [control]: SIGKILL },
    });
    const output = await started.stdout.until('ready\n');
    const shell = printedPid(output, 'sh');
    const setsid = printedPid(output, 'setsid');
    process.kill(started.child.pid!, control); // ChildProcess.kill() knows no real-time signals
    expect(await started.exited).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(alive(shell)).toBe(false); // reaped before the reaper ended
    expect(alive(setsid)).toBe(false);
    expect(alive(outside.pid!)).toBe(true);
    outside.kill('SIGKILL');
  });

  landlockTest('kills the sandbox when its parent dies (pidfd), a setsid process too', async () => {
    // An intermediate Node process starts the stub with a script whose pidfd
    // is of that intermediate, then is SIGKILLed.
    const ruleset = scopeOnlyRuleset();
    const intermediate = spawn(
      process.execPath,
      [
        '-e',
        `const { spawn } = require('node:child_process');
         const [command, rulesetFd] = JSON.parse(process.argv[1]);
         const chunks = [];
         process.stdin.on('data', (chunk) => chunks.push(chunk));
         process.stdin.on('end', () => {
           const stub = spawn(command[0], command.slice(1), {
             stdio: ['ignore', 'inherit', 'inherit', 'pipe', rulesetFd],
           });
           stub.stdio[3].end(Buffer.concat(chunks)).on('error', () => {});
           console.log('stub=' + stub.pid);
         });`,
        JSON.stringify([launcher.command, RULESET_FD]),
      ],
      { stdio: ['pipe', 'pipe', 'inherit', 'ignore', ruleset] },
    );
    closeSync(ruleset);
    strays.push(intermediate.pid!);
    const outside = bystander();
    const stdout = watch(intermediate.stdout!);
    // The stub's pid is known only once it runs, and the script is written
    // first: the kill target is -1, so the script does not depend on it.
    const sandbox: Sandbox = {
      program: SHELL_AND_SETSID_SLEEP,
      landlock: true,
      parentPid: intermediate.pid!,
    };
    intermediate.stdin!.end(launcher.feed(0, sandbox));
    // The intermediate's line and the sandbox's come in either order.
    await stdout.until('ready\n');
    const output = await stdout.until(/stub=\d+\n/);
    const stub = printedPid(output, 'stub');
    const shell = printedPid(output, 'sh');
    const setsid = printedPid(output, 'setsid');
    intermediate.kill('SIGKILL');
    const ended = { shell: await gone(shell, 1000), setsid: await gone(setsid, 1000) };
    expect(ended).toEqual({ shell: true, setsid: true });
    // The reaper, orphaned, waits for whoever adopted it (PID 1 here) to reap it.
    expect(await gone(stub, 1000, true)).toBe(true);
    expect(alive(outside.pid!)).toBe(true);
    outside.kill('SIGKILL');
  });

  test('reports a failed fork as a failure of its step', async () => {
    // CLONE_THREAD without CLONE_SIGHAND: EINVAL.
    const sandbox: Sandbox = { program: 'exit 0', cloneFlags: SIGCHLD | CLONE_THREAD };
    const started = run(sandbox);
    expect(await started.exited).toMatchObject({ code: 127, signal: null });
    const { control } = await started.closed;
    expect(decodeStubFailure(control)).toEqual({
      step: launcher.cloneStep(sandbox),
      result: BigInt(-EINVAL),
      errno: EINVAL,
    });
  });
});
