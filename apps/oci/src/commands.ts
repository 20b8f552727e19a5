import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendantsOf, startTimeOf } from '@sandlock/sys';
import { containerIdOf, type OptionTable, parseOptions } from './args.js';
import { type ControlRequest, callSupervisor } from './control.js';
import { notRunning, OciError, UsageError } from './errors.js';
import type { RuntimeLog } from './log.js';
import type { MappedResources } from './mapping.js';
import { READY_FD, signalName } from './signals.js';
import type { OciConfig, OciHook, OciResources } from './spec.js';
import { ContainerDir, type ContainerRecord, type ContainerStatus, writePidFile } from './state.js';

export interface Globals {
  root: string;
  log: RuntimeLog;
  /** The arguments that give the supervisor the same log. */
  logArgs: string[];
}

/**
 * The supervisor's own bundle beside this one (started through the code
 * cache, bin/supervisor.cjs): the calls that only read or signal (state,
 * kill, delete) do not load the sandbox library.
 */
const SUPERVISOR = fileURLToPath(new URL('../bin/supervisor.cjs', import.meta.url));

/** How long `create` waits for its supervisor to be ready: only a hang reaches it. */
const READY_TIMEOUT_MS = 60_000;

/** The OCI state of a container (runtime.md "State"), with runc's extra fields. */
function stateOf(dir: ContainerDir, record: ContainerRecord): Record<string, unknown> {
  const status = dir.status(record);
  return {
    ociVersion: '1.0.2',
    id: record.id,
    pid: status === 'stopped' ? 0 : record.pid,
    status: status === 'creating' ? 'creating' : status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: '',
    annotations: record.annotations,
  };
}

function readConfig(bundle: string): OciConfig {
  try {
    return JSON.parse(readFileSync(`${bundle}/config.json`, 'utf8')) as OciConfig;
  } catch (error) {
    throw new OciError(`cannot read ${bundle}/config.json: ${(error as Error).message}`);
  }
}

