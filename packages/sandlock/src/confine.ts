import type { DiskBound } from '@sandlock/cow';
import { type LandlockRuleset, landlockRuleset } from '@sandlock/landlock';
import {
  bindsOf,
  canonical,
  connectPortsOf,
  datagramsOf,
  devicePaths,
  expandPresets,
  landlockBindPorts,
  modulePolicy,
} from '@sandlock/policy';
import { madeUpProcFiles } from '@sandlock/procfs';
import {
  type CompiledFilter,
  compileSandboxFilter,
  type SandboxFilterOptions,
  seccompFilterStep,
} from '@sandlock/seccomp';
import {
  close,
  getRlimit,
  type LaunchStep,
  PERSONALITY_QUERY,
  pathWithin,
  personalityWithoutRandomization,
  type Rlimit,
  trySyscall,
} from '@sandlock/sys';
import { sandboxOpenFiles } from './descriptors.js';
import { SandboxError } from './errors.js';
import { filesystemRules } from './fs-rules.js';
import type { Policy } from './policy.js';
import { atStep } from './start-failure.js';

/** Everything a launch needs to confine the program, and what to clean up after. */
export interface Confinement {
  steps: LaunchStep[];
  /** Descriptors of this process that the launch hands down; close them once spawned. */
  fds: number[];
  /** Protections dropped in best-effort mode, one sentence each. */
  warnings: string[];
  /** Whether the filter creates a listener (the launch must then wait for a supervisor). */
  listener: boolean;
  /** What was built, for describe(): the policy's own Landlock domain, the filter and its options. */
  built: {
    landlock: LandlockRuleset;
    /** The sandbox's own layer nested in it (signal scoping, or /proc carved around process directories). */
    inner: LandlockRuleset;
    signalScoped: boolean;
    filter: CompiledFilter;
    filterOptions: SandboxFilterOptions;
  };
}

export interface ConfinementOptions {
  /** A filter installed after Sandlock's own (SpawnOptions.extraFilter). */
  extraFilter?: { readonly program: Buffer };
  /** Syscalls a supervisor answers (none: no listener is created). */
  notify?: readonly string[];
  /**
   * A supervisor hides the host's processes (procfs's proc-pids module): leave
   * /proc's process directories out of the Landlock rules, so that the
   * sandbox reaches them only through its on-behalf opens.
   */
  hideProcesses?: boolean;
  /**
   * One end of the socket over which the supervisor asks the reaper to make
   * system calls on the sandbox's behalf (a descriptor of this process; the
   * launch hands it to the reaper only).
   */
  brokerFd?: number;
  /**
   * The port of the sandbox's HTTP proxy on loopback, which the reaper
   * connects to for the connects an HTTP rule covers: added to the reaper's
   * Landlock connect ports (where they are restricted at all).
   */
  proxyPort?: number;
  /**
   * The sandbox may make Unix sockets (default true): false refuses
   * socket(AF_UNIX) and datagram socketpairs, for a sandbox whose connects
   * and sends no supervisor answers.
   */
  unixSockets?: boolean;
  /**
   * A copy-on-write workdir (the cow module): its directory is only read by
   * both domains (changes are made in the layer), the reaper's may write
   * the layer's upper tree, and the sandbox's has nothing of the layers'
   * store. `diskBound`: how the layer's maxDisk is enforced (null: none);
   * `measured` caps each file with RLIMIT_FSIZE.
   */
  workdir?: {
    lower: string;
    upper: string;
    store: string;
    diskBound: DiskBound | null;
  };
  /** The program's credentials (SpawnOptions.user): set before no_new_privs, inherited by the reaper. */
  user?: { uid: number; gid: number; groups?: readonly number[]; umask?: number };
  /** stdin is a terminal the program takes as its controlling terminal (SpawnOptions.terminal). */
  terminal?: boolean;
}

