// The virtual CPU count as a handler module of @sandlock/dispatch. The
// supervisor imports this file in its worker threads by URL (NUM_CPUS_MODULE),
// so it has no side effects at import.
import { readFileSync } from 'node:fs';
import { type Answer, answer, defineModule, type HandlerContext } from '@sandlock/dispatch/module';
import type { ModulePolicy } from '@sandlock/policy';
import { trySyscall } from '@sandlock/sys';
import { affinityReply, cpuinfoWith, cpuList, procStatWith } from './content.js';
import { OPEN_SYSCALLS, openRequest, StaticFiles, serve } from './synthetic.js';

/** The syscalls the num-cpus module is notified of. */
export const NUM_CPUS_SYSCALLS: readonly string[] = ['sched_getaffinity', ...OPEN_SYSCALLS];

const CPU_DIR = '/sys/devices/system/cpu';
const FILES: ReadonlySet<string> = new Set([
  '/proc/cpuinfo',
  '/proc/stat',
  `${CPU_DIR}/online`,
  `${CPU_DIR}/present`,
  `${CPU_DIR}/possible`,
  `${CPU_DIR}/offline`,
]);
const files = new StaticFiles();

interface KernelMask {
  /** What sched_getaffinity returns for a large buffer: the kernel's mask size. */
  readonly bytes: number;
  /** The smallest buffer it accepts, in bits: nr_cpu_ids rounded up to longs. */
  readonly minBits: number;
}

let kernelMask: KernelMask | null = null;

/** Probed once per worker with the real call on the supervisor itself. */
function probeKernelMask(): KernelMask {
  if (kernelMask !== null) return kernelMask;
  const buffer = Buffer.alloc(8192);
  const bytes = trySyscall('sched_getaffinity', 0, buffer.length, buffer);
  let minBytes = 8;
  while (minBytes < buffer.length && trySyscall('sched_getaffinity', 0, minBytes, buffer) < 0) {
    minBytes += 8;
  }
  kernelMask = { bytes: bytes > 0 ? bytes : 8, minBits: minBytes * 8 };
  return kernelMask;
}

/** sched_getaffinity(pid, len, mask): CPUs 0…N-1, with the raw syscall's conventions. */
function onSchedGetaffinity(ctx: HandlerContext<ModulePolicy>): Answer {
  const count = ctx.session.policy.numCpus!;
  const pid = Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  const len = ctx.args[1] ?? 0n;
  const address = ctx.args[2] ?? 0n;
  const kernel = probeKernelMask();
  const reply = affinityReply(count, len, kernel.bytes, kernel.minBits);
  if ('errno' in reply) return answer.errno(reply.errno);
  if (pid !== 0) {
    // The kernel's answer for that pid (ESRCH…), without its mask.
    const probe = Buffer.alloc(kernel.bytes);
    const result = trySyscall('sched_getaffinity', pid, probe.length, probe);
    if (result < 0) return answer.errno(-result);
  }
  ctx.write(address, reply.mask); // EFAULT on a bad pointer, as the kernel
  return answer.value(reply.mask.length);
}

const realText = new Map<string, string>();
function realOnce(path: string): string {
  let text = realText.get(path);
  if (text === undefined) {
    text = readFileSync(path, 'utf8');
    realText.set(path, text);
  }
  return text;
}

/** Opens of /proc/cpuinfo, /proc/stat and the CPU lists of /sys (read-only): synthetic files. */
function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  const count = ctx.session.policy.numCpus!;
  const request = openRequest(ctx);
  if (request === null || !FILES.has(request.path)) return answer.continue();
  switch (request.path) {
    case '/proc/cpuinfo':
      return files.serve(cpuinfoWith(realOnce('/proc/cpuinfo'), count), request.cloexec);
    case '/proc/stat':
      // Changes all the time (CPU times, context switches): read for each open.
      return serve(procStatWith(readFileSync('/proc/stat', 'utf8'), count), request.cloexec);
    case `${CPU_DIR}/offline`:
      return files.serve('\n', request.cloexec);
    default:
      return files.serve(cpuList(count), request.cloexec);
  }
}

/**
 * On for a sandbox whose policy has `numCpus`: sched_getaffinity (nproc,
 * os.availableParallelism(), Python's os.sched_getaffinity), /proc/cpuinfo,
 * /proc/stat (Node's os.cpus()) and /sys/devices/system/cpu/{online,
 * present,possible,offline} (glibc's sysconf(_SC_NPROCESSORS_ONLN), so
 * Python's os.cpu_count()) show N CPUs.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'num-cpus',
  syscalls: NUM_CPUS_SYSCALLS,
  enabled: (policy) => policy.numCpus !== null,
  handlers: {
    sched_getaffinity: onSchedGetaffinity,
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
  },
});
