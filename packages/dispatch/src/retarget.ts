// A retarget answer: the notified thread runs another syscall instead of
// its own, with integer arguments the handler chose, and nothing is written
// in its memory. A seccomp answer cannot change registers, so the worker
// traces the thread for the length of the call (docs/design.md, "Retarget"):
//
//   PTRACE_SEIZE + PTRACE_INTERRUPT   the thread sits in the notification's
//                                     killable wait (WAIT_KILLABLE_RECV) and
//                                     stays there; the interrupt only makes a
//                                     trap pending
//   ADDFD (optional), SEND -ERESTARTNOINTR
//   stop (PTRACE_EVENT_STOP)          on the way out get_signal() takes the trap
//                                     before the restart rewinds the call: set the
//                                     number and arguments, block every signal
//   syscall-entry, -exit stops        the new call runs (through seccomp again:
//                                     its notification is served meanwhile)
//   rewind into close(fd)             the injected descriptor does not outlive it
//   restore registers, mask; detach   the caller sees only the result
//
// ptrace requests must come from the thread that seized: this worker's.

import { fstatSync, readFileSync, statSync } from 'node:fs';
import {
  __WALL,
  type Arch,
  close,
  ERESTARTNOINTR,
  ERRNO,
  PTRACE_DETACH,
  PTRACE_EVENT_CLONE,
  PTRACE_EVENT_EXEC,
  PTRACE_GET_SYSCALL_INFO,
  PTRACE_GETEVENTMSG,
  PTRACE_GETSIGMASK,
  PTRACE_INTERRUPT,
  PTRACE_O_TRACECLONE,
  PTRACE_O_TRACEEXEC,
  PTRACE_O_TRACESYSGOOD,
  PTRACE_SEIZE,
  PTRACE_SETSIGMASK,
  PTRACE_SYSCALL,
  PTRACE_SYSCALL_INFO_ENTRY,
  PTRACE_SYSCALL_INFO_EXIT,
  PTRACE_SYSCALL_INFO_SIZE,
  ptrace,
  RegisterSet,
  SIGKILL,
  SIGTRAP,
  SYSCALL_REGISTERS,
  syscallNumberOrUndefined,
  trySyscall,
  WNOHANG,
  waitStatus,
} from '@sandlock/sys';
import type { Answer, RetargetSecond } from './answer.js';
import { addFd } from './context.js';
import { replaceExecArgs } from './exec-args.js';
import { cancelInjection, expectInjection } from './injection.js';
import type { Delivery, Responder } from './respond.js';
import { expectRetargetedOpen } from './retargeted-open.js';

const { EACCES, ECHILD, EINTR, ENOENT, ENOSYS, EPERM } = ERRNO;

type RetargetAnswer = Extract<Answer, { kind: 'retarget' }>;

/** A stop that takes longer than this means the thread is stuck for good: the sandbox is killed. */
const STOP_DEADLINE_MS = 60_000;
/** Polls of waitpid with no sleep between them, then short sleeps, then long ones. */
const SPINS = 20;
const SHORT_SLEEPS = 2000;
const SHORT_SLEEP_NS = 20_000;
const LONG_SLEEP_NS = 1_000_000;

/**
 * What the loop does while the thread runs: wait up to `timeoutNs` for the
 * listener and serve it (the new call may be notified).
 */
export type Serve = (timeoutNs: number) => void;

export type RetargetResult =
  | Delivery
  /** The thread did not stop in time: the caller kills the sandbox. */
  | { ok: false; gone: false; errno: number; what: string; stuck: true };

interface Stop {
  /** The pid the stop was reported for (a thread that exec'd takes its leader's). */
  pid: number;
  status: number;
}

const ALL_SIGNALS = Buffer.alloc(8, 0xff);

/**
 * The call that carries an injection (injection.ts): the plan's own, which
 * the filter notifies, with arguments under which the kernel's own run of
 * it could not return a descriptor (openat(-1, NULL): EFAULT).
 */
const CARRIER = [-1n, 0n, 0n, 0n] as const;

/** Whether `fd` names `sameAs` (device and inode). */
function names(fd: number, sameAs: { readonly dev: bigint; readonly ino: bigint }): boolean {
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === sameAs.dev && stat.ino === sameAs.ino;
  } catch {
    return false;
  }
}

