// Resolves a request against a Landlock ABI version: which rights the ruleset
// handles, which each rule allows, and what had to be left out. Pure: no
// syscalls, so every ABI can be tested on any kernel.

import type { LandlockSupport } from './detect.js';
import {
  LandlockAbiError,
  LandlockRuleError,
  LandlockUnavailableError,
  type MissingFeature,
} from './errors.js';
import { INTENT_RIGHTS } from './intents.js';
import { formatRange } from './ports.js';
import type { PathRule, PortRule, RulesetRequest } from './request.js';
import {
  FEATURES,
  type Feature,
  type FeatureCategory,
  type FsRight,
  KNOWN_ABI,
  maskOf,
  type NetRight,
} from './rights.js';

/** A right, scope or flag left out because the kernel's ABI is older than it. */
export interface DroppedFeature {
  feature: Feature;
  category: FeatureCategory;
  /** The ABI version that introduced it. */
  needsAbi: number;
  /** The rules that asked for it, e.g. `write /tmp/x` or `connect_tcp 8000-8010`. */
  rules: string[];
}

/** How much of the request the kernel enforces. */
export type EnforcementStatus = 'full' | 'partial' | 'none';

export interface PlannedPathRule {
  rule: PathRule;
  /** Rights to grant beneath a directory, within the handled rights. */
  allowed: bigint;
  /** Rights the rule asked for before the ABI was considered (for the file check). */
  requested: bigint;
}

export interface RulesetPlan {
  /** The ABI version the plan is for (0: Landlock unavailable). */
  abi: number;
  status: EnforcementStatus;
  handledFs: bigint;
  handledNet: bigint;
  scoped: bigint;
  restrictFlags: number;
  dropped: DroppedFeature[];
  pathRules: PlannedPathRule[];
  /** Port → the TCP rights to allow (bit mask); ports without a rule are absent. */
  portAccess: Map<number, number>;
}

export function describePathRule(rule: PathRule): string {
  return `${rule.intent ?? `rights [${rule.rights.join(',')}]`} ${rule.path}`;
}

export function describePortRule(rule: PortRule): string {
  return `${rule.right} ${rule.ranges.map(formatRange).join(',')}`;
}

/** The rights a path rule asks for: an intent's are trimmed to what the ruleset handles. */
function requestedRights(rule: PathRule, handled: ReadonlySet<FsRight>): FsRight[] {
  if (rule.intent !== null) {
    // Rights the ruleset does not handle are allowed everywhere anyway.
    return INTENT_RIGHTS[rule.intent].filter((right) => handled.has(right));
  }
  const unhandled = rule.rights.filter((right) => !handled.has(right));
  if (unhandled.length > 0) {
    throw new LandlockRuleError(
      `Landlock rule '${describePathRule(rule)}' allows ${quote(unhandled)}, which the ruleset does not handle (see the 'handle.fs' option)`,
    );
  }
  return [...rule.rights];
}

function quote(names: readonly string[]): string {
  return names.map((name) => `'${name}'`).join(', ');
}

/** Port → requested TCP rights (bit mask), checking the cap on distinct ports. */
function portAccessOf(request: RulesetRequest): Map<number, number> {
  const access = new Map<number, number>();
  const handled = new Set<NetRight>(request.handledNet);
  let distinct = 0;
  for (const rule of request.portRules) {
    if (!handled.has(rule.right)) {
      throw new LandlockRuleError(
        `Landlock rule '${describePortRule(rule)}' needs '${rule.right}' handled (see the 'handle.net' option)`,
      );
    }
    const bit = Number(FEATURES[rule.right].bit);
    for (const { from, to } of rule.ranges) {
      for (let port = from; port <= to; port++) {
        const before = access.get(port) ?? 0;
        if (before === 0) distinct++;
        access.set(port, before | bit);
      }
    }
  }
  if (distinct > request.maxPortRules) {
    throw new RangeError(
      `Landlock TCP rules cover ${distinct} ports, more than the limit of ${request.maxPortRules} (one kernel rule per port); narrow the ranges, or leave TCP unhandled to allow every port`,
    );
  }
  return access;
}