/** Runs the hooks of one stage (config.md "POSIX-platform Hooks"), the state on their stdin. */
function runHooks(
  stage: string,
  hooks: OciHook[] | undefined,
  state: Record<string, unknown>,
  log: RuntimeLog,
  fatal: boolean,
): void {
  for (const [index, hook] of (hooks ?? []).entries()) {
    const result = spawnSync(hook.path, (hook.args ?? [hook.path]).slice(1), {
      argv0: hook.args?.[0] ?? hook.path,
      env: Object.fromEntries(
        (hook.env ?? []).map((entry) => [
          entry.slice(0, entry.indexOf('=')),
          entry.slice(entry.indexOf('=') + 1),
        ]),
      ),
      input: JSON.stringify(state),
      timeout: hook.timeout !== undefined ? hook.timeout * 1000 : undefined,
      stdio: ['pipe', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (result.status !== 0) {
      const why = result.error?.message ?? `exit status ${result.status ?? result.signal}`;
      const message =
        `hooks.${stage}[${index}] (${hook.path}) failed: ${why} ${result.stderr ?? ''}`.trim();
      if (fatal) throw new OciError(message);
      log.warning(message);
    }
  }
}

/** Starts a supervisor and waits until it is ready (or says why it is not). */
async function startSupervisor(args: string[], globals: Globals): Promise<number> {
  const child = spawn(process.execPath, [SUPERVISOR, ...globals.logArgs, ...args], {
    detached: true,
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream;
  let text = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (chunk: string) => {
    text += chunk;
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(
      () => fail(new OciError('the supervisor did not get ready in time')),
      READY_TIMEOUT_MS,
    );
    pipe.on('end', () => {
      clearTimeout(timer);
      done();
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
  });
  if (text !== 'ok') {
    await exited;
    throw new OciError(text === '' ? 'the supervisor ended before it was ready' : text);
  }
  child.unref();
  return child.pid!;
}

const CREATE: OptionTable = {
  values: { bundle: 'b', 'pid-file': '', 'console-socket': '', 'preserve-fds': '' },
  switches: { 'no-pivot': '', 'no-new-keyring': '' },
};

export async function createCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, CREATE, 'create');
  const id = containerIdOf(parsed, 'create');
  const bundle = resolve(parsed.options.get('bundle') ?? '.');
  if (Number(parsed.options.get('preserve-fds') ?? '0') !== 0) {
    throw new UsageError('create: --preserve-fds is not supported');
  }
  const config = readConfig(bundle);
  const dir = new ContainerDir(globals.root, id);
  dir.make();
  try {
    const record: ContainerRecord = {
      id,
      bundle,
      rootfs: resolve(bundle, config.root?.path ?? 'rootfs'),
      pid: 0,
      pidStart: 0,
      created: new Date().toISOString(),
      annotations: config.annotations ?? {},
      paused: false,
    };
    dir.writeRecord(record);
    const consoleSocket = parsed.options.get('console-socket');
    const pid = await startSupervisor(
      [
        '--bundle',
        bundle,
        ...(consoleSocket !== undefined ? ['--console-socket', resolve(consoleSocket)] : []),
        id,
      ],
      globals,
    );
    record.pid = pid;
    record.pidStart = startTimeOf(pid) ?? 0;
    dir.writeRecord(record);
    const state = stateOf(dir, record);
    runHooks('prestart', config.hooks?.prestart, state, globals.log, true);
    runHooks('createRuntime', config.hooks?.createRuntime, state, globals.log, true);
    runHooks('createContainer', config.hooks?.createContainer, state, globals.log, true);
    const pidFile = parsed.options.get('pid-file');
    if (pidFile !== undefined) writePidFile(resolve(pidFile), pid);
    return 0;
  } catch (error) {
    const record = dir.exists ? dir.record() : null;
    if (record !== null && record.pid > 0 && dir.supervisorAlive(record)) {
      process.kill(record.pid, 'SIGKILL');
    }
    dir.remove();
    throw error;
  }
}

/** Asks the running supervisor; a supervisor gone means the container has stopped. */
async function ask(dir: ContainerDir, request: ControlRequest): Promise<{ pids?: number[] }> {
  const reply = await callSupervisor(dir.socket, request).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') throw notRunning(dir.id);
    throw error;
  });
  if (!reply.ok) throw new OciError(reply.error);
  return reply;
}

const NONE: OptionTable = { values: {}, switches: {} };

export async function startCommand(argv: string[], globals: Globals): Promise<number> {
  const id = containerIdOf(parseOptions(argv, NONE, 'start'), 'start');
  const dir = new ContainerDir(globals.root, id);
  return dir.locked(async () => {
    const record = dir.record();
    const status = dir.status(record);
    if (status !== 'created') throw new OciError(`cannot start a container that is ${status}`);
    await ask(dir, { op: 'start' });
    const config = readConfig(record.bundle);
    runHooks(
      'startContainer',
      config.hooks?.startContainer,
      stateOf(dir, record),
      globals.log,
      true,
    );
    runHooks('poststart', config.hooks?.poststart, stateOf(dir, record), globals.log, false);
    return 0;
  });
}

export async function stateCommand(argv: string[], globals: Globals): Promise<number> {
  const id = containerIdOf(parseOptions(argv, NONE, 'state'), 'state');
  const dir = new ContainerDir(globals.root, id);
  const record = dir.record();
  process.stdout.write(`${JSON.stringify(stateOf(dir, record), null, 2)}\n`);
  return 0;
}

const KILL: OptionTable = { values: {}, switches: { all: 'a' } };

export async function killCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, KILL, 'kill');
  const id = containerIdOf(parsed, 'kill');
  const signal = signalName(parsed.positional[1] ?? 'SIGTERM');
  const dir = new ContainerDir(globals.root, id);
  return dir.locked(async () => {
    const record = dir.record();
    if (dir.status(record) === 'stopped') throw notRunning(id);
    // Every process of the sandbox gets it, so --all changes nothing.
    await ask(dir, { op: 'kill', signal });
    return 0;
  });
}

