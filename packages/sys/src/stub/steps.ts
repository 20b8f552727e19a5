import {
  ADDR_NO_RANDOMIZE,
  CLOSE_RANGE_CLOEXEC,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_THP_DISABLE,
  RLIMIT,
  type RlimitResource,
} from '../constants.js';
import { type Arch, syscallNumber } from '../syscalls/index.js';
import type { ScriptEncoder } from './script.js';

/**
 * One confinement step the exec stub performs before exec, in the order given.
 * Each becomes one or two raw syscalls; every one is fatal on failure, and the
 * failure names the step.
 */
export type LaunchStep =
  | { kind: 'setsid' }
  | { kind: 'setpgid' }
  | { kind: 'chdir'; path: string }
  /** PR_SET_PDEATHSIG, then a check that the parent is still `parentPid` (prctl(2)). */
  | { kind: 'parentDeathSignal'; signal: number; parentPid: number }
  | { kind: 'noNewPrivs' }
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
  | { kind: 'seccompFilter'; program: Buffer; flags: number; listener?: boolean };

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

export function encodeStep(step: LaunchStep, context: StepContext): void {
  const { encoder } = context;
  switch (step.kind) {
    case 'setsid':
      encoder.step({ name: 'setsid', nr: sys(context, 'setsid'), args: [], fatal: true });
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
      const words = Math.max(1, Math.ceil((Math.max(-1, ...step.cpus) + 1) / 64));
      const mask = Buffer.alloc(words * 8);
      for (const cpu of step.cpus) {
        const word = Math.floor(cpu / 64);
        const bit = 1n << BigInt(cpu % 64);
        mask.writeBigUInt64LE(mask.readBigUInt64LE(word * 8) | bit, word * 8);
      }
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

/** close_range(3, ~0U, CLOSE_RANGE_CLOEXEC): every fd above stdio closes at exec. */
export function encodeCloseExtraFds(context: StepContext): void {
  context.encoder.step({
    name: 'close_range',
    nr: sys(context, 'close_range'),
    args: [3, 0xffffffff, CLOSE_RANGE_CLOEXEC],
    fatal: true,
  });
}
