import type { Readable, Writable } from 'node:stream';
import type { Change } from '@sandlock/cow';
import { sandboxProcesses } from '@sandlock/dispatch';
import type { Denial } from '@sandlock/http';
import { PolicyBuilder, type PolicyDraft, profileDraft } from '@sandlock/policy';
import { watchResources } from '@sandlock/resource';
import { defaultDenyList } from '@sandlock/seccomp';
import { brokerSocketPair, close, hostArch, type Launched, launch } from '@sandlock/sys';
import {
  checkArgv,
  checkOptions,
  DEFAULT_MAX_BUFFER,
  positiveMs,
  SPAWN_CHECKS,
  type StdioOption,
  stdioEntries,
} from './call-options.js';
import { chrootPolicy, chrootStart } from './chroot.js';
import { prepareConfinement } from './confine.js';
import { killSandbox } from './control.js';
import { describePolicy, type SandboxDescription } from './describe.js';
import { programEnvironment, resolveCommand } from './environment.js';
import { AbortError, SandboxError } from './errors.js';
import { needsProxy, nestedCredentials, type SandboxHttp, startHttp } from './http.js';
import {
  delegationSocket,
  requestDelegation,
  SUPERVISOR_VARIABLE,
  track,
  withDelegationSocket,
} from './nesting.js';
import { supervisionPlan } from './plan.js';
import { type Policy, parsePolicy } from './policy.js';
import { type ExitStatus, type KillCause, SandboxProcess, type SandboxRefusal } from './process.js';
import { claimName, listSandboxes, type Registration, type SandboxEntry } from './registry.js';
import { abandon, atStep, atStepAsync, closeAll, startError } from './start-failure.js';
import { assertProcReadable, type Session } from './supervision.js';
import { afterDelay } from './timers.js';
import { SandboxLayer, type WorkdirEnd, type WorkdirResult } from './workdir.js';

export interface SpawnOptions {
  /**
   * The program's stdin, stdout and stderr: `'pipe'` (the default: streams on
   * the SandboxProcess), `'inherit'` (this process's), `'ignore'`, or one
   * entry each (those, a descriptor number, or a Node stream with a descriptor).
   */
  stdio?: StdioOption;
  /** Variables set over the policy's environment for this program. */
  env?: Readonly<Record<string, string>>;
  /** Working directory for this program (overrides the policy's cwd). */
  cwd?: string;
  /**
   * Called for each thing refused on the sandbox's behalf (the
   * SandboxProcess's `'refusal'` event, listened to before the program runs).
   */
  onRefusal?: (refusal: SandboxRefusal) => void;
  /**
   * With a workdir, what happens to its layer when the sandbox ends:
   * `'policy'` (default: onExit for status 0, onError otherwise),
   * `'dry-run'` (the changes listed, the layer discarded), or `'defer'` (the
   * changes listed; the caller calls `workdir.commit()` or `workdir.abort()`
   * on the result).
   */
  workdirEnd?: WorkdirEnd;
  /**
   * The sandbox's name in the user's registry (`Sandbox.list()`, `sandlock
   * ps`): 1 to 64 letters, digits, `_`, `.`, `-`. Default: the next free
   * `sandbox-N`. A name a running sandbox holds is refused (SandboxError,
   * step 'name'). It does not set the host name (the `hostname` field does).
   */
  name?: string;
  /**
   * A second seccomp filter, installed after Sandlock's own just before the
   * program runs (a container's profile compiled by @sandlock/seccomp, such
   * as `ociProfileRules`). Where both filters decide, the kernel takes the
   * stricter action (seccomp(2): KILL, TRAP, ERRNO, USER_NOTIF, …, ALLOW),
   * so it can only refuse more. It must allow execve.
   */
  extraFilter?: { readonly program: Buffer };
  /**
   * Run the program as this user: its uid, gid, supplementary groups (none
   * when not given) and umask, set in the child after every step that needs
   * root and before no_new_privs, so the program and the reaper making calls
   * on its behalf hold no capability and files they create are the user's.
   * Needs CAP_SETUID and CAP_SETGID (a SandboxError naming the step otherwise).
   */
  user?: SandboxUser;
  /**
   * Keep a zygote in the sandbox, so that {@link SandboxProcess.join} can
   * start more programs in it later. It is a process of the sandbox (a child
   * of the program, blocking every signal, ending with it); it does not count
   * towards `maxProcesses`, the programs it starts do.
   */
  joinable?: boolean;
  /**
   * The program's stdin is a terminal it takes as its controlling terminal:
   * it leads a session of its own whose foreground process group it is
   * (setsid(2), then ioctl TIOCSCTTY), so ^C typed there reaches it, job
   * control works and /dev/tty opens. Stdin must be a terminal that is no
   * other session's controlling terminal (a SandboxError naming the step
   * otherwise). Without Landlock signal scoping the sandbox's reaper leads
   * that session instead, and also receives what the terminal sends.
   */
  terminal?: boolean;
}

