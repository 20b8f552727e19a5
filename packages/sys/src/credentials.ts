// A sandboxed caller's credentials, read from /proc/<tid>/status, and an
// on-behalf call made with no more capabilities than the caller has: what a
// supervisor needs before it acts for a caller (it runs outside the sandbox).
import { type CapabilitySets, setThreadCapabilities, threadCapabilities } from './caps.js';
import { ERRNO } from './errno.js';

/** The credentials an on-behalf call depends on (/proc/<pid>/status). */
export interface Credentials {
  readonly tgid: number;
  readonly fsuid: string;
  readonly fsgid: string;
  readonly groups: string;
  readonly capEff: bigint;
}

/** The status lines read, each to its end ([ \t]: an empty Groups line must not reach into the next). */
const STATUS_LINES = Object.fromEntries(
  ['Tgid', 'Uid', 'Gid', 'Groups', 'CapEff'].map((name) => [
    name,
    new RegExp(`^${name}:[ \\t]*(.*)$`, 'm'),
  ]),
);

/** The credentials in the text of a /proc/<pid>/status file; null when a line is missing. */
export function credentialsOf(status: string): Credentials | null {
  const line = (name: string) => STATUS_LINES[name]!.exec(status)?.[1];
  const tgid = line('Tgid');
  const uid = line('Uid')?.split(/\s+/);
  const gid = line('Gid')?.split(/\s+/);
  const cap = line('CapEff');
  if (tgid === undefined || uid?.length !== 4 || gid?.length !== 4 || cap === undefined) {
    return null;
  }
  return {
    tgid: Number(tgid),
    fsuid: uid[3]!,
    fsgid: gid[3]!,
    groups: line('Groups')?.trim() ?? '',
    capEff: BigInt(`0x${cap}`),
  };
}

/**
 * An on-behalf call grants the caller nothing more when it has the
 * supervisor's file-system ids and groups, and runs with no capability the
 * caller lacks ({@link withCallerCapabilities}).
 */
export function sameIds(caller: Credentials, own: Credentials): boolean {
  return caller.fsuid === own.fsuid && caller.fsgid === own.fsgid && caller.groups === own.groups;
}

const { EPERM } = ERRNO;

/**
 * Runs `call` with this thread's effective capabilities (`own`, as
 * threadCapabilities() read them in this thread) cut to the caller's
 * (capset(2) acts on the calling thread only), then puts them back: the
 * kernel's checks (DAC, ownership, ptrace_may_access…) see the caller's
 * capabilities. A sandbox runs without capabilities (sandlock drops them at
 * launch), so a root supervisor acts as a root without capabilities would.
 * -EPERM when the set cannot be lowered (the call is then not made).
 * `call` must return -errno rather than throw (a raw syscall); were it to
 * throw, the thread would only keep fewer capabilities.
 */
export function withCallerCapabilities(
  own: CapabilitySets,
  callerEffective: bigint,
  call: () => number,
): number {
  const effective = own.effective & callerEffective;
  if (effective === own.effective) return call();
  if (setThreadCapabilities({ ...own, effective }) < 0) return -EPERM;
  const result = call();
  const restored = setThreadCapabilities(own);
  if (restored < 0) {
    throw new Error(
      `sandlock: capset could not restore the worker's capabilities: errno ${-restored}`,
    );
  }
  return result;
}

/** This thread's own capability sets, read once (a worker thread keeps its own). */
let ownCapabilities: CapabilitySets | null = null;

/**
 * {@link withCallerCapabilities} for a call that returns a value or throws:
 * this thread's sets (read once) cut to `callerEffective` around `call`.
 * Returns what `call` returned, throws what it threw (the sets restored
 * first), and null when the sets could not be lowered (`call` not made).
 */
export function callAsCaller<T>(
  callerEffective: bigint,
  call: () => T,
): { readonly value: T } | null {
  ownCapabilities ??= threadCapabilities();
  let ran: { value: T } | null = null;
  let thrown: unknown;
  let threw = false;
  withCallerCapabilities(ownCapabilities, callerEffective, () => {
    try {
      ran = { value: call() };
    } catch (error) {
      threw = true;
      thrown = error;
    }
    return 0;
  });
  if (threw) throw thrown;
  return ran;
}