/** Waits (polling, with a deadline that only catches a hang) until the supervisor has gone. */
async function supervisorGone(dir: ContainerDir, record: ContainerRecord): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (dir.supervisorAlive(record)) {
    if (Date.now() > deadline)
      throw new OciError(`container ${dir.id}: its supervisor does not end`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

const DELETE: OptionTable = { values: {}, switches: { force: 'f' } };

export async function deleteCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, DELETE, 'delete');
  const id = containerIdOf(parsed, 'delete');
  const dir = new ContainerDir(globals.root, id);
  if (!existsSync(dir.dir)) {
    if (parsed.switches.has('force')) return 0;
    throw new OciError(`container ${id} does not exist`);
  }
  return dir.locked(async () => {
    let record: ContainerRecord | null = null;
    try {
      record = dir.record();
    } catch {
      // A create that died half-way: only its directory is left.
    }
    if (record !== null) {
      const status: ContainerStatus = dir.status(record);
      if (status !== 'stopped' && status !== 'created' && !parsed.switches.has('force')) {
        throw new OciError(`cannot delete container ${id} that is not stopped: ${status}`);
      }
      if (dir.supervisorAlive(record)) {
        try {
          process.kill(record.pid, status === 'created' ? 'SIGKILL' : 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
        await supervisorGone(dir, record);
      }
    }
    dir.remove();
    if (record !== null && existsSync(record.bundle)) {
      const config = readConfig(record.bundle);
      runHooks(
        'poststop',
        config.hooks?.poststop,
        { ...stateOf(dir, record), status: 'stopped' },
        globals.log,
        false,
      );
    }
    return 0;
  });
}

const PS: OptionTable = { values: { format: 'f' }, switches: {} };

export async function psCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, PS, 'ps');
  const id = containerIdOf(parsed, 'ps');
  const dir = new ContainerDir(globals.root, id);
  const record = dir.record();
  const pids = dir.status(record) === 'stopped' ? [] : [record.pid, ...descendantsOf(record.pid)];
  const format = parsed.options.get('format') ?? 'table';
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(pids)}\n`);
  } else if (format === 'table') {
    const rows = pids.map((pid) => {
      let command = '';
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        // Ended meanwhile.
      }
      return `${pid}\t${command}`;
    });
    process.stdout.write(`PID\tCMD\n${rows.join('\n')}${rows.length > 0 ? '\n' : ''}`);
  } else {
    throw new UsageError(`ps: --format ${format}: expected table or json`);
  }
  return 0;
}

const EXEC: OptionTable = {
  values: { process: 'p', 'pid-file': '', 'console-socket': '', cwd: '', env: 'e', user: 'u' },
  switches: { detach: 'd', tty: 't' },
};

export async function execCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, EXEC, 'exec');
  const id = containerIdOf(parsed, 'exec');
  const processFile = parsed.options.get('process');
  if (processFile === undefined) throw new UsageError('exec: --process FILE is required');
  for (const name of ['cwd', 'env', 'user', 'tty']) {
    if (parsed.options.has(name) || parsed.switches.has(name)) {
      throw new UsageError(`exec: --${name} is not supported; give it in --process`);
    }
  }
  if (!parsed.switches.has('detach')) throw new UsageError('exec: only --detach is supported');
  const dir = new ContainerDir(globals.root, id);
  const record = dir.record();
  const status = dir.status(record);
  if (status !== 'running') throw new OciError(`cannot exec in a container that is ${status}`);
  const consoleSocket = parsed.options.get('console-socket');
  const pid = await startSupervisor(
    [
      '--bundle',
      record.bundle,
      '--process',
      resolve(processFile),
      ...(consoleSocket !== undefined ? ['--console-socket', resolve(consoleSocket)] : []),
      id,
    ],
    globals,
  );
  const pidFile = parsed.options.get('pid-file');
  if (pidFile !== undefined) writePidFile(resolve(pidFile), pid);
  return 0;
}

async function pauseOrResume(
  op: 'pause' | 'resume',
  argv: string[],
  globals: Globals,
): Promise<number> {
  const id = containerIdOf(parseOptions(argv, NONE, op), op);
  const dir = new ContainerDir(globals.root, id);
  return dir.locked(async () => {
    const record = dir.record();
    const status = dir.status(record);
    if (op === 'pause' && status !== 'running')
      throw new OciError(`container ${id} is ${status}, not running`);
    if (op === 'resume' && status !== 'paused')
      throw new OciError(`container ${id} is ${status}, not paused`);
    await ask(dir, { op });
    dir.writeRecord({ ...record, paused: op === 'pause' });
    return 0;
  });
}

export const pauseCommand = (argv: string[], globals: Globals) =>
  pauseOrResume('pause', argv, globals);
export const resumeCommand = (argv: string[], globals: Globals) =>
  pauseOrResume('resume', argv, globals);

const UPDATE: OptionTable = {
  values: {
    resources: 'r',
    memory: 'm',
    'pids-limit': '',
    'cpu-quota': '',
    'cpu-period': '',
    'cpuset-cpus': '',
  },
  switches: {},
};

/** The command-line flags of `update`, each a field of linux.resources (runc's). */
const UPDATE_FLAGS: Record<string, [group: string, key: string]> = {
  memory: ['memory', 'limit'],
  'pids-limit': ['pids', 'limit'],
  'cpu-quota': ['cpu', 'quota'],
  'cpu-period': ['cpu', 'period'],
  'cpuset-cpus': ['cpu', 'cpus'],
};

/** linux.resources from `--resources FILE|-` (a LinuxResources object, as runc reads it) and the flags. */
function wantedResources(options: Map<string, string>): OciResources {
  const source = options.get('resources');
  let wanted: Record<string, unknown> = {};
  if (source !== undefined) {
    const text = source === '-' ? readFileSync(0, 'utf8') : readFileSync(source, 'utf8');
    try {
      wanted = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new UsageError(`update: --resources: not JSON: ${(error as Error).message}`);
    }
    if (typeof wanted !== 'object' || wanted === null || Array.isArray(wanted)) {
      throw new UsageError('update: --resources: expected a JSON object (linux.resources)');
    }
  }
  for (const [flag, [group, key]] of Object.entries(UPDATE_FLAGS)) {
    const value = options.get(flag);
    if (value === undefined) continue;
    if (key !== 'cpus' && !/^-?\d+$/.test(value)) {
      throw new UsageError(`update: --${flag} ${value}: expected a whole number`);
    }
    const groupValue = (wanted[group] ?? {}) as Record<string, unknown>;
    groupValue[key] = key === 'cpus' ? value : Number(value);
    wanted[group] = groupValue;
  }
  return wanted as OciResources;
}

/**
 * `update`: the limits linux.resources maps to (memory.limit, pids.limit,
 * cpu.quota and period, cpu.cpus) changed on the running sandbox, all or
 * none; a field that does not map is refused or warned about as `create`
 * does. An error names the OCI field and the policy field behind it.
 */
export async function updateCommand(argv: string[], globals: Globals): Promise<number> {
  const parsed = parseOptions(argv, UPDATE, 'update');
  const id = containerIdOf(parsed, 'update');
  const dir = new ContainerDir(globals.root, id);
  // Loaded here: the other commands do without the policy package.
  const { mapResources, UnsupportedField } = await import('./mapping.js');
  let mapped: MappedResources;
  try {
    mapped = mapResources(wantedResources(parsed.options), true);
  } catch (error) {
    if (error instanceof UnsupportedField) {
      throw new OciError(`update: ${error.field}: ${error.why}`);
    }
    throw error;
  }
  return dir.locked(async () => {
    const record = dir.record();
    if (dir.status(record) === 'stopped') throw notRunning(id);
    for (const warning of mapped.warnings) globals.log.warning(`update: ${warning}`);
    if (Object.keys(mapped.limits).length === 0) return 0;
    try {
      await ask(dir, { op: 'update', limits: mapped.limits });
    } catch (error) {
      if (!(error instanceof OciError) || error.message.endsWith('container not running'))
        throw error;
      let message = error.message.replace(/^sandlock: /, '');
      for (const [name, from] of Object.entries(mapped.from)) {
        message = message.replace(`${name}:`, `${from.field} (${name}):`);
      }
      throw new OciError(`update: ${message}`);
    }
    return 0;
  });
}

declare const SANDLOCK_OCI_VERSION: string;

export function featuresCommand(): number {
  const features = {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.1.0',
    hooks: [
      'prestart',
      'createRuntime',
      'createContainer',
      'startContainer',
      'poststart',
      'poststop',
    ],
    mountOptions: ['ro', 'rw', 'bind', 'rbind'],
    linux: {
      namespaces: [],
      capabilities: [],
      cgroup: { v1: false, v2: false, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: [
          'SCMP_ACT_ALLOW',
          'SCMP_ACT_ERRNO',
          'SCMP_ACT_KILL',
          'SCMP_ACT_KILL_THREAD',
          'SCMP_ACT_KILL_PROCESS',
          'SCMP_ACT_TRAP',
          'SCMP_ACT_LOG',
        ],
        operators: ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_MASKED_EQ'],
        archs: [process.arch === 'arm64' ? 'SCMP_ARCH_AARCH64' : 'SCMP_ARCH_X86_64'],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      'dev.sandlock.oci.version':
        typeof SANDLOCK_OCI_VERSION === 'string' ? SANDLOCK_OCI_VERSION : 'dev',
    },
  };
  process.stdout.write(`${JSON.stringify(features, null, 2)}\n`);
  return 0;
}

export function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}
