// The random module (policy `randomSeed`) as a handler module of
// @sandlock/dispatch: getrandom(2) and reads of /dev/urandom and /dev/random
// return seeded bytes. Each process of the sandbox reads its own streams,
// named by its place in the process tree (random-lineage.ts), so what a
// program reads does not depend on scheduling. The supervisor imports this
// file by URL (RANDOM_MODULE) in its worker threads and on its main thread:
// no side effects at import.
import {
  type Answer,
  answer,
  type DeferredContext,
  defineModule,
  type HandlerContext,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import {
  CLONE_PARENT,
  CLONE_THREAD,
  GRND_INSECURE,
  GRND_NONBLOCK,
  GRND_RANDOM,
  hasSyscall,
  readOnlyFile,
} from '@sandlock/sys';
import { deviceFile, FeedError, warmUpFeeder } from './random-feeder.js';
import { Lineage, type ProcessEntry } from './random-lineage.js';
import { randomOpen } from './random-open.js';
import {
  BOOT_ID_STREAM,
  deviceStream,
  getrandomStream,
  Keystream,
  streamKey,
  uuidStream,
  uuidText,
} from './random-stream.js';

/** The open calls of this architecture (aarch64 has no `open`). */
const OPEN_SYSCALLS = ['open', 'openat', 'openat2'].filter((name) => hasSyscall(name));
/** The calls that can make a process (clone3 is refused with ENOSYS by the sandbox's filter). */
const FORK_SYSCALLS = ['clone', 'fork', 'vfork'].filter((name) => hasSyscall(name));

/** The syscalls the random module is notified of. */
export const RANDOM_SYSCALLS: readonly string[] = ['getrandom', ...OPEN_SYSCALLS, ...FORK_SYSCALLS];

/**
 * Bytes one getrandom(2) answer fills at most. getrandom(2) may return fewer
 * bytes than asked for past 256 (a signal), and callers loop (glibc's
 * getentropy and arc4random, Python, OpenSSL, Go). The dispatch loop is
 * shared, so an answer should cost about what any answer costs: beside four
 * threads asking for 32 MiB at a time, a sandbox on the same loop kept 0.43
 * of its calls with 16 KiB (as beside any busy neighbour), 0.20 with 64 KiB,
 * none with the kernel's old limit of 32 MiB (docs/benchmarks.md).
 */
export const GETRANDOM_MAX = 16 * 1024;

/** Worker thread: the process trees of the sandboxes this worker supervises, by session id. */
const lineages = new Map<number, Lineage>();

function lineageOf(session: WorkerSession): Lineage {
  let lineage = lineages.get(session.id);
  if (lineage === undefined) {
    lineage = new Lineage(session.programPid);
    lineages.set(session.id, lineage);
  }
  return lineage;
}

/**
 * The process the calling thread belongs to (threads share their process's
 * streams); undefined when the caller is gone (nothing will read the answer).
 */
function callerProcess(ctx: HandlerContext): ProcessEntry | undefined {
  return lineageOf(ctx.session).ofThread(ctx.pid);
}

/**
 * getrandom(buf, buflen, flags): the next bytes of the caller's getrandom
 * stream. Flags are checked as drivers/char/random.c does (unknown bits, or
 * GRND_INSECURE with GRND_RANDOM: EINVAL); the call never blocks.
 */
function onGetrandom(ctx: HandlerContext<ModulePolicy>): Answer {
  const seed = ctx.session.policy.randomSeed!;
  const { buf, buflen, flags } = ctx.argsOf('getrandom');
  const flagBits = Number(flags);
  if ((flagBits & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) !== 0)
    return answer.errno('EINVAL');
  if ((flagBits & (GRND_INSECURE | GRND_RANDOM)) === (GRND_INSECURE | GRND_RANDOM)) {
    return answer.errno('EINVAL');
  }
  const length = Number(BigInt(buflen) < GETRANDOM_MAX ? BigInt(buflen) : GETRANDOM_MAX);
  if (length === 0) return answer.value(0);
  const entry = callerProcess(ctx);
  if (entry === undefined) return unplaced(ctx);
  entry.getrandom ??= Keystream.named(seed, getrandomStream(entry.label));
  // A bad buffer: write() throws CallError(EFAULT), which the call returns.
  ctx.write(BigInt(buf), entry.getrandom.take(length));
  return answer.value(length);
}

interface DevicePayload {
  readonly key: Uint8Array;
  readonly readWrite: boolean;
  readonly nonblock: boolean;
  readonly cloexec: boolean;
}

/**
 * An open of a random device: the stream's key is chosen here, the file made
 * on the main thread. Of /proc/sys/kernel/random/uuid: a file holding the
 * next UUID of the caller's stream; of boot_id: the sandbox's one UUID.
 */
function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  const seed = ctx.session.policy.randomSeed!;
  const open = randomOpen(ctx);
  if (open === null) return answer.continue();
  const entry = callerProcess(ctx);
  if (entry === undefined) return unplaced(ctx);
  if ('file' in open) {
    const stream =
      open.file === 'uuid' ? uuidStream(entry.label, entry.uuidOpens++) : BOOT_ID_STREAM;
    const fd = readOnlyFile(uuidText(Keystream.named(seed, stream).take(16)));
    return answer.inject(fd, { cloexec: open.cloexec });
  }
  const key = streamKey(seed, deviceStream(entry.label, entry.deviceOpens++));
  const payload: DevicePayload = { key, ...open };
  return answer.defer(payload);
}