export class Retargeter {
  private readonly layout;
  private readonly saved;
  private readonly regs;
  private readonly status = Buffer.alloc(4);
  private readonly info = Buffer.alloc(PTRACE_SYSCALL_INFO_SIZE);
  private readonly mask = Buffer.alloc(8);
  private readonly closeNr: number;
  private readonly cloneNr: number;
  private readonly exitNr: number;
  private readonly wait4Nr: number;

  constructor(private readonly arch: Arch) {
    this.layout = SYSCALL_REGISTERS[arch];
    this.saved = new RegisterSet(this.layout);
    this.regs = new RegisterSet(this.layout);
    this.closeNr = syscallNumberOrUndefined('close', arch)!;
    this.cloneNr = syscallNumberOrUndefined('clone', arch)!;
    this.exitNr = syscallNumberOrUndefined('exit', arch)!;
    this.wait4Nr = syscallNumberOrUndefined('wait4', arch)!;
  }

  run(
    responder: Responder,
    listener: number,
    idBuffer: Buffer,
    tid: number,
    plan: RetargetAnswer,
    serve: Serve,
  ): RetargetResult {
    const nr = syscallNumberOrUndefined(plan.syscall, this.arch);
    if (nr === undefined) {
      if (plan.fd !== null) closeQuietly(plan.fd);
      responder.errno(listener, idBuffer, ENOSYS);
      return {
        ok: false,
        gone: false,
        errno: ENOSYS,
        what: `retarget to unknown syscall ${plan.syscall}`,
      };
    }
    const ids = idsOf(tid);
    if (ids === null || ids.parent === process.pid) {
      // A child of this process is waited for by libuv (waitpid of its pid),
      // which would take the ptrace stops for an exit. Sandboxes run their
      // programs under a reaper, so a program is never such a child.
      if (plan.fd !== null) closeQuietly(plan.fd);
      const answered = responder.errno(listener, idBuffer, EPERM);
      if (ids === null || !answered.ok) return { ok: false, gone: true };
      return {
        ok: false,
        gone: false,
        errno: EPERM,
        what: `retarget of ${tid}, a child of the supervising process (run it under a reaper)`,
      };
    }
    const tgid = ids.group;
    const apart = plan.apart !== null;
    const options = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | (apart ? PTRACE_O_TRACECLONE : 0);
    const seized = ptrace(PTRACE_SEIZE, tid, 0, options);
    if (seized < 0) {
      // Fail closed: nothing ran. EPERM when ptrace_may_access() refuses (an
      // undumpable process of another user, a container's seccomp profile).
      if (plan.fd !== null) closeQuietly(plan.fd);
      const answered = responder.errno(listener, idBuffer, seized === -ENOSYS ? EPERM : -seized);
      if (!answered.ok) return answered;
      return { ok: false, gone: false, errno: -seized, what: 'PTRACE_SEIZE' };
    }
    ptrace(PTRACE_INTERRUPT, tid);
    let injected = -1;
    if (plan.fd !== null && !apart) {
      try {
        injected = addFd(listener, idBuffer.readBigUInt64LE(0), plan.fd, {
          targetFd: null,
          cloexec: plan.cloexec,
        });
      } finally {
        closeQuietly(plan.fd);
      }
      if (injected < 0) {
        // The call fails with the injection's errno (EMFILE…); let go of the thread.
        const answered = responder.errno(listener, idBuffer, -injected);
        this.release(tid, serve);
        return injected === -ENOENT || !answered.ok ? { ok: false, gone: true } : { ok: true };
      }
    }
    const sent = responder.raw(listener, idBuffer, -ERESTARTNOINTR);
    if (!sent.ok) {
      if (apart) closeQuietly(plan.fd!);
      this.release(tid, serve);
      return sent;
    }
    let stop = this.waitStop(tid, serve);
    if (stop === 'gone' || stop === 'stuck') {
      if (apart) closeQuietly(plan.fd!);
      return stop === 'gone' ? { ok: false, gone: true } : this.stuck(tid);
    }
    // The first stop is the interrupt's (a group stop of a seized tracee is a
    // PTRACE_EVENT_STOP too, and ends the same way).
    const layout = this.layout;
    const saved = this.saved;
    const regs = this.regs;
    if (saved.load(tid) < 0 || ptrace(PTRACE_GETSIGMASK, tid, 8, this.mask) < 0) {
      if (apart) closeQuietly(plan.fd!);
      this.detach(tid);
      return { ok: false, gone: true };
    }
    if (apart) return this.apart(tid, nr, plan, serve);
    regs.copyFrom(saved);
    regs.set(layout.restartNr, BigInt(nr));
    plan.args.forEach((arg, index) => {
      regs.set(layout.args[index]!, arg === 'fd' ? BigInt(injected) : arg);
    });
    regs.store(tid);
    // No handler runs between the stops (its calls would come between them):
    // signals wait until the mask is given back. SIGKILL and SIGSTOP cannot be
    // blocked (PTRACE_SETSIGMASK drops them).
    ptrace(PTRACE_SETSIGMASK, tid, 8, ALL_SIGNALS);
    ptrace(PTRACE_SYSCALL, tid, 0, 0);

    // The new call's entry, then its exit, or the exec event.
    let entered = false;
    let result = 0n;
    for (;;) {
      stop = this.waitStop(tid, serve, tgid);
      if (stop === 'gone') return { ok: false, gone: true };
      if (stop === 'stuck') return this.stuck(tid);
      const event = stop.status >>> 16;
      if (event === PTRACE_EVENT_EXEC) {
        // The exec succeeded: its registers are new; the mask survives exec.
        if (plan.execArgs.length > 0) {
          try {
            replaceExecArgs(stop.pid, regs, layout, plan.execArgs);
          } catch {
            // Not the program the handler decided on: it does not run.
            process.kill(stop.pid, 'SIGKILL');
          }
        }
        ptrace(PTRACE_SETSIGMASK, stop.pid, 8, this.mask);
        this.detach(stop.pid);
        return { ok: true };
      }
      const syscallStop = ((stop.status >>> 8) & 0xff) === (SIGTRAP | 0x80) && event === 0;
      if (!syscallStop) {
        this.resume(stop);
        continue;
      }
      const op = this.syscallInfo(tid);
      if (op === PTRACE_SYSCALL_INFO_ENTRY) entered = true;
      else if (op === PTRACE_SYSCALL_INFO_EXIT && entered) {
        result = this.info.readBigInt64LE(24);
        break;
      }
      ptrace(PTRACE_SYSCALL, tid, 0, 0);
    }

    if (plan.second !== null && result >= 0n) {
      // The second call, on the descriptor the first returned, which is closed after.
      const first = result;
      const second = plan.second;
      const secondNr = syscallNumberOrUndefined(second.syscall, this.arch);
      if (secondNr === undefined || !this.names(tid, Number(first), second.sameAs)) {
        result = -BigInt(EACCES);
      } else {
        const args = second.args.map((arg) =>
          arg === 'fd' ? BigInt(injected) : arg === 'result' ? first : arg,
        );
        const got = this.again(tid, secondNr, args, serve);
        if (typeof got === 'string')
          return got === 'gone' ? { ok: false, gone: true } : this.stuck(tid);
        result = got;
      }
      const closed = this.again(tid, this.closeNr, [first], serve);
      if (typeof closed === 'string')
        return closed === 'gone' ? { ok: false, gone: true } : this.stuck(tid);
    }

    if (injected >= 0) {
      // Back to the syscall instruction with close(fd): the descriptor goes
      // away in the caller's own thread.
      const closed = this.again(tid, this.closeNr, [BigInt(injected)], serve);
      if (typeof closed === 'string')
        return closed === 'gone' ? { ok: false, gone: true } : this.stuck(tid);
    }

    return this.restore(tid, result);
  }

