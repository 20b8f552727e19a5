import { createRuleset, type LandlockRuleset } from './create.js';
import { detectLandlock, type LandlockSupport, simulateAbi } from './detect.js';
import { LandlockRuleError } from './errors.js';
import type { Intent } from './intents.js';
import { planRuleset, type RulesetPlan } from './plan.js';
import { MAX_PORT, type Ports, toRanges } from './ports.js';
import type { Compatibility, PathRule, PortRule, RulesetRequest } from './request.js';
import {
  ALL_FS_RIGHTS,
  ALL_NET_RIGHTS,
  ALL_SCOPES,
  FEATURES,
  type Feature,
  type FeatureCategory,
  type FsRight,
  isFeature,
  type LogFlag,
  type NetRight,
  type Scope,
} from './rights.js';

/** Which rights the ruleset handles (denies unless a rule allows): all, none, or a list. */
export interface HandleOptions {
  /** Filesystem rights. Default: all. */
  fs?: boolean | readonly FsRight[];
  /** TCP bind/connect. Default: both. */
  net?: boolean | readonly NetRight[];
  /** IPC scoping: abstract unix sockets and signals. Default: both. */
  scopes?: boolean | readonly Scope[];
}

/**
 * Audit logging of denials (ABI 7, landlock_restrict_self() flags). Unset
 * fields keep the kernel's default: log for the program that restricted
 * itself, not after it execs (so not for a program started through the exec
 * stub unless `newExec` is true), and log nested domains.
 */
export interface LoggingOptions {
  sameExec?: boolean;
  newExec?: boolean;
  subdomains?: boolean;
}

export interface RulesetOptions {
  /** Default `'hard'`: anything the kernel lacks is an error. */
  compatibility?: Compatibility;
  handle?: HandleOptions;
  logging?: LoggingOptions;
  /** Features that must be supported even in best-effort mode. */
  require?: readonly Feature[];
  /** Cap on distinct TCP ports with a rule (one kernel rule each). Default 65536. */
  maxPortRules?: number;
  /**
   * For tests: behave as if the kernel offered this ABI version. It must not
   * exceed the real one; 0 simulates a kernel without Landlock.
   */
  abi?: number;
}

export interface PathOptions {
  /** Skip the rule, and list the path in `skippedPaths`, when nothing exists there. */
  optional?: boolean;
  /**
   * Never follow a symlink at the path itself: with `optional`, such a rule
   * is skipped (listed with code ELOOP), else it is an error. For paths
   * found by listing a directory, which someone may turn into a symlink to
   * anywhere before the ruleset is made.
   */
  noFollow?: boolean;
}

type PathList = string | readonly string[];

const DEFAULT_MAX_PORT_RULES = MAX_PORT + 1;

function checkNames<T extends Feature>(
  names: readonly string[],
  category: FeatureCategory,
  what: string,
): T[] {
  for (const name of names) {
    if (!isFeature(name) || FEATURES[name].category !== category) {
      throw new TypeError(`unknown Landlock ${what} '${name}'`);
    }
  }
  return [...names] as T[];
}

function handledList<T extends Feature>(
  value: boolean | readonly T[] | undefined,
  all: readonly T[],
  category: FeatureCategory,
  what: string,
): T[] {
  if (value === undefined || value === true) return [...all];
  if (value === false) return [];
  return checkNames<T>(value, category, what);
}

function logFlagsOf(logging: LoggingOptions | undefined): LogFlag[] {
  const flags: LogFlag[] = [];
  if (logging?.sameExec === false) flags.push('log_same_exec_off');
  if (logging?.newExec === true) flags.push('log_new_exec_on');
  if (logging?.subdomains === false) flags.push('log_subdomains_off');
  return flags;
}

function pathsOf(paths: PathList): string[] {
  const list = typeof paths === 'string' ? [paths] : [...paths];
  for (const path of list) {
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw new TypeError(
        `Landlock rule path must be a non-empty string without NUL, got ${JSON.stringify(path)}`,
      );
    }
  }
  return list;
}

/**
 * Collects rules, then {@link RulesetBuilder.create} asks the kernel for a
 * ruleset. Every rule method returns the builder.
 */
export class RulesetBuilder {
  private readonly pathRules: PathRule[] = [];
  private readonly portRules: PortRule[] = [];

