// A sandboxed caller's credentials, read from /proc/<tid>/status, and an
// on-behalf call made with no more capabilities than the caller has: what a
// supervisor needs before it acts for a caller (it runs outside the sandbox).
import { readFileSync } from 'node:fs';
import { type CapabilitySets, setThreadCapabilities, threadCapabilities } from './caps.js';
import { ERRNO } from './errno.js';
import { trySyscall } from './libc.js';

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
 * The file-system ids and groups of a sandbox that runs as another user
 * than its supervisor (sandlock's SpawnOptions.user): what its on-behalf
 * lookups must be judged as. Constant for a sandbox: it holds no
 * capability and runs with no_new_privs, so it cannot change them.
 */
export interface CallerIds {
  readonly fsuid: number;
  readonly fsgid: number;
  readonly groups: readonly number[];
}

/** The ids of the sandbox whose call this thread handles, when not the supervisor's. */
let currentIds: CallerIds | undefined;

/**
 * Sets the ids every on-behalf call of this thread takes until the next
 * call ({@link withCallerCapabilities}): the dispatch worker sets them for
 * each notification, from its sandbox's policy view (undefined: the
 * supervisor's own).
 */
export function setCallerIds(ids: CallerIds | undefined): void {
  currentIds = ids;
}

/** This thread's own ids, read once (setfsuid(2), setfsgid(2), setgroups(2) as raw calls act on one thread). */
let ownIds: CallerIds | null = null;

function readOwnIds(): CallerIds {
  const own = credentialsOf(readFileSync('/proc/thread-self/status', 'utf8'));
  if (own === null) throw new Error('sandlock: cannot read this thread’s credentials');
  return {
    fsuid: Number(own.fsuid),
    fsgid: Number(own.fsgid),
    groups: own.groups === '' ? [] : own.groups.split(/\s+/).map(Number),
  };
}

/** setgroups, setfsgid, setfsuid of this thread; false when one did not take. */
function setThreadIds(ids: CallerIds): boolean {
  const groups = Buffer.alloc(Math.max(4, ids.groups.length * 4));
  for (const [index, gid] of ids.groups.entries()) groups.writeUInt32LE(gid, index * 4);
  if (trySyscall('setgroups', ids.groups.length, groups) < 0) return false;
  // setfsuid(2) and setfsgid(2) return the previous id, never an error: a
  // second call with -1 (no change) tells whether the first one took.
  trySyscall('setfsgid', ids.fsgid);
  if (trySyscall('setfsgid', -1) !== ids.fsgid) return false;
  trySyscall('setfsuid', ids.fsuid);
  return trySyscall('setfsuid', -1) === ids.fsuid;
}

function sameAsOwn(ids: CallerIds, own: CallerIds): boolean {
  return (
    ids.fsuid === own.fsuid &&
    ids.fsgid === own.fsgid &&
    ids.groups.length === own.groups.length &&
    ids.groups.every((gid, index) => gid === own.groups[index])
  );
}

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
  given?: CallerIds,
): number {
  const ids = given ?? currentIds;
  ownIds ??= ids !== undefined ? readOwnIds() : null;
  const switchIds = ids !== undefined && ownIds !== null && !sameAsOwn(ids, ownIds);
  const effective = own.effective & callerEffective;
  if (effective === own.effective && !switchIds) return call();
  // The ids first: changing them needs CAP_SETUID and CAP_SETGID, which the
  // lowered set lacks. A fsuid other than 0 also clears the file-system
  // capabilities from the effective set (capabilities(7)).
  if (switchIds && !setThreadIds(ids)) {
    restoreIds(own);
    return -EPERM;
  }
  if (effective !== own.effective && setThreadCapabilities({ ...own, effective }) < 0) {
    if (switchIds) restoreIds(own);
    return -EPERM;
  }
  const result = call();
  const restored = setThreadCapabilities(own);
  if (restored < 0) {
    throw new Error(
      `sandlock: capset could not restore the worker's capabilities: errno ${-restored}`,
    );
  }
  if (switchIds) restoreIds(own);
  return result;
}

/** Puts this thread's own ids back, then its capabilities (a fsuid back to 0 raises some). */
function restoreIds(own: CapabilitySets): void {
  if (setThreadCapabilities(own) < 0 || !setThreadIds(ownIds!) || setThreadCapabilities(own) < 0) {
    throw new Error("sandlock: could not restore the worker's ids and capabilities");
  }
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
  ids?: CallerIds,
): { readonly value: T } | null {
  ownCapabilities ??= threadCapabilities();
  let ran: { value: T } | null = null;
  let thrown: unknown;
  let threw = false;
  withCallerCapabilities(
    ownCapabilities,
    callerEffective,
    () => {
      try {
        ran = { value: call() };
      } catch (error) {
        threw = true;
        thrown = error;
      }
      return 0;
    },
    ids,
  );
  if (threw) throw thrown;
  return ran;
}