  /** The caller's registers as they were, with the new call's result; its mask back; detached. */
  private restore(tid: number, result: bigint): RetargetResult {
    const { layout, regs, saved } = this;
    regs.copyFrom(saved);
    if (layout.rewoundBeforeStop) {
      regs.set(layout.pc, saved.get(layout.pc) + BigInt(layout.instructionLength));
    }
    if (layout.origNr !== null) regs.set(layout.origNr, -1n);
    regs.set(layout.result, result);
    regs.store(tid);
    ptrace(PTRACE_SETSIGMASK, tid, 8, this.mask);
    this.detach(tid);
    return { ok: true };
  }

  /**
   * A retarget apart (RetargetApart, answer.ts). The caller's thread forks a
   * child: clone with flags 0 (no exit signal: no SIGCHLD, and no wait(2) of
   * the caller's sees it unless it asks for __WALL or __WCLONE; a copy of
   * the descriptor table and of the memory; the caller's credentials and
   * Landlock domain), traced from birth (PTRACE_O_TRACECLONE) and never
   * running an instruction of its own. In the child: the descriptor
   * installed, the call, the descriptor closed, exit. The call's descriptor
   * is taken (pidfd_getfd) and checked, the child reaped by the caller's own
   * wait4(__WALL), and the descriptor installed in the caller.
   */
  private apart(tid: number, nr: number, plan: RetargetAnswer, serve: Serve): RetargetResult {
    const dir = plan.fd!;
    const apart = plan.apart!;
    let child = -1;
    let taken = -1;
    try {
      const forked = this.fork(tid, serve);
      if (typeof forked === 'string') return this.lost(tid, forked);
      if (forked.result < 0n) return this.restore(tid, forked.result);
      child = forked.child;
      const made = this.inChild(child, nr, plan, dir, serve);
      if (made === 'stuck') return this.lost(tid, made);
      child = -1; // it ended and this tracer reaped it
      let result = made === 'gone' ? -BigInt(EACCES) : made;
      if (result >= 0n) {
        taken = Number(result);
        result = -BigInt(EACCES);
      }
      // The zombie is the caller's child: its own wait4 takes it.
      const reaped = this.again(tid, this.wait4Nr, [forked.pid, 0n, BigInt(__WALL), 0n], serve);
      if (typeof reaped === 'string') return this.lost(tid, reaped);
      if (taken >= 0 && names(taken, apart.sameAs)) {
        expectInjection(tid, nr, taken, apart.cloexec);
        const got = this.again(tid, nr, CARRIER, serve);
        cancelInjection(tid);
        if (typeof got === 'string') return this.lost(tid, got);
        result = got;
      }
      return this.restore(tid, result);
    } finally {
      closeQuietly(dir);
      if (taken >= 0) closeQuietly(taken);
      if (child > 0) this.kill(child, serve);
    }
  }