/** The credentials SpawnOptions.user gives the program. */
export interface SandboxUser {
  readonly uid: number;
  readonly gid: number;
  readonly groups?: readonly number[];
  readonly umask?: number;
}

export interface RunOptions extends SpawnOptions {
  /** Kill the whole sandbox after this many milliseconds (any length). */
  timeout?: number;
  /** Written to the program's stdin, which is then closed (default: stdin is empty). */
  input?: string | Uint8Array;
  /**
   * Aborting kills the whole sandbox; run() then rejects with an AbortError
   * whose `cause` is the signal's reason, once every process is gone.
   */
  signal?: AbortSignal;
  /**
   * The most bytes kept of stdout, and of stderr (default 100 MB). Past it
   * the sandbox is killed and `killedBy` is `{ reason: 'maxBuffer' }`.
   */
  maxBuffer?: number;
  /** Decode stdout and stderr to strings with this encoding (default: Buffers). */
  encoding?: BufferEncoding | 'buffer';
}

export interface RunResult<Output extends Buffer | string = Buffer> extends ExitStatus {
  stdout: Output;
  stderr: Output;
  durationMs: number;
  /** With a workdir: the changes its layer held (`workdir.changes`). */
  changes?: Change[];
  /** With a workdir whose end was deferred (`workdirEnd: 'defer'`): applies the layer (`workdir.commit()`). */
  commit?: () => Promise<void>;
  /** With a workdir whose end was deferred: discards the layer (`workdir.abort()`). */
  abort?: () => void;
}

/** The workdir's result also at the top of a run's result, as `changes`, `commit()` and `abort()`. */
function workdirShortcuts(workdir: WorkdirResult | null | undefined) {
  if (workdir === null || workdir === undefined) return {};
  return {
    changes: workdir.changes,
    commit: () => workdir.commit(),
    abort: () => workdir.abort(),
  };
}

const RUN_CHECKS: Readonly<Record<string, (value: unknown) => string | null>> = {
  ...SPAWN_CHECKS,
  timeout: positiveMs,
  input: (value) =>
    typeof value === 'string' || value instanceof Uint8Array ? null : 'a string or a Uint8Array',
  signal: (value) => (value instanceof AbortSignal ? null : 'an AbortSignal'),
  maxBuffer: (value) =>
    value === Number.POSITIVE_INFINITY ||
    (typeof value === 'number' && Number.isSafeInteger(value) && value > 0)
      ? null
      : 'a positive whole number of bytes (or Infinity)',
  encoding: (value) =>
    value === 'buffer' || (typeof value === 'string' && Buffer.isEncoding(value))
      ? null
      : "a Buffer encoding such as 'utf8', or 'buffer'",
};

/** Keeps a stream's first `limit` bytes; calls `over` once when more arrive. */
function collect(stream: Readable | null, limit: number, over: () => void): () => Buffer {
  const chunks: Buffer[] = [];
  let kept = 0;
  let exceeded = false;
  stream?.on('data', (chunk: Buffer) => {
    if (exceeded) return;
    if (kept + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - kept));
      kept = limit;
      exceeded = true;
      over();
      return;
    }
    chunks.push(chunk);
    kept += chunk.length;
  });
  return () => Buffer.concat(chunks);
}

function writeInput(stdin: Writable | null, input: string | Uint8Array | undefined): void {
  if (!stdin) return;
  // A program that exits without reading its input closes the pipe: not an error.
  stdin.on('error', () => {});
  if (input !== undefined) stdin.end(input);
  else stdin.end();
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('sandlock: the run was aborted; every process of the sandbox is gone', {
    cause: signal.reason,
  });
}

/** A sandbox: an immutable policy, and programs run under it. */
export class Sandbox {
  private constructor(readonly policy: Policy) {}

  /** Starts a policy; `build()` checks it and returns the Sandbox. */
  static builder(): PolicyBuilder<Sandbox> {
    return new PolicyBuilder((draft) => new Sandbox(draft.resolve()));
  }

  /**
   * A sandbox from a TOML profile's text (see docs/policy.md for its sections
   * and keys). `file` names it in problems, which give its line and column.
   */
  static fromProfile(text: string, file = 'profile'): Sandbox {
    return new Sandbox(profileDraft(text, file).resolve());
  }