/** Main thread: a new endless keystream file, injected as the open's result. */
function onOpenDeferred(ctx: DeferredContext): Answer {
  const { key, readWrite, nonblock, cloexec } = ctx.payload as DevicePayload;
  try {
    const fd = deviceFile(key, readWrite, nonblock);
    return answer.inject(fd, { cloexec });
  } catch (error) {
    if (error instanceof FeedError) return answer.errno(error.errno);
    throw error;
  }
}

/**
 * A caller whose place in the sandbox's process tree is not known (its
 * stream is chosen by it): refused rather than given a stream that another
 * process may share.
 */
function unplaced(ctx: HandlerContext<ModulePolicy>): Answer {
  ctx.refused({
    what: `${ctx.syscall}: process ${ctx.pid} has no known place in the sandbox's tree`,
    rule: 'randomSeed: each process draws from its own stream',
  });
  return answer.errno('ESRCH');
}

/** A fork-like call: noted before the kernel makes the child, which it lets through. */
function onFork(ctx: HandlerContext<ModulePolicy>): Answer {
  let clonesParent = false;
  if (ctx.syscall === 'clone') {
    const { flags } = ctx.argsOf('clone');
    if ((BigInt(flags) & BigInt(CLONE_THREAD)) !== 0n) return answer.continue(); // a thread shares its process's streams
    clonesParent = (BigInt(flags) & BigInt(CLONE_PARENT)) !== 0n;
  }
  const entry = callerProcess(ctx);
  if (entry === undefined) return unplaced(ctx);
  lineageOf(ctx.session).forking(entry.pid, clonesParent);
  return answer.continue();
}

/**
 * On for a sandbox whose policy has `randomSeed`: getrandom(2) (Python's
 * os.urandom, random, uuid; OpenSSL; glibc's arc4random) and every read-only
 * open of /dev/urandom or /dev/random return seeded, reproducible bytes.
 */
/** This instance runs on the supervisor's main thread (setup says), where device files are made. */
let onMainThread = false;

export default defineModule<unknown, ModulePolicy>({
  name: 'random',
  syscalls: RANDOM_SYSCALLS,
  /**
   * A fork the process limit refuses is no fork of the process tree the
   * streams are named by.
   */
  after: ['process-limit'],
  /**
   * It serves /proc/sys/kernel/random/uuid and boot_id, which the proc-pids
   * module would otherwise open for the sandbox, real.
   */
  before: ['proc-pids'],
  setup(_options, env) {
    onMainThread = env.thread === 'main';
  },
  enabled(policy) {
    const on = policy.randomSeed !== null;
    // The main thread asks before it launches a sandbox with this policy: the feeder thread
    // starts meanwhile rather than at the first open.
    if (on && onMainThread) warmUpFeeder();
    return on;
  },
  handlers: {
    getrandom: onGetrandom,
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
    ...Object.fromEntries(FORK_SYSCALLS.map((name) => [name, onFork])),
  },
  deferred: Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpenDeferred])),
  sessionStart(session) {
    lineageOf(session);
  },
  processStart(session, pid) {
    // Placed as soon as it is seen, while its parent is likely still there.
    lineageOf(session).entry(pid);
  },
  processExit(session, pid) {
    lineages.get(session.id)?.exited(pid);
  },
  sessionEnd(session) {
    lineages.delete(session.id);
  },
});