  /**
   * From the interrupt's stop: the caller's thread runs clone(0) with every
   * signal blocked (the child starts with that mask). Its result, and the
   * child's pid as this process sees it (PTRACE_GETEVENTMSG).
   */
  private fork(
    tid: number,
    serve: Serve,
  ): { result: bigint; child: number; pid: bigint } | 'gone' | 'stuck' {
    const { layout, regs } = this;
    regs.copyFrom(this.saved);
    regs.set(layout.restartNr, BigInt(this.cloneNr));
    for (const index of layout.args) regs.set(index, 0n);
    regs.store(tid);
    ptrace(PTRACE_SETSIGMASK, tid, 8, ALL_SIGNALS);
    ptrace(PTRACE_SYSCALL, tid, 0, 0);
    let child = -1;
    let entered = false;
    for (;;) {
      const stop = this.waitStop(tid, serve);
      if (stop === 'gone' || stop === 'stuck') {
        if (child > 0) this.kill(child, serve);
        return stop;
      }
      if (stop.status >>> 16 === PTRACE_EVENT_CLONE) {
        const message = Buffer.alloc(8);
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, message) === 0)
          child = Number(message.readBigUInt64LE(0));
      }
      const syscallStop =
        ((stop.status >>> 8) & 0xff) === (SIGTRAP | 0x80) && stop.status >>> 16 === 0;
      if (!syscallStop) {
        this.resume(stop);
        continue;
      }
      const op = this.syscallInfo(tid);
      if (op === PTRACE_SYSCALL_INFO_ENTRY) entered = true;
      else if (op === PTRACE_SYSCALL_INFO_EXIT && entered) {
        const result = this.info.readBigInt64LE(24);
        if (result >= 0n && child <= 0) return { result: -BigInt(EACCES), child: -1, pid: 0n };
        return { result, child, pid: result };
      }
      ptrace(PTRACE_SYSCALL, tid, 0, 0);
    }
  }

  /**
   * In the child, from its first stop: the plan's call with `dir` installed
   * and closed after. Its result, or 'gone' when the child ended before
   * (then reaped); after a result the child has exited and been reaped.
   */
  private inChild(
    child: number,
    nr: number,
    plan: RetargetAnswer,
    dir: number,
    serve: Serve,
  ): bigint | 'gone' | 'stuck' {
    const first = this.waitStop(child, serve);
    if (first === 'gone' || first === 'stuck') return first;
    expectInjection(child, nr, dir, true);
    const installed = this.again(child, nr, CARRIER, serve);
    cancelInjection(child);
    if (typeof installed === 'string') return installed;
    if (installed < 0n) return this.exit(child, installed, serve);
    const args = plan.args.map((arg) => (arg === 'fd' ? installed : arg));
    if (plan.syscall === 'openat') {
      // It comes back through the filter: the kernel's, for every module of the chain.
      const parent = fstatSync(dir, { bigint: true });
      expectRetargetedOpen(child, {
        name: args[1]!,
        flags: Number(args[2]! & 0xffffffffn),
        dev: parent.dev,
        ino: parent.ino,
      });
    }
    const result = this.again(child, nr, args, serve);
    if (typeof result === 'string') return result;
    const closed = this.again(child, this.closeNr, [installed], serve);
    if (typeof closed === 'string') return closed;
    if (result < 0n) return this.exit(child, result, serve);
    const pidfd = trySyscall('pidfd_open', child, 0);
    const taken = pidfd < 0 ? pidfd : trySyscall('pidfd_getfd', pidfd, Number(result), 0);
    if (pidfd >= 0) closeQuietly(pidfd);
    return this.exit(child, taken < 0 ? -BigInt(EACCES) : BigInt(taken), serve);
  }

  /** The child runs exit(0); `result` once it is gone. */
  private exit(child: number, result: bigint, serve: Serve): bigint | 'gone' | 'stuck' {
    const ended = this.again(child, this.exitNr, [0n], serve);
    if (ended === 'gone') return result;
    if (result >= 0n) closeQuietly(Number(result));
    return ended === 'stuck' ? 'stuck' : 'gone';
  }

  /** SIGKILL to a traced child, reaped on this side. */
  private kill(child: number, serve: Serve): 'gone' | 'stuck' {
    trySyscall('kill', child, SIGKILL);
    for (;;) {
      const stop = this.waitStop(child, serve);
      if (stop === 'gone' || stop === 'stuck') return stop;
      ptrace(PTRACE_SYSCALL, child, 0, 0);
    }
  }

  /** The caller's thread is gone or stuck: what run() reports. */
  private lost(tid: number, how: 'gone' | 'stuck'): RetargetResult {
    return how === 'gone' ? { ok: false, gone: true } : this.stuck(tid);
  }

  /**
   * From a syscall-exit stop: back to the syscall instruction with another
   * call, run to its exit; its result. A restart is ruled out (orig_rax -1).
   */
  private again(
    tid: number,
    nr: number,
    args: readonly bigint[],
    serve: Serve,
  ): bigint | 'gone' | 'stuck' {
    const layout = this.layout;
    const regs = this.regs;
    regs.load(tid);
    regs.set(layout.nr, BigInt(nr));
    args.forEach((arg, index) => {
      regs.set(layout.args[index]!, arg);
    });
    regs.set(layout.pc, regs.get(layout.pc) - BigInt(layout.instructionLength));
    if (layout.origNr !== null) regs.set(layout.origNr, -1n);
    regs.store(tid);
    ptrace(PTRACE_SYSCALL, tid, 0, 0);
    let entered = false;
    for (;;) {
      const stop = this.waitStop(tid, serve);
      if (stop === 'gone' || stop === 'stuck') return stop;
      const syscallStop =
        ((stop.status >>> 8) & 0xff) === (SIGTRAP | 0x80) && stop.status >>> 16 === 0;
      if (!syscallStop) {
        this.resume(stop);
        continue;
      }
      const op = this.syscallInfo(tid);
      if (op === PTRACE_SYSCALL_INFO_ENTRY) entered = true;
      else if (op === PTRACE_SYSCALL_INFO_EXIT && entered) return this.info.readBigInt64LE(24);
      ptrace(PTRACE_SYSCALL, tid, 0, 0);
    }
  }

  /** Whether the thread's descriptor `fd` names the object `sameAs` (null: anything). */
  private names(tid: number, fd: number, sameAs: RetargetSecond['sameAs']): boolean {
    if (sameAs === null) return true;
    try {
      const stat = statSync(`/proc/${tid}/fd/${fd}`, { bigint: true });
      return stat.dev === sameAs.dev && stat.ino === sameAs.ino;
    } catch {
      return false;
    }
  }

  private syscallInfo(tid: number): number {
    this.info.fill(0);
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, this.info.length, this.info) < 0) return 0;
    return this.info.readUInt8(0);
  }

  /** Resumes a stop that is not a syscall stop: a signal is delivered as it would be untraced. */
  private resume(stop: Stop): void {
    const signal = (stop.status >>> 8) & 0xff;
    const event = stop.status >>> 16;
    // A group stop (PTRACE_EVENT_STOP) resumes with no signal: it comes back
    // when the tracer detaches (__ptrace_unlink() in kernel/ptrace.c).
    const deliver = event === 0 && signal !== SIGTRAP ? signal : 0;
    ptrace(PTRACE_SYSCALL, stop.pid, 0, deliver);
  }

  /** After a failed injection: the interrupt's stop, then let go with nothing changed. */
  private release(tid: number, serve: Serve): void {
    const stop = this.waitStop(tid, serve);
    if (stop !== 'gone' && stop !== 'stuck') this.detach(stop.pid);
  }

  private detach(pid: number): void {
    ptrace(PTRACE_DETACH, pid, 0, 0);
  }

  private stuck(tid: number): RetargetResult {
    this.detach(tid);
    return {
      ok: false,
      gone: false,
      errno: EPERM,
      what: `retarget: thread ${tid} did not stop within ${STOP_DEADLINE_MS} ms`,
      stuck: true,
    };
  }

  /**
   * The next ptrace stop of `tid`, serving the listener between polls: the
   * thread may be waiting for an answer to the call it was made to run.
   * `leader`: after an exec by another thread, the tracee is reported under
   * its thread group's id (de_thread(), fs/exec.c).
   */
  private waitStop(
    tid: number,
    serve: Serve,
    leader: number | null = null,
  ): Stop | 'gone' | 'stuck' {
    const deadline = Date.now() + STOP_DEADLINE_MS;
    let pid = tid;
    for (let spin = 0; ; spin++) {
      const got = waitStatus(pid, this.status, WNOHANG | __WALL);
      if (got > 0) {
        const status = this.status.readInt32LE(0);
        // Exited or killed: nothing left to answer.
        if ((status & 0xff) !== 0x7f) return 'gone';
        return { pid: got, status };
      }
      if (got < 0 && got !== -EINTR) {
        if (got === -ECHILD && leader !== null && pid !== leader) {
          pid = leader;
          continue;
        }
        return 'gone';
      }
      // The stop comes within microseconds when the thread has a CPU. Spin a
      // little, then sleep in ppoll on the listener (its notification wakes
      // us at once): sched_yield on a busy machine gave the CPU away for
      // milliseconds, and poll's 1 ms is longer than the whole retarget.
      if (spin < SPINS) serve(0);
      else if (Date.now() > deadline) return 'stuck';
      else serve(spin < SPINS + SHORT_SLEEPS ? SHORT_SLEEP_NS : LONG_SLEEP_NS);
    }
  }
}

/** The thread group and its parent, from one read of /proc/<tid>/status; null once it is gone. */
function idsOf(tid: number): { group: number; parent: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${tid}/status`, 'latin1');
  } catch {
    return null;
  }
  const group = /^Tgid:\s+(\d+)$/m.exec(status);
  const parent = /^PPid:\s+(\d+)$/m.exec(status);
  if (group === null || parent === null) return null;
  return { group: Number(group[1]), parent: Number(parent[1]) };
}

function closeQuietly(fd: number): void {
  close(fd);
}
