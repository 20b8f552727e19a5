// What a policy becomes on this kernel, without starting anything.
import {
  type DroppedFeature,
  type FsRight,
  LandlockAbiError,
  type LandlockRuleset,
  LandlockUnavailableError,
  type NetRight,
  type Scope,
} from '@sandlock/landlock';
import { type RuleSet, sandboxRules } from '@sandlock/seccomp';
import { type Arch, close, hostArch } from '@sandlock/sys';
import { type Confinement, prepareConfinement } from './confine.js';
import type { SupervisionPlan } from './plan.js';
import type { Policy } from './policy.js';

/** What a sandbox of a policy is, on this kernel, before it starts (`sandbox.describe()`). */
export interface SandboxDescription {
  /** The resolved policy: the JSON `sandlock policy` prints, `Sandbox.fromPolicy` takes. */
  policy: Policy;
  arch: Arch;
  landlock: {
    /** The kernel's Landlock ABI version (0: Landlock is unavailable). */
    abi: number;
    /** How much of the policy the kernel enforces: 'full', 'partial' (bestEffort, some rights dropped), 'none'. */
    status: 'full' | 'partial' | 'none';
    /** What the sandbox's domain denies by default: its filesystem and TCP rights, and its scopes. */
    handled: { fs: FsRight[]; net: NetRight[]; scopes: Scope[] };
    /**
     * What the policy asks for and this kernel's ABI lacks, with the ABI that
     * brought it and the rules that ask for it. With `bestEffort` it is left
     * out; without, the sandbox does not start (`refused`).
     */
    dropped: DroppedFeature[];
    /** Without `bestEffort`: why `spawn()` and `run()` would reject on this kernel; null when they would not. */
    refused: string | null;
    /** The rules the ruleset holds: one per path, one per TCP port. */
    rules: { paths: number; ports: number };
    /** Optional rule paths that did not exist (entries found by listing a directory that is carved). */
    skippedPaths: { path: string; code: string }[];
    /** The sandbox cannot signal processes outside it (its domains are signal-scoped). */
    signalScoped: boolean;
  };
  seccomp: {
    /** The size of the filter program, in BPF instructions. */
    instructions: number;
    /** Syscalls refused whatever their arguments, with the errno they fail with. */
    denied: { syscall: string; errno: number }[];
    /** Syscalls refused for some arguments only (namespace flags of clone, TIOCSTI, raw sockets…). */
    restricted: string[];
    /**
     * Syscalls the supervisor is notified of, each with the modules that see
     * it in chain order (empty: notified for a sandbox started inside this one).
     */
    notified: { syscall: string; modules: string[] }[];
  };
  /** A supervisor answers the notified syscalls (in this process, or the outer sandbox's). */
  supervisor: boolean;
  /** The supervisor of the sandbox this process runs in takes this policy on (nesting). */
  delegated: boolean;
  /** The modules on for this policy, in chain order (built-in ones, then plugins). */
  modules: string[];
  /** The reaper makes the calls modules make on the sandbox's behalf, in the policy's domain. */
  reaperBroker: boolean;
  /** Processes outside the sandbox are hidden from its /proc. */
  hidesProcesses: boolean;
  /** chmod, utimes and extended attribute changes are done by the supervisor, on what the policy lets the sandbox write. */
  mediatesMetadata: boolean;
  /** Protections that would be dropped (bestEffort), one sentence each, as `SandboxProcess.warnings`. */
  warnings: string[];
}

function closeAll(confinement: Confinement): void {
  for (const fd of confinement.fds) close(fd);
}

/** A syscall's rules: refused outright, refused for some arguments, or neither. */
function refusal(ruleSet: RuleSet, name: string): { errno: number } | 'some' | null {
  const rules = ruleSet.syscalls.get(name) ?? [];
  let some = false;
  for (const rule of rules) {
    const always = (rule.when ?? []).length === 0;
    if (rule.action.kind === 'errno') {
      if (always) return { errno: rule.action.errno };
      some = true;
    } else if (always) break; // an unconditional rule that lets it through ends the list
  }
  return some ? 'some' : null;
}

function landlockOf(
  ruleset: LandlockRuleset,
  inner: LandlockRuleset,
  scoped: boolean,
  refused: string | null,
): SandboxDescription['landlock'] {
  return {
    abi: ruleset.abi,
    status: ruleset.status,
    handled: {
      fs: ruleset.handled.fs,
      net: ruleset.handled.net,
      // The sandbox's own layer adds the scopes the policy's lacks.
      scopes: [...new Set([...ruleset.handled.scopes, ...inner.handled.scopes])],
    },
    dropped: ruleset.dropped,
    refused,
    rules: ruleset.ruleCount,
    skippedPaths: [...ruleset.skippedPaths, ...inner.skippedPaths],
    signalScoped: scoped,
  };
}

/** Builds what `start` would (its Landlock rulesets closed again) and says what it is. */
export function describePolicy(policy: Policy, plan: SupervisionPlan): SandboxDescription {
  const options = {
    notify: plan.notify,
    hideProcesses: plan.hideProcesses,
    unixSockets: plan.unixSockets,
  };
  let refused: string | null = null;
  let confinement: Confinement;
  try {
    confinement = prepareConfinement(policy, options);
  } catch (error) {
    if (!(error instanceof LandlockAbiError || error instanceof LandlockUnavailableError)) {
      throw error;
    }
    // What would be dropped, had the policy asked for best effort.
    refused = error.message;
    confinement = prepareConfinement({ ...policy, bestEffort: true }, options);
  }
  closeAll(confinement);
  const { built } = confinement;
  const arch = hostArch();
  const ruleSet = sandboxRules({ ...built.filterOptions, arch });
  const denied: SandboxDescription['seccomp']['denied'] = [];
  const restricted: string[] = [];
  for (const name of [...ruleSet.syscalls.keys()].sort()) {
    const refusedBy = refusal(ruleSet, name);
    if (refusedBy === 'some') restricted.push(name);
    else if (refusedBy !== null) denied.push({ syscall: name, errno: refusedBy.errno });
  }
  const delegated = plan.outerSupervisor !== null;
  const byCall = plan.supervisor.notifyingModules({ policy: plan.view });
  const enabled = new Set(Object.values(byCall).flat());
  const notified = plan.notify.map((syscall) => ({ syscall, modules: byCall[syscall] ?? [] }));
  return {
    policy,
    arch,
    landlock: landlockOf(built.landlock, built.inner, built.signalScoped, refused),
    seccomp: { instructions: built.filter.instructions.length, denied, restricted, notified },
    supervisor: plan.notify.length > 0 || delegated,
    delegated,
    modules: plan.supervisor.modules
      .map((module) => module.name)
      .filter((name) => enabled.has(name)),
    reaperBroker: plan.broker,
    hidesProcesses: plan.hideProcesses,
    mediatesMetadata: plan.view.mediatesMetadata && (plan.notify.length > 0 || delegated),
    warnings: refused === null ? confinement.warnings : [],
  };
}