  /** A sandbox from a draft the caller put together (a profile, then flags: the CLI). */
  static fromDraft(draft: PolicyDraft): Sandbox {
    return new Sandbox(draft.resolve());
  }

  /** A sandbox from a policy object, e.g. `JSON.parse` of a stored policy. */
  static fromPolicy(policy: unknown): Sandbox {
    return new Sandbox(parsePolicy(policy));
  }

  /**
   * This user's running sandboxes, oldest first, from the registry
   * (`$XDG_RUNTIME_DIR/sandlock`, else a private directory in the temporary
   * directory), started by any process; entries whose reaper is gone are
   * removed on the way. Rejects with a SandboxError (step 'registry') when
   * the directory is not this user's alone.
   */
  static list(): Promise<SandboxEntry[]> {
    return listSandboxes();
  }

  /**
   * Sends `signal` to every process of the running sandbox called `name`,
   * started by any process of this user (SIGKILL, the default, resolves once
   * they have all ended). Rejects with a SandboxError whose step is 'lookup'
   * when no running sandbox has that name.
   */
  static kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<SandboxEntry> {
    return killSandbox(name, signal);
  }

  /**
   * What this policy becomes on this kernel, without starting anything: the
   * resolved policy, the Landlock ABI and the rights it handles and drops,
   * the seccomp filter's size and what it denies and notifies (to which
   * modules), and which parts of the supervisor are on. Opens nothing that
   * stays open.
   */
  async describe(): Promise<SandboxDescription> {
    assertProcReadable(this.policy);
    // With a root, what Landlock is given: the host's side of its paths.
    const policy = this.policy.chroot !== null ? chrootPolicy(this.policy) : this.policy;
    return describePolicy(policy, await supervisionPlan(policy));
  }

  /**
   * Starts what spawn() needs ahead of it: the supervisor's worker thread,
   * which loads the modules this policy turns on. A spawn() after it starts
   * sooner (an OCI runtime prepares at `create` and spawns at `start`).
   * Optional; rejects with a SandboxError as spawn() would at that step.
   */
  async prepare(): Promise<void> {
    assertProcReadable(this.policy);
    const policy = this.policy.chroot !== null ? chrootPolicy(this.policy) : this.policy;
    const plan = await atStepAsync('supervisor', () => supervisionPlan(policy));
    if (plan.notify.length > 0) await atStepAsync('supervisor', () => plan.supervisor.ready());
  }

  /**
   * Starts `argv` in the sandbox. Resolves once the program runs (after
   * exec); rejects with a CommandError when it cannot be found or executed,
   * and with a SandboxError naming the step when confinement fails.
   */
  async spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<SandboxProcess> {
    checkArgv('spawn', argv);
    checkOptions('spawn', options, SPAWN_CHECKS);
    return this.start(argv, options);
  }

