import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import type { Server, Socket } from 'node:net';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import type { FieldName, PolicyDraft } from '@sandlock/policy';
import {
  compileRuleSet,
  OciProfileError,
  type OciSeccompProfile,
  ociProfileRules,
} from '@sandlock/seccomp';
import {
  close,
  hostArch,
  peerPidfd,
  pidfdGetfd,
  pidfdOpen,
  readableNow,
  setRlimit,
  syscall,
} from '@sandlock/sys';
import {
  DEFAULT_POLICY,
  type JoinedProcess,
  Sandbox,
  type SandboxProcess,
  type StdioOption,
} from 'sandlock';
import { openConsole } from './console.js';
import { type ControlReply, type ControlRequest, serveControl } from './control.js';
import { OciError } from './errors.js';
import { type ContainerUser, planExec } from './exec-process.js';
import type { RuntimeLog } from './log.js';
import { mapConfig, UnsupportedField } from './mapping.js';
import { makeMountPoint } from './mount-points.js';
import { READY_FD } from './signals.js';
import type { OciConfig, OciSeccomp } from './spec.js';
import { ContainerDir } from './state.js';

export interface SuperviseOptions {
  root: string;
  id: string;
  bundle: string;
  consoleSocket: string | null;
  log: RuntimeLog;
}

/** Whether this Sandlock emulates a chroot (policy fields chroot and fsMount). */
export function hasChroot(): boolean {
  return 'chroot' in DEFAULT_POLICY && 'fsMount' in DEFAULT_POLICY;
}

export function reportReady(message: string): void {
  try {
    writeSync(READY_FD, message);
    closeSync(READY_FD);
  } catch {
    // create has gone: nothing to tell.
  }
}

/** linux.seccomp compiled for this machine, to go on top of Sandlock's own filter. */
function containerFilter(profile: OciSeccomp): { program: Buffer } {
  try {
    return compileRuleSet(ociProfileRules(profile as OciSeccompProfile, hostArch()));
  } catch (error) {
    if (error instanceof OciProfileError) {
      throw new UnsupportedField(
        error.field === '' ? 'linux.seccomp' : `linux.seccomp.${error.field}`,
        error.message.replace(/^linux\.seccomp\.[^:]*: /, ''),
      );
    }
    throw error;
  }
}

/**
 * Lets bin/code-cache.cjs write V8's code cache (when it had none for this
 * bundle) once the supervisor has compiled what a container's start runs.
 */
function saveCodeCache(): void {
  const save = (globalThis as Record<symbol, unknown>)[Symbol.for('sandlock.oci.saveCodeCache')];
  if (typeof save === 'function') save();
}

/** How often the supervisor looks whether the container's first process has ended. */
const PROGRAM_POLL_MS = 50;

/**
 * The container ends with its first process, as a pid namespace does when
 * its init ends (pid_namespaces(7)): what is left (processes `exec` started,
 * daemons) is killed, or the reaper would wait for them. The reaper still
 * exits with the first process's status.
 */
function endsWithProgram(sandboxed: SandboxProcess): void {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(sandboxed.pid);
  } catch {
    // Ended already, or it cannot be watched: the container ends now.
    void sandboxed.kill('SIGKILL').catch(() => {});
    return;
  }
  let watching = true;
  const stop = () => {
    if (!watching) return;
    watching = false;
    clearInterval(timer);
    close(pidfd);
  };
  const timer = setInterval(() => {
    if (!readableNow(pidfd)) return;
    stop();
    void sandboxed.kill('SIGKILL').catch(() => {});
  }, PROGRAM_POLL_MS);
  timer.unref();
  void sandboxed.wait().finally(stop);
}

/** How long the end of the container waits for `wait` replies to be read. */
const REPLY_GRACE_MS = 5_000;

/** Points this process's stdin, stdout and stderr at /dev/null. */
export function detachStdio(): void {
  const devNull = openSync('/dev/null', 'r+');
  for (const fd of [0, 1, 2]) syscall('dup3', devNull, fd, 0);
  closeSync(devNull);
}

/** Ends this process the way the workload ended, so the shim's wait4 sees its status. */
export function endLike(exitCode: number | null, signal: NodeJS.Signals | null): never {
  if (signal !== null) {
    for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', signal]) {
      process.removeAllListeners(name);
    }
    try {
      process.kill(process.pid, signal);
    } catch {
      // Not a signal this process can die of: the shell's convention below.
    }
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(exitCode ?? 255);
}

/**
 * The container's supervisor: the process the pid file names (the shim
 * reaps it and takes its exit status for the container's), which runs the
 * workload in a sandbox once `start` asks, passes signals on, and ends as the
 * workload ended.
 */
