// The time module (policy `timeStart`, and the vDSO half of `randomSeed`) as a
// handler module of @sandlock/dispatch. It patches the vDSO of every process
// image right after exec, before user code (vdso-patch.ts), answers the raw
// clock syscalls with the shifted time, and shifts absolute realtime deadlines
// back before the kernel sees them. The supervisor imports this file by URL
// (TIME_MODULE) in its worker threads and on its main thread: no side effects
// at import.

import {
  type Answer,
  answer,
  CallError,
  defineModule,
  type HandlerContext,
  int as int32,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { type Arch, CLOCK_REALTIME, hostArch, TIMER_ABSTIME, trySyscall } from '@sandlock/sys';
import {
  futexRealtimeAbsolute,
  offsetSeconds,
  posixTimerClock,
  REALTIME_CLOCK_SET,
  readClock,
  shiftedDeadline,
  timerfdClock,
} from './time-clock.js';
import { TIME_HOOK_SYSCALLS, TIME_SYSCALLS } from './time-syscalls.js';
import {
  type PatchedVdso,
  patchVdsoImage,
  stillPatched,
  type VdsoPatchOptions,
} from './vdso-patch.js';

export { TIME_HOOK_SYSCALLS, TIME_SYSCALLS } from './time-syscalls.js';

interface TimeSession {
  /** Seconds added to the realtime clocks; null: time is not virtualized. */
  readonly offset: bigint | null;
  readonly patch: VdsoPatchOptions;
  /**
   * The image of each thread seen patched (NO_VDSO: it has none), so that a
   * call needs no look at the process: set by every patch or check, which
   * the hooks make after each exec.
   */
  readonly images: Map<number, PatchedVdso | typeof NO_VDSO>;
}

const NO_VDSO = 'no-vdso';
const sessions = new Map<number, TimeSession>();
/** Threads remembered per sandbox (an entry holds its image's writes, ~200 bytes). */
const IMAGES_KEEP = 4096;

function start(session: WorkerSession<ModulePolicy>, arch: Arch): TimeSession {
  const { timeStart, randomSeed } = session.policy;
  const offset = timeStart !== null ? offsetSeconds(timeStart) : null;
  const state: TimeSession = {
    offset,
    patch: { arch, offsetSeconds: offset, getrandom: randomSeed !== null },
    images: new Map(),
  };
  sessions.set(session.id, state);
  return state;
}

/** The session's state; made at sessionStart (a call before it starts it). */
function stateOf(ctx: HandlerContext<ModulePolicy>): TimeSession {
  return sessions.get(ctx.session.id) ?? start(ctx.session, ctx.arch);
}

class CallerGone extends Error {}

/**
 * Makes sure the caller's image is patched. `verify`: read the bytes back even
 * if this thread was seen patched (the hooks: the image may be a new one since
 * an exec). Returns an answer when the call must not go on: the sandbox is
 * killed when its image cannot be patched, since its clock would silently be real.
 */
function ensurePatched(
  ctx: HandlerContext<ModulePolicy>,
  state: TimeSession,
  verify: boolean,
): Answer | null {
  const known = state.images.get(ctx.pid);
  if (!verify && known !== undefined) return null;
  // /proc/<tid>/mem is open and pins an address space: make sure it is the caller's, not a
  // recycled tid's (SECCOMP_IOCTL_NOTIF_ID_VALID).
  const opened = () => {
    if (!ctx.valid()) throw new CallerGone();
  };
  let image: PatchedVdso | null;
  try {
    if (known !== undefined && known !== NO_VDSO && stillPatched(ctx.pid, known, opened)) {
      return null;
    }
    image = patchVdsoImage(ctx.pid, state.patch, opened);
  } catch (error) {
    state.images.delete(ctx.pid);
    // The caller died meanwhile: nothing will be answered.
    if (error instanceof CallerGone || !ctx.valid()) return answer.continue();
    const message = error instanceof Error ? error.message : String(error);
    return answer.kill(
      `sandlock: time: cannot patch the vDSO of process ${ctx.pid}, its clock would be real: ${message}`,
    );
  }
  if (state.images.size >= IMAGES_KEEP) state.images.clear();
  state.images.set(ctx.pid, image ?? NO_VDSO);
  return null;
}

/**
 * A clock_gettime from the kernel's own code under the detour (a clocksource
 * the vDSO cannot read makes it fall back to the syscall): from inside the
 * caller's vDSO, whose clock_gettime is detoured. Such a call continues (the
 * detour shifts its result); null for any other call. The image is the one
 * recorded for this thread; when the address falls in it, the image is
 * checked again first (its written bytes read back, under 8 KiB; patched anew
 * if they are not there), in case an exec replaced it and no hook call came
 * since: that answers when it cannot be patched.
 */
function detouredCodeAnswer(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer | null {
  const inside = () => {
    const image = state.images.get(ctx.pid);
    if (image === undefined || image === NO_VDSO || !image.detoured) return false;
    const ip = ctx.instructionPointer;
    return ip >= image.base && ip < image.base + BigInt(image.length);
  };
  if (!inside()) return null;
  return ensurePatched(ctx, state, true) ?? (inside() ? answer.continue() : null);
}

function timespec(sec: bigint, nsec: bigint): Buffer {
  const buffer = Buffer.alloc(16);
  buffer.writeBigInt64LE(sec, 0);
  buffer.writeBigInt64LE(nsec, 8);
  return buffer;
}

// ---- Clock reads that reached the supervisor (raw syscalls; the vDSO's where not detoured) ----

/** clock_gettime(clock, ts) on a realtime clock: the shifted time, written for the caller. */
function onClockGettime(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  const clock = int32(ctx.args[0]);
  if (state.offset === null || !REALTIME_CLOCK_SET.has(clock)) return answer.continue();
  // The detour shifts what the kernel's code under it returns, its own syscall included.
  const own = detouredCodeAnswer(ctx, state);
  if (own !== null) return own;
  const now = readClock(clock);
  if (typeof now === 'number') return answer.fromResult(now);
  ctx.write(ctx.args[1]!, timespec(now.sec + state.offset, now.nsec));
  return answer.value(0);
}

/** gettimeofday(tv, tz): tv shifted when not NULL, tz as the kernel has it. */
function onGettimeofday(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  if (state.offset === null) return answer.continue();
  const [tv = 0n, tz = 0n] = ctx.args;
  if (tv !== 0n) {
    const now = readClock(CLOCK_REALTIME);
    if (typeof now === 'number') return answer.fromResult(now);
    ctx.write(tv, timespec(now.sec + state.offset, now.nsec / 1000n));
  }
  if (tz !== 0n) {
    const zone = Buffer.alloc(8); // struct timezone: two ints
    const got = trySyscall('gettimeofday', 0, zone);
    if (got < 0) return answer.fromResult(got);
    ctx.write(tz, zone);
  }
  return answer.value(0);
}

/** time(tloc): the shifted seconds, also stored at tloc when not NULL. */
function onTime(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  if (state.offset === null) return answer.continue();
  const now = readClock(CLOCK_REALTIME);
  if (typeof now === 'number') return answer.fromResult(now);
  const seconds = now.sec + state.offset;
  const tloc = ctx.args[0] ?? 0n;
  if (tloc !== 0n) {
    const out = Buffer.alloc(8);
    out.writeBigInt64LE(seconds);
    ctx.write(tloc, out);
  }
  return answer.value(seconds);
}

// ---- Absolute deadlines: shifted back into real time, then the kernel runs the call ----

/** Rewrites the tv_sec at `address` (a deadline on `clock`) when it was computed from virtual time. */
function shiftDeadlineAt(
  ctx: HandlerContext<ModulePolicy>,
  state: TimeSession,
  address: bigint,
  clock: number,
): Answer {
  if (state.offset === null || address === 0n || !REALTIME_CLOCK_SET.has(clock))
    return answer.continue();
  let deadline: bigint;
  try {
    deadline = ctx.read(address, 8).readBigInt64LE(0);
  } catch (error) {
    if (error instanceof CallError) return answer.continue(); // the kernel reports the bad pointer itself
    throw error;
  }
  const shifted = shiftedDeadline(deadline, clock, state.offset);
  if (shifted !== null) {
    const out = Buffer.alloc(8);
    out.writeBigInt64LE(shifted);
    // Not a security decision: the caller may change the value again before the kernel reads
    // it, and only gets another deadline.
    ctx.write(address, out);
  }
  return answer.continue();
}

/** clock_nanosleep(clock, flags, request, remain) with TIMER_ABSTIME on a realtime clock. */
function onClockNanosleep(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  if ((int32(ctx.args[1]) & TIMER_ABSTIME) === 0) return answer.continue();
  return shiftDeadlineAt(ctx, state, ctx.args[2] ?? 0n, int32(ctx.args[0]));
}

/** struct itimerspec { it_interval; it_value; }: it_value.tv_sec is at 16. */
const IT_VALUE = 16n;

/** timerfd_settime(fd, flags, new, old): the timerfd's clock is in its fdinfo. */
function onTimerfdSettime(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  const spec = ctx.args[2] ?? 0n;
  if ((int32(ctx.args[1]) & TIMER_ABSTIME) === 0 || spec === 0n) return answer.continue();
  const clock = timerfdClock(ctx.pid, int32(ctx.args[0]));
  if (clock === null) return answer.continue(); // not a timerfd: the kernel refuses it
  return shiftDeadlineAt(ctx, state, spec + IT_VALUE, clock);
}

/** timer_settime(id, flags, new, old): the timer's clock is in /proc/<pid>/timers. */
function onTimerSettime(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  const spec = ctx.args[2] ?? 0n;
  if ((int32(ctx.args[1]) & TIMER_ABSTIME) === 0 || spec === 0n) return answer.continue();
  const clock = posixTimerClock(ctx.pid, int32(ctx.args[0]));
  if (clock === null) return answer.continue(); // unknown timer (or no /proc/<pid>/timers): left alone
  return shiftDeadlineAt(ctx, state, spec + IT_VALUE, clock);
}

/** futex(uaddr, op, val, timeout, …) waiting until an absolute CLOCK_REALTIME time. */
function onFutex(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  if (!futexRealtimeAbsolute(int32(ctx.args[1]))) return answer.continue();
  return shiftDeadlineAt(ctx, state, ctx.args[3] ?? 0n, CLOCK_REALTIME);
}

/** futex_waitv(waiters, nr, flags, timeout, clockid): absolute on `clockid`. */
function onFutexWaitv(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  if (int32(ctx.args[4]) !== CLOCK_REALTIME) return answer.continue();
  return shiftDeadlineAt(ctx, state, ctx.args[3] ?? 0n, CLOCK_REALTIME);
}

/** mq_timedsend/mq_timedreceive(…, abs_timeout): always CLOCK_REALTIME (ipc/mqueue.c). */
function onMqTimed(ctx: HandlerContext<ModulePolicy>, state: TimeSession): Answer {
  return shiftDeadlineAt(ctx, state, ctx.args[4] ?? 0n, CLOCK_REALTIME);
}

type TimeHandler = (ctx: HandlerContext<ModulePolicy>, state: TimeSession) => Answer;

const CALLS: Readonly<Record<string, TimeHandler>> = {
  clock_gettime: onClockGettime,
  gettimeofday: onGettimeofday,
  time: onTime,
  clock_nanosleep: onClockNanosleep,
  timerfd_settime: onTimerfdSettime,
  timer_settime: onTimerSettime,
  futex: onFutex,
  futex_waitv: onFutexWaitv,
  mq_timedsend: onMqTimed,
  mq_timedreceive: onMqTimed,
};

/** Patch the image first if needed, then answer the call. */
function handler(call: TimeHandler) {
  return (ctx: HandlerContext<ModulePolicy>): Answer => {
    const state = stateOf(ctx);
    return ensurePatched(ctx, state, false) ?? call(ctx, state);
  };
}

/** A call every runtime makes right after exec: patch the new image (checked by reading back). */
function onHook(ctx: HandlerContext<ModulePolicy>): Answer {
  // brk is notified for brk(0) only (the filter); a growing heap is not a new image.
  if (ctx.syscall === 'brk' && ctx.args[0] !== 0n) return answer.continue();
  return ensurePatched(ctx, stateOf(ctx), true) ?? answer.continue();
}

export default defineModule<unknown, ModulePolicy>({
  name: 'time',
  syscalls: [...TIME_SYSCALLS, ...TIME_HOOK_SYSCALLS],
  enabled: (policy) => policy.timeStart !== null || policy.randomSeed !== null,
  /**
   * Its after-exec hooks answer continue, and on aarch64 the hook is
   * sched_getaffinity, which the num-cpus module answers itself.
   */
  before: ['num-cpus'],
  handlers: {
    ...Object.fromEntries(TIME_SYSCALLS.map((name) => [name, handler(CALLS[name]!)])),
    ...Object.fromEntries(TIME_HOOK_SYSCALLS.map((name) => [name, onHook])),
  },
  sessionStart(session) {
    start(session, hostArch());
  },
  sessionEnd(session) {
    sessions.delete(session.id);
  },
});
