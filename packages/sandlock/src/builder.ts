import type { Policy, PortSpec } from './policy.js';

type Draft = { -readonly [K in keyof Policy]?: unknown };

/**
 * Chainable setters for a {@link Policy}. Setters never throw: `build()`
 * checks everything at once and reports every problem in one PolicyError.
 * List setters append.
 */
export class PolicyBuilder<Built> {
  protected readonly draft: Draft = {};

  constructor(private readonly finish: (draft: Draft) => Built) {}

  private append(field: keyof Policy, values: readonly unknown[]): this {
    const current = this.draft[field];
    this.draft[field] = [...(Array.isArray(current) ? current : []), ...values];
    return this;
  }

  private set(field: keyof Policy, value: unknown): this {
    this.draft[field] = value;
    return this;
  }

  /** Allow reading (and executing) beneath these paths. */
  fsRead(...paths: string[]): this {
    return this.append('fsRead', paths);
  }
  /** Allow reading, executing and writing beneath these paths. */
  fsWrite(...paths: string[]): this {
    return this.append('fsWrite', paths);
  }
  /** Hide these paths inside readable or writable trees. */
  fsDeny(...paths: string[]): this {
    return this.append('fsDeny', paths);
  }
  /** Set one variable, or several from a record. */
  env(name: string, value: string): this;
  env(variables: Readonly<Record<string, string>>): this;
  env(nameOrVariables: string | Readonly<Record<string, string>>, value?: string): this {
    const current = (this.draft.env ?? {}) as Record<string, unknown>;
    const added =
      typeof nameOrVariables === 'string' ? { [nameOrVariables]: value } : nameOrVariables;
    return this.set('env', { ...current, ...added });
  }
  cleanEnv(enabled = true): this {
    return this.set('cleanEnv', enabled);
  }
  cwd(path: string): this {
    return this.set('cwd', path);
  }
  noRandomizeMemory(enabled = true): this {
    return this.set('noRandomizeMemory', enabled);
  }
  noHugePages(enabled = true): this {
    return this.set('noHugePages', enabled);
  }
  noCoredump(enabled = true): this {
    return this.set('noCoredump', enabled);
  }
  cpuCores(...cores: number[]): this {
    return this.append('cpuCores', cores);
  }
  maxOpenFiles(count: number): this {
    return this.set('maxOpenFiles', count);
  }
  /** Allow binding these TCP ports (numbers or `{ from, to }` ranges). */
  netBind(...ports: PortSpec[]): this {
    return this.append('netBind', ports);
  }
  /** Allow connecting to these TCP ports. */
  netConnect(...ports: PortSpec[]): this {
    return this.append('netConnect', ports);
  }
  noRawSockets(enabled = true): this {
    return this.set('noRawSockets', enabled);
  }
  noUdp(enabled = true): this {
    return this.set('noUdp', enabled);
  }
  /** Run even where the kernel lacks a protection, dropping it and reporting which. */
  bestEffort(enabled = true): this {
    return this.set('bestEffort', enabled);
  }

  /** Kill the sandbox when it uses more memory than this: bytes, or a size such as `'512M'`. */
  maxMemory(size: number | string): this {
    return this.set('maxMemory', size);
  }
  /** At most this many processes at once (threads not counted); more forks fail with EAGAIN. */
  maxProcesses(count: number): this {
    return this.set('maxProcesses', count);
  }
  /** Throttle the sandbox to this percentage of one CPU. */
  maxCpu(percent: number): this {
    return this.set('maxCpu', percent);
  }
  /** The host name the sandbox sees. */
  hostname(name: string): this {
    return this.set('hostname', name);
  }
  /** The number of CPUs the sandbox sees. */
  numCpus(count: number): this {
    return this.set('numCpus', count);
  }
  /** List every directory sorted by name. */
  deterministicDirs(enabled = true): this {
    return this.set('deterministicDirs', enabled);
  }
  /**
   * Seed the randomness the sandbox sees (getrandom, /dev/urandom, /dev/random): same seed,
   * same bytes, per process by its place in the process tree. A u64.
   */
  randomSeed(seed: number | bigint | string): this {
    return this.set('randomSeed', seed);
  }
  /**
   * Start the sandbox's wall clock at this instant (a Date, epoch milliseconds, or an ISO
   * 8601 date-time with a time zone); it then ticks in real time. Monotonic clocks stay real.
   */
  timeStart(start: Date | number | string): this {
    return this.set('timeStart', start);
  }
  /** Add a supervisor handler module (a file URL or absolute path, and its options). */
  plugin(module: string | URL, options?: unknown): this {
    const ref = { module: module instanceof URL ? module.href : module, options };
    return this.append('plugins', [options === undefined ? { module: ref.module } : ref]);
  }

  /** Validates the whole policy; throws a PolicyError listing every problem. */
  build(): Built {
    return this.finish({ ...this.draft });
  }
}