  private async start(argv: readonly string[], options: SpawnOptions): Promise<SandboxProcess> {
    const env = programEnvironment(this.policy, options.env);
    const given =
      options.cwd !== undefined ? parsePolicy({ ...this.policy, cwd: options.cwd }) : this.policy;
    // With a root, the program, the paths and the cwd are the root's: the
    // host's side of them is what Landlock and the launch take (chroot.ts).
    const rooted =
      given.chroot !== null ? atStep('chroot', () => chrootStart(given, argv, env)) : null;
    const policy = rooted?.policy ?? given;
    const path = rooted?.exec.virtual ?? resolveCommand(argv[0]!, env, given);
    assertProcReadable(policy);
    const { supervisor, outerSupervisor, notify, ...plan } = await atStepAsync('supervisor', () =>
      supervisionPlan(policy),
    );
    let view = plan.view;
    const delegating = outerSupervisor !== null;
    // Nested: its HTTP rules are a level of the outer sandbox's proxy
    // (nesting.ts), given the secrets of its credentials, read here, where
    // they are held: it never gets the outer's.
    const secrets = delegating && needsProxy(policy) ? nestedCredentials(policy, env) : {};
    if (policy.workdir !== null && delegating) {
      throw new SandboxError(
        'sandlock: a workdir is not supported in a sandbox started inside another supervised sandbox',
        'workdir layer',
      );
    }
    // Its worker thread starts while the sandbox does; attach waits for it.
    const workerReady = notify.length > 0 ? supervisor.ready() : null;
    workerReady?.catch(() => {});

    // What a failure from here on must undo: this process's descriptors the
    // child gets copies of, the supervisor's end of the broker socket (until
    // a session owns it), the child, and the session.
    const handedDown: number[] = [];
    let broker: number | null = null;
    let zygote: number | null = null;
    let zygoteChildEnd = -1;
    let launched: Launched | null = null;
    let released = false;
    let session: Session | null = null;
    let layer: SandboxLayer | null = null;
    let registration: Registration | null = null;
    let http: SandboxHttp | null = null;
    // Denials before the process object exists (none: nothing runs yet) are dropped.
    let onDenied: (denial: Denial) => void = () => {};
    try {
      // Nested, the outer sandbox's proxy serves it (nesting.ts).
      http = delegating
        ? null
        : await atStepAsync('http proxy', () =>
            startHttp(policy, view, (denial) => onDenied(denial)),
          );
      if (http !== null) {
        // Secrets stay in the supervisor; the usual clients trust the proxy's CA.
        for (const name of http.setup.credentials.variables) delete env[name];
        Object.assign(env, http.setup.bundle.env);
      }
      // Claimed before anything starts: a name taken is refused with nothing run.
      registration = await claimName({ name: options.name, command: argv, policy });
      if (policy.workdir !== null) {
        // The layer the cow module serves the workdir from (its store is
        // left out of the sandbox's Landlock domain, confine.ts).
        layer = SandboxLayer.create(policy);
        view = { ...view, cowLayer: layer.forModules } as typeof view;
      }
      if (plan.broker) {
        // The reaper makes the calls a module does on the sandbox's behalf,
        // in the policy's own Landlock domain (confine.ts).
        const pair = atStep('broker socket', () => brokerSocketPair());
        broker = pair.supervisor;
        handedDown.push(pair.reaper);
      }
      if (options.joinable === true) {
        const pair = atStep('zygote socket', () => brokerSocketPair());
        zygote = pair.supervisor;
        zygoteChildEnd = pair.reaper;
        handedDown.push(pair.reaper);
      }
      const confinement = prepareConfinement(policy, {
        notify,
        hideProcesses: plan.hideProcesses,
        unixSockets: plan.unixSockets,
        ...(plan.broker ? { brokerFd: handedDown[0]! } : {}),
        ...(http !== null ? { proxyPort: http.redirect.port } : {}),
        ...(layer !== null ? { workdir: layer.confinement } : {}),
        ...(options.extraFilter !== undefined ? { extraFilter: options.extraFilter } : {}),
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.terminal === true ? { terminal: true } : {}),
      });
      handedDown.push(...confinement.fds);
      let modulesView: typeof view =
        http !== null
          ? { ...view, httpRedirect: http.redirect, trustBundles: http.trustBundles }
          : view;
      if (options.user !== undefined) {
        // Its lookups on the sandbox's behalf are judged as the user's.
        const { uid, gid, groups = [] } = options.user;
        modulesView = {
          ...modulesView,
          callerIds: { fsuid: uid, fsgid: gid, groups: [...groups] },
        };
      }
      if (options.joinable === true) modulesView = { ...modulesView, joinable: true };
      if (confinement.listener) {
        // This sandbox's supervisor is the one a sandbox inside it must ask.
        const socket = await atStepAsync('delegation socket', () => delegationSocket());
        if (socket !== null) env[SUPERVISOR_VARIABLE] = socket;
        else delete env[SUPERVISOR_VARIABLE];
        modulesView = withDelegationSocket(modulesView, socket);
      }
      const started = launch({
        path,
        argv: rooted?.exec.argv ?? argv,
        ...(rooted !== null
          ? {
              exec: {
                interpreterFd: rooted.exec.interpreterFd,
                file: (fd: number | null) => rooted.exec.file(fd),
              },
            }
          : {}),
        env,
        steps: confinement.steps,
        stdio: stdioEntries(options.stdio),
        handshake: confinement.listener || delegating,
        ...(zygote !== null ? { zygote: { socketFd: zygoteChildEnd } } : {}),
      });
      launched = started;
      // The child has its copies now (spawn forks synchronously).
      closeAll(handedDown);
      rooted?.exec.close();
      const report = await started.ready;
      const sandboxed = new SandboxProcess(started.child, report.pid, confinement.warnings);
      if (zygote !== null) {
        sandboxed.setZygote(zygote);
        zygote = null;
      }
      if (layer !== null) {
        const own = layer;
        const end = options.workdirEnd ?? 'policy';
        sandboxed.finishWorkdir((status) =>
          own.finish(
            policy,
            status.exitCode === 0 && !status.timedOut && status.killedBy === null,
            end,
          ),
        );
      }
      const listed = (await registration?.started(report.pid, started.pid)) === true;
      sandboxed.list(
        listed ? registration : null,
        registration?.name ?? options.name ?? `sandbox-${started.pid}`,
      );
      // Before the program runs: no refusal of its is missed.
      if (options.onRefusal !== undefined) sandboxed.on('refusal', options.onRefusal);
      onDenied = (denial) => sandboxed.emit('denied', denial);
      if (delegating) {
        await requestDelegation(outerSupervisor, {
          reaperPid: started.pid,
          programPid: report.pid,
          policy,
          secrets,
        });
      } else if (confinement.listener) {
        await atStepAsync('supervisor', () => workerReady!);
        const listener = atStep('seccomp listener', () => started.takeListener());
        const brokerFd = broker ?? undefined;
        broker = null; // attach owns it now, also when it throws
        session = atStep('attach', () =>
          supervisor.attach(listener, {
            reaperPid: started.pid,
            programPid: report.pid,
            policy: modulesView,
            deny: defaultDenyList(hostArch()),
            notified: notify,
            ...(brokerFd !== undefined ? { broker: brokerFd } : {}),
          }),
        );
        http?.attach(session.id);
        track(started.pid, session, policy, supervisor);
        sandboxed.supervise(session);
        const supervised = session;
        layer?.watchDisk(
          (reason) => supervised.kill(reason),
          () => sandboxProcesses(started.pid),
        );
      }
      await started.release();
      released = true;
      sandboxed.startedWith(
        {
          maxMemory: policy.maxMemory,
          maxProcesses: policy.maxProcesses,
          maxCpu: policy.maxCpu,
          cpuCores: policy.cpuCores,
        },
        session !== null,
      );
      sandboxed.watch(
        atStep('resource watch', () =>
          watchResources(started.pid, {
            maxMemory: policy.maxMemory,
            maxCpu: policy.maxCpu,
            onViolation: (violation) => sandboxed.limitKilled(violation),
          }),
        ),
      );
      if (http !== null) {
        const proxy = http;
        void sandboxed.wait().finally(() => proxy.close());
      }
      return sandboxed;
    } catch (error) {
      rooted?.exec.close();
      void http?.close();
      closeAll(handedDown);
      if (broker !== null) close(broker);
      if (zygote !== null) close(zygote);
      session?.kill('the sandbox failed to start');
      if (launched !== null) await abandon(launched, released);
      layer?.discard();
      await registration?.remove().catch(() => {});
      throw startError(error);
    }
  }

  /**
   * Runs `argv` to the end of every process of the sandbox, collecting its
   * output (with `stdio: 'pipe'`, the default). Rejects with a TypeError for
   * bad arguments, an AbortError when `signal` aborts.
   */
  run(
    argv: readonly string[],
    options: RunOptions & { encoding: BufferEncoding },
  ): Promise<RunResult<string>>;
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  async run(
    argv: readonly string[],
    options: RunOptions = {},
  ): Promise<RunResult<Buffer | string>> {
    checkArgv('run', argv);
    checkOptions('run', options, RUN_CHECKS);
    const { timeout, input, signal, maxBuffer = DEFAULT_MAX_BUFFER, encoding = 'buffer' } = options;
    const entries = stdioEntries(options.stdio);
    if (input !== undefined && entries[0] !== 'pipe') {
      throw new TypeError("sandlock: run: input needs stdin to be a pipe (stdio 'pipe')");
    }
    if (signal?.aborted) throw abortError(signal);
    const started = performance.now();
    const sandboxed = await this.start(argv, { ...options, stdio: entries });
    let bufferKill: KillCause | null = null;
    const overflow = (stream: 'stdout' | 'stderr') => () => {
      bufferKill ??= {
        reason: 'maxBuffer',
        message: `${stream} went over maxBuffer (${maxBuffer} bytes); the sandbox was killed`,
      };
      void sandboxed.kill('SIGKILL').catch(() => {});
    };
    const stdout = collect(sandboxed.stdout, maxBuffer, overflow('stdout'));
    const stderr = collect(sandboxed.stderr, maxBuffer, overflow('stderr'));
    writeInput(sandboxed.stdin, input);
    const cancelTimeout =
      timeout !== undefined ? afterDelay(timeout, () => sandboxed.expire()) : undefined;
    const onAbort = () => void sandboxed.kill('SIGKILL').catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      const status = await sandboxed.wait();
      if (signal?.aborted) throw abortError(signal);
      const decode = (bytes: Buffer) => (encoding === 'buffer' ? bytes : bytes.toString(encoding));
      return {
        ...status,
        ...workdirShortcuts(status.workdir),
        killedBy: status.killedBy ?? bufferKill,
        stdout: decode(stdout()),
        stderr: decode(stderr()),
        durationMs: performance.now() - started,
      };
    } finally {
      cancelTimeout?.();
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