  constructor(private readonly options: RulesetOptions = {}) {
    const { abi, maxPortRules } = options;
    if (abi !== undefined && (!Number.isInteger(abi) || abi < 0)) {
      throw new RangeError(`Landlock ABI override must be a non-negative integer, got ${abi}`);
    }
    if (maxPortRules !== undefined && (!Number.isInteger(maxPortRules) || maxPortRules < 0)) {
      throw new RangeError(`maxPortRules must be a non-negative integer, got ${maxPortRules}`);
    }
  }

  /** Read files and list directories beneath each path. */
  read(paths: PathList, options?: PathOptions): this {
    return this.intent('read', paths, options);
  }

  /** Read, list and execute beneath each path. */
  readExec(paths: PathList, options?: PathOptions): this {
    return this.intent('readExec', paths, options);
  }

  /**
   * Read, and change anything beneath each path: write, truncate, create,
   * remove and rename files, directories, symlinks, fifos and sockets, and
   * ioctl on devices. Not execute, not device node creation.
   */
  write(paths: PathList, options?: PathOptions): this {
    return this.intent('write', paths, options);
  }

  /** Exactly these rights beneath each path, for experts. */
  allowPath(paths: PathList, rights: readonly FsRight[], options?: PathOptions): this {
    const checked = checkNames<FsRight>(rights, 'fs', 'filesystem right');
    if (checked.length === 0) {
      throw new LandlockRuleError('Landlock path rule needs at least one right');
    }
    for (const path of pathsOf(paths)) {
      this.pathRules.push({
        path,
        intent: null,
        rights: checked,
        optional: options?.optional ?? false,
        noFollow: options?.noFollow ?? false,
      });
    }
    return this;
  }

  /** Allow binding TCP sockets to these ports (0 is the "any free port" bind). */
  bindTcp(ports: Ports): this {
    this.portRules.push({ right: 'bind_tcp', ranges: toRanges(ports) });
    return this;
  }

  /** Allow connecting TCP sockets to these remote ports. */
  connectTcp(ports: Ports): this {
    this.portRules.push({ right: 'connect_tcp', ranges: toRanges(ports) });
    return this;
  }

  private intent(intent: Intent, paths: PathList, options?: PathOptions): this {
    for (const path of pathsOf(paths)) {
      this.pathRules.push({
        path,
        intent,
        rights: [],
        optional: options?.optional ?? false,
        noFollow: options?.noFollow ?? false,
      });
    }
    return this;
  }

  /** The request as plain data. */
  request(): RulesetRequest {
    const { options } = this;
    const handle = options.handle ?? {};
    return {
      compatibility: options.compatibility ?? 'hard',
      handledFs: handledList(handle.fs, ALL_FS_RIGHTS, 'fs', 'filesystem right'),
      handledNet: handledList(handle.net, ALL_NET_RIGHTS, 'net', 'network right'),
      scopes: handledList(handle.scopes, ALL_SCOPES, 'scope', 'scope'),
      logFlags: logFlagsOf(options.logging),
      required: requiredOf(options.require ?? []),
      pathRules: [...this.pathRules],
      portRules: [...this.portRules],
      maxPortRules: options.maxPortRules ?? DEFAULT_MAX_PORT_RULES,
    };
  }

  /** What the kernel would be asked for (no file is opened). Throws like `create()`. */
  plan(): RulesetPlan {
    return planRuleset(this.request(), this.support());
  }

  /**
   * Creates the ruleset and adds every rule. On any error every descriptor
   * opened so far is closed before the error is thrown.
   */
  create(): LandlockRuleset {
    const support = this.support();
    return createRuleset(planRuleset(this.request(), support), support);
  }

  private support(): LandlockSupport {
    const real = detectLandlock();
    return this.options.abi === undefined ? real : simulateAbi(real, this.options.abi);
  }
}

function requiredOf(names: readonly string[]): Feature[] {
  for (const name of names) {
    if (!isFeature(name)) throw new TypeError(`unknown Landlock feature '${name}'`);
  }
  return [...names] as Feature[];
}

/** Starts a ruleset; see {@link RulesetBuilder}. */
export function landlockRuleset(options?: RulesetOptions): RulesetBuilder {
  return new RulesetBuilder(options);
}
