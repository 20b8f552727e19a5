// Turns a plan into a ruleset fd: opens each rule's path, fits its rights to
// what the path is, and adds the rules.

import { close } from '@sandlock/sys';
import type { LandlockSupport } from './detect.js';
import { LandlockRuleError } from './errors.js';
import { addPathRule, addPortRule, createRulesetFd } from './kernel.js';
import { openRulePath } from './paths.js';
import {
  type DroppedFeature,
  describePathRule,
  type EnforcementStatus,
  type PlannedPathRule,
  type RulesetPlan,
} from './plan.js';
import { FILE_RIGHTS, type FsRight, maskOf, type NetRight, namesOf, type Scope } from './rights.js';

export interface SkippedPath {
  path: string;
  /** Why it was skipped, e.g. 'ENOENT'. */
  code: string;
}

/** A ruleset ready for `landlock_restrict_self`, and what it enforces. */
export interface LandlockRuleset {
  /**
   * The ruleset fd (close-on-exec), for the exec stub's `landlockRestrictSelf`
   * step; null when status is 'none'. The caller closes it.
   */
  fd: number | null;
  /** The ABI version used (0: Landlock unavailable). */
  abi: number;
  status: EnforcementStatus;
  /** What was left out because the ABI is too old (best-effort mode only). */
  dropped: DroppedFeature[];
  /** Optional rule paths that did not exist. */
  skippedPaths: SkippedPath[];
  /** What the ruleset actually denies by default. */
  handled: { fs: FsRight[]; net: NetRight[]; scopes: Scope[] };
  /** Flags for landlock_restrict_self (the `landlockRestrictSelf` step's `flags`). */
  restrictFlags: number;
  /** Fixed Landlock errata reported by the kernel (0 when unknown). */
  errata: number;
  /** The rules added to the ruleset: one per path opened, one per TCP port (none when status is 'none'). */
  ruleCount: { paths: number; ports: number };
}

const FILE_MASK = maskOf(FILE_RIGHTS);

/**
 * The rights of a rule that lands on a non-directory. An intent keeps its file
 * rights; raw rights that only make sense for directories are an error, as
 * the kernel would refuse them with EINVAL (security/landlock/fs.c).
 */
function fileRights(planned: PlannedPathRule): bigint {
  const { rule } = planned;
  if (rule.intent === null) {
    const dirOnly = namesOf('fs', planned.requested & ~FILE_MASK);
    if (dirOnly.length > 0) {
      throw new LandlockRuleError(
        `Landlock rule '${describePathRule(rule)}' names a file, but ${dirOnly.map((r) => `'${r}'`).join(', ')} only apply to directories; a file takes ${FILE_RIGHTS.join(', ')}`,
      );
    }
  }
  return planned.allowed & FILE_MASK;
}

/**
 * Creates the ruleset `plan` describes. Paths are opened and checked even
 * when nothing will be enforced (status 'none'), so a wrong path is an error
 * on every kernel alike. On any error every descriptor opened so far is
 * closed before the error is thrown.
 */
export function createRuleset(plan: RulesetPlan, support: LandlockSupport): LandlockRuleset {
  const skippedPaths: SkippedPath[] = [];
  const ruleCount = { paths: 0, ports: 0 };
  const rulesetFd = plan.status === 'none' ? null : createRulesetFd(plan);
  try {
    for (const planned of plan.pathRules) {
      const { rule } = planned;
      const opened = openRulePath(rule.path, rule.optional, rule.noFollow);
      if ('missing' in opened) {
        skippedPaths.push({ path: rule.path, code: opened.missing });
        continue;
      }
      try {
        const allowed = opened.isDirectory ? planned.allowed : fileRights(planned);
        // A rule left without rights would be refused (ENOMSG); it grants nothing anyway.
        if (rulesetFd !== null && allowed !== 0n) {
          addPathRule(rulesetFd, opened.fd, allowed, rule.path);
          ruleCount.paths++;
        }
      } finally {
        close(opened.fd);
      }
    }
    if (rulesetFd !== null) {
      for (const [port, access] of plan.portAccess) {
        addPortRule(rulesetFd, port, BigInt(access));
        ruleCount.ports++;
      }
    }
  } catch (error) {
    if (rulesetFd !== null) close(rulesetFd);
    throw error;
  }
  return {
    fd: rulesetFd,
    abi: plan.abi,
    status: plan.status,
    dropped: plan.dropped,
    skippedPaths,
    handled: {
      fs: namesOf('fs', plan.handledFs) as FsRight[],
      net: namesOf('net', plan.handledNet) as NetRight[],
      scopes: namesOf('scope', plan.scoped) as Scope[],
    },
    restrictFlags: plan.restrictFlags,
    errata: support.errata,
    ruleCount,
  };
}