/** Every feature the request asks for, with the rules that ask for it. */
function requestedFeatures(
  request: RulesetRequest,
  pathRules: readonly { rule: PathRule; rights: readonly FsRight[] }[],
): Map<Feature, string[]> {
  const features = new Map<Feature, string[]>();
  const note = (feature: Feature, rule?: string) => {
    let rules = features.get(feature);
    if (!rules) {
      rules = [];
      features.set(feature, rules);
    }
    if (rule !== undefined && !rules.includes(rule)) rules.push(rule);
  };
  for (const feature of [
    ...request.handledFs,
    ...request.handledNet,
    ...request.scopes,
    ...request.logFlags,
  ]) {
    note(feature);
  }
  for (const { rule, rights } of pathRules) {
    for (const right of rights) note(right, describePathRule(rule));
  }
  for (const rule of request.portRules) note(rule.right, describePortRule(rule));
  return features;
}

/**
 * Decides what a ruleset for `request` holds on a kernel with `support`.
 * Throws in hard mode (or for a required feature) when the ABI lacks something;
 * throws on contradictory rules in any mode.
 */
export function planRuleset(request: RulesetRequest, support: LandlockSupport): RulesetPlan {
  const handledFsSet = new Set<FsRight>(request.handledFs);
  const pathRules = request.pathRules.map((rule) => ({
    rule,
    rights: requestedRights(rule, handledFsSet),
  }));
  const portAccess = portAccessOf(request);
  if (request.handledFs.length + request.handledNet.length + request.scopes.length === 0) {
    throw new LandlockRuleError('Landlock ruleset handles nothing: every category is turned off');
  }

  const features = requestedFeatures(request, pathRules);
  // A kernel newer than the table is used at the table's level.
  const abi = support.available ? Math.min(support.abi, KNOWN_ABI) : 0;
  const missing: MissingFeature[] = [];
  for (const feature of new Set<Feature>([...features.keys(), ...request.required])) {
    const needsAbi = FEATURES[feature].abi;
    if (needsAbi > abi) missing.push({ feature, needsAbi });
  }
  missing.sort((a, b) => a.needsAbi - b.needsAbi);

  if (!support.available && (request.compatibility === 'hard' || request.required.length > 0)) {
    throw new LandlockUnavailableError(support.reason);
  }
  const requiredMissing = missing.filter((entry) => request.required.includes(entry.feature));
  if (request.compatibility === 'hard' && missing.length > 0) {
    throw new LandlockAbiError(missing, abi);
  }
  if (requiredMissing.length > 0) throw new LandlockAbiError(requiredMissing, abi);

  const dropped: DroppedFeature[] = missing.map(({ feature, needsAbi }) => ({
    feature,
    category: FEATURES[feature].category,
    needsAbi,
    rules: features.get(feature) ?? [],
  }));
  const supported = (feature: Feature) => FEATURES[feature].abi <= abi;
  const handledFs = maskOf(request.handledFs.filter(supported));
  const handledNet = maskOf(request.handledNet.filter(supported));
  const scoped = maskOf(request.scopes.filter(supported));
  const restrictFlags = Number(maskOf(request.logFlags.filter(supported)));

  const enforced = abi > 0 && (handledFs | handledNet | scoped) !== 0n;
  const status: EnforcementStatus = !enforced ? 'none' : dropped.length > 0 ? 'partial' : 'full';
  // A rule may only allow handled rights (else EINVAL, security/landlock/syscalls.c).
  const netMask = Number(handledNet);
  for (const [port, bits] of portAccess) {
    if ((bits & netMask) === 0) portAccess.delete(port);
    else portAccess.set(port, bits & netMask);
  }
  return {
    abi,
    status,
    handledFs,
    handledNet,
    scoped,
    restrictFlags: enforced ? restrictFlags : 0,
    dropped,
    pathRules: pathRules.map(({ rule, rights }) => ({
      rule,
      requested: maskOf(rights),
      allowed: maskOf(rights) & handledFs,
    })),
    portAccess,
  };
}
