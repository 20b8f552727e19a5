import { realpathSync } from 'node:fs';
import { bytePath, pathWithin } from '@sandlock/sys';
import type { Policy } from './fields.js';
import { expandPresets } from './presets.js';

/**
 * A policy path as the kernel names it: symlinks resolved. A deny path that
 * does not exist yet stays as given.
 */
export function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** `path` (one character per byte, as paths read from the kernel) is `entry` or lies beneath it. */
function heldBy(path: string, entry: string): boolean {
  return pathWithin(path, bytePath(entry));
}

/**
 * The policy as a handler module receives it (structured-cloned into the
 * supervisor's worker threads): checked and typed, the `system` preset as
 * paths (expandPresets), its paths canonical as the Landlock rules are, the seed as a bigint, and the facts several parts
 * of Sandlock derive from it computed once.
 */
export interface ModulePolicy extends Omit<Policy, 'randomSeed'> {
  readonly randomSeed: bigint | null;
  /** The sandbox may read /proc (fsRead or fsWrite holds it, fsDeny does not). */
  readonly procReadable: boolean;
  /**
   * The supervisor hides the host's processes and is the only way into
   * /proc/<pid> (the Landlock rules leave process directories out): /proc is
   * readable and not writable. Where /proc is writable, writes to /proc/<pid>
   * must keep working, and hiding stays best effort.
   */
  readonly hidesProcesses: boolean;
  /**
   * The fs-meta module does the sandbox's metadata changes (chmod, utimes,
   * extended attributes; Landlock does not mediate them) on what it may
   * write: the supervisor runs as root (root owns root's files everywhere)
   * and the sandbox may write somewhere. One that may write nowhere has them
   * refused by its filter.
   */
  readonly mediatesMetadata: boolean;
}

/**
 * The sandbox may read `path` by its policy: fsRead or fsWrite holds it or an
 * ancestor, and no fsDeny entry is it or an ancestor (a deny entry beneath it
 * does not count). `path` is absolute, one character per byte (bytePath).
 */
export function policyReads(
  policy: Pick<Policy, 'fsRead' | 'fsWrite' | 'fsDeny'>,
  path: string,
): boolean {
  const granted = [...policy.fsRead, ...policy.fsWrite];
  if (!granted.some((entry) => heldBy(path, entry))) return false;
  return !policy.fsDeny.some((entry) => heldBy(path, entry));
}

/** The view of `policy` for handler modules; `uid` is the supervising process's. */
export function modulePolicy(given: Policy, uid = process.getuid?.() ?? -1): ModulePolicy {
  const policy = expandPresets(given);
  const paths = {
    fsRead: policy.fsRead.map(canonical),
    fsWrite: policy.fsWrite.map(canonical),
    fsDeny: policy.fsDeny.map(canonical),
  };
  const procReadable = policyReads(paths, '/proc');
  return {
    ...policy,
    ...paths,
    randomSeed: policy.randomSeed === null ? null : BigInt(policy.randomSeed),
    procReadable,
    hidesProcesses: procReadable && !paths.fsWrite.some((entry) => pathWithin('/proc', entry)),
    mediatesMetadata: policy.fsWrite.length > 0 && uid === 0,
  };
}
