import { type LandlockRuleset, landlockRuleset } from '@sandlock/landlock';
import { madeUpProcFiles } from '@sandlock/procfs';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import {
  close,
  type LaunchStep,
  PERSONALITY_QUERY,
  personalityWithoutRandomization,
  trySyscall,
} from '@sandlock/sys';
import { sandboxOpenFiles } from './descriptors.js';
import { SandboxError } from './errors.js';
import { filesystemRules } from './fs-rules.js';
import type { Policy, PortSpec } from './policy.js';

/** Everything a launch needs to confine the program, and what to clean up after. */
export interface Confinement {
  steps: LaunchStep[];
  /** Descriptors of this process that the launch hands down; close them once spawned. */
  fds: number[];
  /** Protections dropped in best-effort mode, one sentence each. */
  warnings: string[];
  /** Whether the filter creates a listener (the launch must then wait for a supervisor). */
  listener: boolean;
}

export interface ConfinementOptions {
  /** Syscalls a supervisor answers (none: no listener is created). */
  notify?: readonly string[];
  /**
   * A supervisor hides the host's processes (procfs's proc-pids module): leave
   * /proc's process directories out of the Landlock rules, so that the
   * sandbox reaches them only through its on-behalf opens.
   */
  hideProcesses?: boolean;
}

function portRanges(ports: readonly PortSpec[]): { from: number; to: number }[] {
  return ports.map((port) => (typeof port === 'number' ? { from: port, to: port } : port));
}

function describeDrops(what: string, ruleset: LandlockRuleset): string[] {
  if (ruleset.status === 'none') {
    return [`Landlock is unavailable: ${what} is not enforced`];
  }
  return ruleset.dropped.map(
    (drop) =>
      `Landlock ABI ${ruleset.abi} lacks ${drop.feature} (ABI ${drop.needsAbi}): not enforced`,
  );
}

function landlockFor(policy: Policy, hideProcesses: boolean): LandlockRuleset {
  const builder = landlockRuleset({ compatibility: policy.bestEffort ? 'best-effort' : 'hard' });
  const rules = filesystemRules(policy.fsRead, policy.fsWrite, policy.fsDeny, {
    hideProcesses,
    madeUp: hideProcesses ? madeUpProcFiles(policy) : [],
  });
  for (const rule of rules) {
    // Optional rules are entries found by listing a directory (carving): one
    // turned into a symlink since must not grant where it points.
    const listed = rule.optional === true;
    const options = { optional: listed, noFollow: listed };
    if (rule.intent === 'write') builder.write(rule.path, options).readExec(rule.path, options);
    else builder.readExec(rule.path, options);
  }
  const bind = portRanges(policy.netBind);
  const connect = portRanges(policy.netConnect);
  if (bind.length > 0) builder.bindTcp(bind);
  if (connect.length > 0) builder.connectTcp(connect);
  return builder.create();
}

/**
 * A domain around the reaper that handles nothing but signal scoping: the
 * sandbox, nested inside it, cannot signal the reaper, while the reaper's
 * kill(-1) reaches exactly the sandbox.
 */
function reaperScope(policy: Policy): LandlockRuleset {
  return landlockRuleset({
    compatibility: policy.bestEffort ? 'best-effort' : 'hard',
    handle: { fs: false, net: false, scopes: ['signal'] },
  }).create();
}

/**
 * The sandbox runs without capabilities, whatever its uid: as root it could
 * otherwise set the host's clock (CAP_SYS_TIME), read and clear the kernel
 * log (CAP_SYSLOG), watch or block every file access of the host with
 * fanotify (CAP_SYS_ADMIN), bind privileged ports… none of which Landlock or
 * the deny list covers. capset empties the effective, permitted, inheritable
 * and ambient sets; no_new_privs (set before) keeps every later exec from
 * gaining one (cap_bprm_creds_from_file() in security/commoncap.c), so the
 * bounding set is left as it is: emptying it took 41 prctl steps, measured
 * at ~0.25 ms per launch, for nothing an exec could regain.
 */
const DROP_CAPABILITIES: LaunchStep = { kind: 'dropCapabilities', bounding: false, lastCap: 0 };

/** Builds the launch steps that enforce `policy`. */
export function prepareConfinement(policy: Policy, options: ConfinementOptions = {}): Confinement {
  const fds: number[] = [];
  const warnings: string[] = [];
  try {
    const scope = reaperScope(policy);
    if (scope.fd !== null) fds.push(scope.fd);
    const main = landlockFor(policy, options.hideProcesses ?? false);
    if (main.fd !== null) fds.push(main.fd);
    warnings.push(...describeDrops('the filesystem and network policy', main));

    const steps: LaunchStep[] = [{ kind: 'setsid' }];
    const openFiles = sandboxOpenFiles(policy.maxOpenFiles, policy.maxMemory !== null);
    steps.push({ kind: 'rlimit', resource: 'NOFILE', ...openFiles });
    if (policy.noCoredump) steps.push({ kind: 'rlimit', resource: 'CORE', soft: 0n, hard: 0n });
    if (policy.noRandomizeMemory) {
      const current = trySyscall('personality', PERSONALITY_QUERY);
      if (current < 0)
        throw new SandboxError('sandlock: cannot read the personality', 'personality');
      steps.push({ kind: 'personality', persona: personalityWithoutRandomization(current) });
    }
    if (policy.noHugePages) steps.push({ kind: 'disableTransparentHugePages' });
    if (policy.cpuCores) steps.push({ kind: 'cpuAffinity', cpus: policy.cpuCores });
    if (policy.cwd !== null) steps.push({ kind: 'chdir', path: policy.cwd });
    steps.push({ kind: 'noNewPrivs' });
    steps.push(DROP_CAPABILITIES);
    if (scope.fd !== null) {
      steps.push({ kind: 'landlockRestrictSelf', rulesetFd: scope.fd, flags: scope.restrictFlags });
    } else {
      warnings.push('Landlock signal scoping is unavailable: kill reaches only the process group');
    }
    steps.push({
      kind: 'forkReaper',
      parentPid: process.pid,
      killTarget: scope.fd !== null ? -1 : 0,
    });
    if (main.fd !== null) {
      steps.push({ kind: 'landlockRestrictSelf', rulesetFd: main.fd, flags: main.restrictFlags });
    }
    const notify = options.notify ?? [];
    const filter = compileSandboxFilter({
      notify,
      denyRawSockets: policy.noRawSockets,
      denyUdp: policy.noUdp,
      // Nothing writable: no metadata change is the sandbox's to make.
      denyMetadata: policy.fsWrite.length === 0,
    });
    const listener = notify.length > 0;
    steps.push(seccompFilterStep(filter, { listener }));
    return { steps, fds, warnings, listener };
  } catch (error) {
    for (const fd of fds) close(fd);
    throw error;
  }
}