export async function supervise(options: SuperviseOptions): Promise<never> {
  const dir = new ContainerDir(options.root, options.id);
  let sandbox: Sandbox;
  let stdio: StdioOption = 'inherit';
  let argv: string[];
  let server: Server | null = null;
  let extraFilter: { program: Buffer } | undefined;
  let user: { uid: number; gid: number; groups: number[] } | undefined;
  let rootfs = '';
  let draft: PolicyDraft;
  try {
    const config = JSON.parse(readFileSync(`${options.bundle}/config.json`, 'utf8')) as OciConfig;
    rootfs = resolve(options.bundle, config.root?.path ?? 'rootfs');
    const scratchDir = dir.scratch;
    const plan = mapConfig(config, {
      bundle: options.bundle,
      scratchDir,
      chroot: hasChroot(),
      mountPoint: makeMountPoint,
    });
    if (plan.seccomp !== undefined) extraFilter = containerFilter(plan.seccomp);
    // The policy wants the tmpfs mounts' directories to exist.
    for (const scratch of plan.scratch) {
      mkdirSync(scratch.path, { recursive: true });
      // The mount's own mode (tmpfs(5): 1777 unless given), whatever the umask.
      chmodSync(scratch.path, scratch.mode);
      chownSync(scratch.path, scratch.uid, scratch.gid);
    }
    if (plan.terminal) {
      if (options.consoleSocket === null) {
        throw new UnsupportedField('process.terminal', 'true, but no --console-socket was given');
      }
      const pty = openConsole(options.consoleSocket, plan.consoleSize);
      closeSync(pty.master);
      stdio = [pty.slave, pty.slave, pty.slave];
      // Inside the emulated root the terminal exists only where mounted (tty(1), ttyname(3)).
      if (hasChroot()) plan.draft.add('fsMount' as FieldName, [`${pty.name}:${pty.name}`]);
      // The caller of create may wait for the end of its stdout and stderr
      // (go-runc collects them when there is a terminal): this process lets
      // go of them, as the workload's are the terminal.
      detachStdio();
    } else if (options.consoleSocket !== null) {
      throw new OciError('--console-socket given, but process.terminal is not true');
    }
    draft = plan.draft;
    sandbox = Sandbox.fromDraft(draft);
    argv = plan.argv;
    for (const warning of plan.warnings) options.log.warning(warning);
    for (const limit of plan.rlimits) {
      setRlimit(limit.resource, { soft: limit.soft, hard: limit.hard });
    }
    if (plan.user !== null) user = plan.user;
    if (plan.umask !== null) process.umask(plan.umask);
    if (plan.oomScoreAdj !== null) {
      writeFileSync('/proc/self/oom_score_adj', String(plan.oomScoreAdj));
    }
  } catch (error) {
    reportReady(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }

  const socketPath = dir.socket;
  let sandboxed: SandboxProcess | null = null;
  let starting: Promise<void> | null = null;
  const start = (): Promise<void> => {
    starting ??= (async () => {
      sandboxed = await sandbox.spawn(argv, {
        stdio,
        // `exec` starts its processes inside the container (control op 'exec').
        joinable: true,
        ...(extraFilter !== undefined ? { extraFilter } : {}),
        ...(user !== undefined ? { user } : {}),
        ...(Array.isArray(stdio) ? { terminal: true } : {}), // stdio is process.terminal's
      });
      if (Array.isArray(stdio)) for (const fd of stdio.slice(0, 1)) closeSync(fd as number);
      for (const warning of sandboxed.warnings) options.log.warning(warning);
      dir.writeSupervisorStatus({ status: 'running' });
      endsWithProgram(sandboxed);
      setImmediate(saveCodeCache);
      void sandboxed.wait().then(async (status) => {
        // The exec'd processes have ended too: their callers get their status first.
        await Promise.allSettled([...execs.values()].map((joined) => joined.wait()));
        await Promise.race([
          Promise.allSettled(waiting),
          new Promise((done) => setTimeout(done, REPLY_GRACE_MS)),
        ]);
        dir.writeSupervisorStatus({
          status: 'stopped',
          ...(status.exitCode !== null ? { exitCode: status.exitCode } : {}),
          ...(status.signal !== null ? { signal: status.signal } : {}),
        });
        server?.close();
        rmSync(socketPath, { force: true });
        endLike(status.exitCode, status.signal);
      });
    })();
    return starting;
  };

  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (sandboxed === null) {
      // Killed before start: the container ends without having run.
      dir.writeSupervisorStatus({ status: 'stopped', signal });
      server?.close();
      rmSync(socketPath, { force: true });
      setImmediate(() => endLike(null, signal));
      return;
    }
    await (sandboxed as SandboxProcess).kill(signal);
  };

  // What `exec` joins the container as: the workload's own credentials.
  const containerUser: ContainerUser = user ?? {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    groups: [],
  };
  const execs = new Map<number, JoinedProcess>();
  /** Settle when the connections of `wait` calls close (after their reply). */
  const waiting = new Set<Promise<void>>();

  const handle = async (request: ControlRequest, connection: Socket): Promise<ControlReply> => {
    switch (request.op) {
      case 'start':
        await start();
        return { ok: true };
      case 'kill':
        await kill(request.signal);
        return { ok: true };
      case 'pause':
        if (sandboxed === null) throw new OciError('container is not running');
        await (sandboxed as SandboxProcess).pause();
        return { ok: true };
      case 'resume':
        if (sandboxed === null) throw new OciError('container is not running');
        await (sandboxed as SandboxProcess).resume();
        return { ok: true };
      case 'pids':
        return { ok: true };
      case 'update':
        if (sandboxed !== null) {
          await (sandboxed as SandboxProcess).updateLimits(request.limits);
        } else if (starting !== null) {
          throw new OciError('the container is starting: update it once it runs');
        } else {
          // Not started: the policy it will start with changes.
          const next = draft.clone();
          for (const [name, value] of Object.entries(request.limits)) {
            next.replace(name as FieldName, value);
          }
          sandbox = Sandbox.fromDraft(next);
          draft = next;
          void sandbox.prepare().catch(() => {});
        }
        return { ok: true };
      case 'exec': {
        if (sandboxed === null) throw new OciError('container is not running');
        const plan = planExec(request.process, rootfs, containerUser);
        const stdio = takeDescriptors(connection, request.fds);
        try {
          const joined = await (sandboxed as SandboxProcess).join({
            path: plan.path,
            argv: plan.argv,
            env: plan.env,
            cwd: plan.cwd,
            rlimits: plan.rlimits,
            ...(plan.umask !== undefined ? { umask: plan.umask } : {}),
            terminal: plan.terminal,
            stdio,
          });
          execs.set(joined.pid, joined);
          return { ok: true, pid: joined.pid };
        } finally {
          for (const fd of stdio) close(fd);
        }
      }
      case 'wait': {
        const joined = execs.get(request.pid);
        if (joined === undefined) throw new OciError(`no process ${request.pid} started by exec`);
        // The caller is the process the shim waits for: without it, nothing would.
        const closed = new Promise<void>((done) => connection.once('close', () => done()));
        waiting.add(closed);
        void closed.then(() => {
          waiting.delete(closed);
          joined.kill('SIGKILL');
        });
        const status = await joined.wait();
        execs.delete(request.pid);
        return { ok: true, exitCode: status.exitCode, signal: status.signal };
      }
      case 'signal':
        execs.get(request.pid)?.kill(request.signal);
        return { ok: true };
      default:
        throw new OciError(`unknown request '${(request as { op: string }).op}'`);
    }
  };

  // Signals sent to this process go to the whole sandbox, as runc's init would get them.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
    process.on(signal, () => void kill(signal).catch(() => {}));
  }

  try {
    server = await serveControl(socketPath, handle);
    dir.writeSupervisorStatus({ status: 'created' });
  } catch (error) {
    reportReady(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
  reportReady('ok');
  // The worker thread and its modules load while the shim runs `start` (a
  // process of its own): spawn() then finds them ready.
  void sandbox.prepare().catch(() => {});
  // The event loop holds this process until the workload ends (endLike).
  return new Promise<never>(() => {});
}

/**
 * Copies of descriptors `fds` of the process at the other end of
 * `connection` (`exec`'s pid-file process, which sent their numbers): its
 * pidfd from SO_PEERPIDFD, so they are that process's and no other's.
 */
function takeDescriptors(connection: Socket, fds: readonly number[]): [number, number, number] {
  const taken: number[] = [];
  let pidfd: number | null = null;
  try {
    const socket = (connection as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof socket !== 'number' || socket < 0)
      throw new Error('the connection has no descriptor');
    pidfd = peerPidfd(socket);
    if (pidfd === null) throw new Error('this kernel lacks SO_PEERPIDFD (Linux 6.5)');
    if (fds.length !== 3) throw new Error('three descriptors are needed');
    for (const fd of fds) taken.push(pidfdGetfd(pidfd, fd));
    return taken as [number, number, number];
  } catch (error) {
    for (const fd of taken) close(fd);
    throw new OciError(`cannot take the stdio of the exec process: ${(error as Error).message}`);
  } finally {
    if (pidfd !== null) close(pidfd);
  }
}