/**
 * RLIMIT_FSIZE for a workdir whose maxDisk is measured (no tmpfs upper of
 * its own size, which the kernel bounds itself): no file the sandbox writes
 * through a descriptor (the layer's injected ones, or any other) grows past
 * maxDisk; the kernel fails such a write with EFBIG and sends SIGXFSZ, which
 * kills by default (setrlimit(2)). The layer's sum is measured on a timer
 * (SandboxLayer.watchDisk). Never above the supervisor's own hard limit,
 * which the sandbox could not be given.
 */
function fileSizeLimit(maxDisk: number): Rlimit {
  const own = getRlimit('FSIZE');
  const wanted = BigInt(maxDisk);
  const limit = own.hard < wanted ? own.hard : wanted;
  return { soft: limit, hard: limit };
}

/** What a domain adds to the policy's rules for a workdir. */
interface WorkdirRules {
  readOnly: string[];
  write: string[];
  deny: string[];
}

function workdirRules(
  workdir: ConfinementOptions['workdir'],
  domain: 'reaper' | 'sandbox',
): WorkdirRules {
  if (workdir === undefined) return { readOnly: [], write: [], deny: [] };
  return domain === 'reaper'
    ? { readOnly: [workdir.lower], write: [workdir.upper], deny: [] }
    : { readOnly: [workdir.lower], write: [], deny: [workdir.store] };
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

/**
 * The Landlock domain of a policy. `hidden`: the sandbox's own where the
 * supervisor hides processes, without /proc's process directories.
 * `reaper`: the reaper's there, the policy's but for `fsDeny` entries
 * beneath /proc: carving /proc would leave out the process directories of
 * processes not yet started, which the reaper opens on the sandbox's behalf;
 * proc-pids refuses what those entries deny, on the path the kernel's walk
 * found (procfs has no renames nor links).
 */
function landlockFor(
  given: Policy,
  view: 'policy' | 'hidden' | 'reaper',
  workdir: WorkdirRules = { readOnly: [], write: [], deny: [] },
  proxyPort?: number,
): LandlockRuleset {
  const policy = expandPresets(given);
  const hideProcesses = view === 'hidden';
  // The sandbox's own layer lets it bind no TCP port where the supervisor
  // makes every TCP bind (netDenyBind, portRemap): a bind it makes itself is
  // refused by the kernel, whatever its address said when it was checked.
  const bind = hideProcesses && bindsOf(policy).tcpOnBehalf ? [] : landlockBindPorts(policy);
  // The network rights Landlock restricts: not those the policy leaves to
  // every port (or to the supervisor's rules). Ports Landlock does not
  // restrict for connects (address rules with any port, a deny list): TCP
  // connects are left to the destinations module's rules alone.
  const net: ('bind_tcp' | 'connect_tcp')[] = [];
  if (connectPortsOf(policy) !== null) net.push('connect_tcp');
  if (bind !== 'any') net.push('bind_tcp');
  const builder = landlockRuleset({
    compatibility: policy.bestEffort ? 'best-effort' : 'hard',
    handle: { net },
  });
  const fsDeny =
    view === 'reaper'
      ? policy.fsDeny.filter((path) => !pathWithin(canonical(path), '/proc'))
      : policy.fsDeny;
  // The device nodes as written files: on a file a write rule keeps only the
  // file's own rights (no creation, no removal).
  const written = [...policy.fsWrite, ...devicePaths(policy)];
  const rules = filesystemRules(policy.fsRead, written, [...fsDeny, ...workdir.deny], {
    hideProcesses,
    madeUp: hideProcesses ? madeUpProcFiles(modulePolicy(policy)) : [],
    readOnly: workdir.readOnly,
  });
  for (const path of workdir.write) rules.push({ path, intent: 'write' });
  for (const rule of rules) {
    // Optional rules are entries found by listing a directory (carving): one
    // turned into a symlink since must not grant where it points.
    const listed = rule.optional === true;
    const options = { optional: listed, noFollow: listed };
    if (rule.intent === 'write') builder.write(rule.path, options).readExec(rule.path, options);
    else builder.readExec(rule.path, options);
  }
  const connect = connectPortsOf(policy);
  if (bind !== 'any' && bind.length > 0) builder.bindTcp(bind);
  if (connect !== null && proxyPort !== undefined) connect.push({ from: proxyPort, to: proxyPort });
  if (connect !== null && connect.length > 0) builder.connectTcp(connect);
  return builder.create();
}

function hasSignalScope(ruleset: LandlockRuleset): boolean {
  return ruleset.fd !== null && ruleset.handled.scopes.includes('signal');
}

/**
 * A domain that handles nothing but signal scoping, for the sandbox nested
 * in the reaper's when the policy's own rules are all the reaper's: the
 * sandbox cannot signal the reaper, while the reaper's kill(-1) reaches
 * exactly the sandbox.
 */
function signalScope(policy: Policy): LandlockRuleset {
  // Where the supervisor makes every TCP bind, the sandbox may make none itself.
  const net = bindsOf(policy).tcpOnBehalf ? (['bind_tcp'] as const) : false;
  return landlockRuleset({
    compatibility: policy.bestEffort ? 'best-effort' : 'hard',
    handle: { fs: false, net, scopes: ['signal'] },
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
/** The warning of a policy that lets raw sockets through the filter: the kernel refuses them anyway. */
export const RAW_SOCKETS_NEED_CAPABILITY =
  'raw IP and packet sockets are let through (noRawSockets off), but socket() still fails with EPERM: they need CAP_NET_RAW, and a sandbox runs without capabilities';

const DROP_CAPABILITIES: LaunchStep = { kind: 'dropCapabilities', bounding: false, lastCap: 0 };

/** Builds the launch steps that enforce `policy`. */
export function prepareConfinement(policy: Policy, options: ConfinementOptions = {}): Confinement {
  const fds: number[] = [];
  const warnings: string[] = [];
  try {
    // Two domains, one inside the other. The reaper's is the policy's own
    // (scoped, so the reaper signals only what is nested in it): the system
    // calls it makes on the sandbox's behalf get no more than the policy
    // grants. The sandbox's, nested in it, keeps the sandbox from signalling
    // the reaper and, where the supervisor hides processes, leaves /proc's
    // process directories out: the on-behalf opens are the only way there.
    const outer = atStep('landlock ruleset', () =>
      landlockFor(
        policy,
        options.hideProcesses ? 'reaper' : 'policy',
        workdirRules(options.workdir, 'reaper'),
        options.proxyPort,
      ),
    );
    if (outer.fd !== null) fds.push(outer.fd);
    warnings.push(...describeDrops('the filesystem and network policy', outer));
    // With a workdir the sandbox's own domain holds file rules too: the
    // reaper's grants the layer, which the sandbox must not reach.
    const inner = atStep('landlock ruleset', () =>
      options.hideProcesses || options.workdir !== undefined
        ? landlockFor(
            policy,
            options.hideProcesses ? 'hidden' : 'policy',
            workdirRules(options.workdir, 'sandbox'),
          )
        : signalScope(policy),
    );
    if (inner.fd !== null) fds.push(inner.fd);

    // kill(-1) is safe only when the reaper's domain is signal-scoped; the
    // sandbox cannot signal the reaper only when its own layer is too.
    const scoped = hasSignalScope(outer) && hasSignalScope(inner);
    // With a terminal, the program leads a session of its own, so that what
    // the terminal sends (^C) reaches its foreground group and not the
    // reaper, which would pass it on a second time. Only kill(-1) reaches a
    // program outside the reaper's process group: without signal scoping the
    // reaper's session takes the terminal instead.
    const terminalInReaper = options.terminal === true && !scoped;
    const steps: LaunchStep[] = [{ kind: terminalInReaper ? 'controllingTerminal' : 'setsid' }];
    const openFiles = atStep('open-file limit', () =>
      sandboxOpenFiles(policy.maxOpenFiles, policy.maxMemory !== null),
    );
    steps.push({ kind: 'rlimit', resource: 'NOFILE', ...openFiles });
    if (policy.noCoredump) steps.push({ kind: 'rlimit', resource: 'CORE', soft: 0n, hard: 0n });
    if (options.workdir?.diskBound === 'measured' && policy.maxDisk !== null) {
      const fileSize = atStep('file-size limit', () => fileSizeLimit(policy.maxDisk!));
      steps.push({ kind: 'rlimit', resource: 'FSIZE', ...fileSize });
    }
    if (policy.noRandomizeMemory) {
      const current = trySyscall('personality', PERSONALITY_QUERY);
      if (current < 0)
        throw new SandboxError('sandlock: cannot read the personality', 'personality');
      steps.push({ kind: 'personality', persona: personalityWithoutRandomization(current) });
    }
    if (policy.noHugePages) steps.push({ kind: 'disableTransparentHugePages' });
    if (policy.cpuCores) steps.push({ kind: 'cpuAffinity', cpus: policy.cpuCores });
    if (policy.cwd !== null) steps.push({ kind: 'chdir', path: policy.cwd });
    // After the steps that need root (a raised open-file limit), before the
    // reaper forks: it makes calls on the program's behalf with its credentials.
    if (options.user !== undefined) {
      const { uid, gid, groups = [], umask } = options.user;
      steps.push({ kind: 'user', uid, gid, groups, ...(umask !== undefined ? { umask } : {}) });
    }
    steps.push({ kind: 'noNewPrivs' });
    steps.push(DROP_CAPABILITIES);
    if (outer.fd !== null) {
      steps.push({ kind: 'landlockRestrictSelf', rulesetFd: outer.fd, flags: outer.restrictFlags });
    }
    if (!scoped) {
      warnings.push('Landlock signal scoping is unavailable: kill reaches only the process group');
    }
    steps.push({
      kind: 'forkReaper',
      parentPid: process.pid,
      killTarget: scoped ? -1 : 0,
      ...(options.brokerFd !== undefined ? { brokerFd: options.brokerFd } : {}),
    });
    // The reaper's child leads no group.
    if (options.terminal === true && !terminalInReaper) steps.push({ kind: 'controllingTerminal' });
    if (inner.fd !== null) {
      steps.push({ kind: 'landlockRestrictSelf', rulesetFd: inner.fd, flags: inner.restrictFlags });
    }
    // socket(2) of SOCK_RAW or AF_PACKET needs CAP_NET_RAW (raw(7), packet(7)),
    // and the dropCapabilities step above leaves the sandbox none.
    if (!policy.noRawSockets) warnings.push(RAW_SOCKETS_NEED_CAPABILITY);
    const notify = options.notify ?? [];
    const filterOptions: SandboxFilterOptions = {
      notify,
      denyRawSockets: policy.noRawSockets,
      datagrams: datagramsOf(policy),
      denyUnixSockets: options.unixSockets === false,
      // Nothing writable: no metadata change is the sandbox's to make. A
      // workdir's are made in its layer (the cow module, which refuses the
      // others when nothing else is writable).
      denyMetadata: policy.fsWrite.length === 0 && options.workdir === undefined,
    };
    const filter = atStep('seccomp filter', () => compileSandboxFilter(filterOptions));
    const listener = notify.length > 0;
    steps.push(seccompFilterStep(filter, { listener }));
    if (options.extraFilter !== undefined) {
      steps.push({ kind: 'seccompFilter', program: options.extraFilter.program, flags: 0 });
    }
    return {
      steps,
      fds,
      warnings,
      listener,
      built: { landlock: outer, inner, signalScoped: scoped, filter, filterOptions },
    };
  } catch (error) {
    for (const fd of fds) close(fd);
    throw error;
  }
}
