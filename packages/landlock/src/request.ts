import type { Intent } from './intents.js';
import type { PortRange } from './ports.js';
import type { Feature, FsRight, LogFlag, NetRight, Scope } from './rights.js';

/**
 * What to do when the kernel's Landlock ABI lacks something asked for:
 * - `'hard'`: throw, naming the right and the ABI it needs;
 * - `'best-effort'`: leave it out and say so in the result (`dropped`, `status`).
 */
export type Compatibility = 'hard' | 'best-effort';

/** A rule on one path, as the builder recorded it. */
export interface PathRule {
  path: string;
  /** The intent it was given by, or null for raw rights. */
  intent: Intent | null;
  rights: readonly FsRight[];
  /** A missing path is skipped (and reported) instead of failing. */
  optional: boolean;
  /** A symlink at the path is not followed (skipped when optional, else an error). */
  noFollow: boolean;
}

/** Ports a TCP right is allowed on. */
export interface PortRule {
  right: NetRight;
  ranges: readonly PortRange[];
}

/** Everything the caller asked for, before the kernel is consulted. */
export interface RulesetRequest {
  compatibility: Compatibility;
  /** Rights the ruleset denies unless a rule allows them. */
  handledFs: readonly FsRight[];
  handledNet: readonly NetRight[];
  scopes: readonly Scope[];
  logFlags: readonly LogFlag[];
  /** Features that must be supported even in best-effort mode. */
  required: readonly Feature[];
  pathRules: readonly PathRule[];
  portRules: readonly PortRule[];
  /** Upper bound on distinct ports with a rule (one kernel rule per port). */
  maxPortRules: number;
}
