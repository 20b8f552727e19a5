import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { FIELD_NAMES, FIELDS, type FieldName, PolicyDraft } from '@sandlock/policy';
import { RLIMIT, type RlimitResource } from '@sandlock/sys';
import { OciError } from './errors.js';
import type { OciConfig, OciMount, OciProcess, OciResources, OciSeccomp } from './spec.js';

/** What a config.json becomes: a policy draft, the command, and what the supervisor does itself. */
export interface ContainerPlan {
  draft: PolicyDraft;
  /** The command as the sandbox is asked to run it. */
  argv: string[];
  terminal: boolean;
  consoleSize: { rows: number; columns: number } | null;
  /** Limits the supervisor sets on itself before it starts the sandbox, which inherits them. */
  rlimits: { resource: RlimitResource; soft: bigint; hard: bigint }[];
  oomScoreAdj: number | null;
  /** process.user when it is not root and this runtime is (the workload switches to it). */
  user: { uid: number; gid: number; groups: number[] } | null;
  /** process.user.umask (the supervisor sets it on itself; the workload inherits it). */
  umask: number | null;
  /** Private directories to create (tmpfs mounts): host paths, and the mount's mode, uid and gid options. */
  scratch: ScratchDir[];
  /** linux.seccomp, to be installed on top of Sandlock's own filter. */
  seccomp: OciSeccomp | undefined;
  /** Fields honoured only in part or not at all where that is safe: for log.json. */
  warnings: string[];
}

export interface ScratchDir {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}

/** A tmpfs mount's mode=, uid= and gid= options, with tmpfs(5)'s defaults (1777, root). */
function tmpfsOwner(mount: OciMount, field: string): Omit<ScratchDir, 'path'> {
  const owner = { mode: 0o1777, uid: 0, gid: 0 };
  for (const option of mount.options ?? []) {
    const match = /^(mode|uid|gid)=(.*)$/.exec(option);
    if (match === null) continue;
    const [, key, text] = match as unknown as [string, 'mode' | 'uid' | 'gid', string];
    const value = key === 'mode' ? Number.parseInt(text, 8) : Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || (key === 'mode' && value > 0o7777)) {
      throw new UnsupportedField(`${field}.options`, `'${option}' is not a tmpfs ${key}`);
    }
    owner[key] = value;
  }
  return owner;
}

export interface MappingOptions {
  /** The bundle directory (root.path is relative to it). */
  bundle: string;
  /** Where the private directories of tmpfs mounts go (per container). */
  scratchDir: string;
  /** Whether this Sandlock has the emulated chroot (policy fields chroot and fsMount). */
  chroot: boolean;
  /**
   * Where a mount's destination is inside the root once made (makeMountPoint:
   * the image's symlinks followed inside it, missing directories made, as
   * runc does before mounting); without it, the destination as given.
   */
  mountPoint?: (root: string, target: string, kind: 'dir' | 'file') => string;
}

/** A field of config.json this runtime cannot honour. */
export class UnsupportedField extends OciError {
  override name = 'UnsupportedField';
  constructor(
    readonly field: string,
    readonly why: string,
  ) {
    super(`config.json: ${field}: ${why}`);
  }
}

/** Annotations `dev.sandlock.<field>` may set these policy fields, as text the field's flag takes. */
export const ANNOTATION_FIELDS: readonly FieldName[] = [
  'netAllow',
  'netDeny',
  'netBind',
  'netConnect',
  'netAllowBind',
  'netDenyBind',
  'portRemap',
  'noRawSockets',
  'httpAllow',
  'httpDeny',
  'randomSeed',
  'timeStart',
  'numCpus',
  'deterministicDirs',
  'noRandomizeMemory',
  'noHugePages',
  'noCoredump',
  'maxDisk',
];

const ANNOTATION_PREFIX = 'dev.sandlock.';

/** Mount types that are safe to leave unmounted: the container sees less of the host. */
const SKIPPED_MOUNTS = new Set(['sysfs', 'cgroup', 'cgroup2', 'mqueue', 'devpts']);

/** Namespaces the sandbox does not create; each line says what stands in for it. */
const NAMESPACE_NOTES: Record<string, string> = {
  pid: 'no pid namespace: host pids, but /proc shows only the sandbox’s processes and signals reach no other',
  network:
    'no network namespace: the host network, reachable only as the network policy allows (nothing by default)',
  mount: 'no mount namespace: the root and mounts are emulated by the supervisor',
  uts: 'no uts namespace: the host name is virtual (uname, /etc/hostname)',
  ipc: 'no ipc namespace: System V IPC and POSIX message queues are the host’s',
  cgroup: 'no cgroup namespace: limits are enforced by the supervisor, not cgroups',
  time: 'no time namespace',
};

/**
 * Sysctls of a network namespace that only widen what an unprivileged
 * process may do in it (bind ports below 1024, open ICMP sockets); Docker
 * sets both for every container not on the host's network. Without a
 * namespace of its own, setting them would change the host's; leaving them
 * out gives the container less than it asked for.
 */
const WIDENING_SYSCTLS = new Set([
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ping_group_range',
]);
function origin(field: string, text: string) {
  return { kind: 'flag' as const, flag: `config.json ${field}`, text };
}

/** The policy field `name` from text, as its command-line flag reads it. */
function fromText(name: FieldName, text: string): unknown {
  const kind = FIELDS[name].kind as { fromText?: (text: string) => unknown };
  return kind.fromText ? kind.fromText(text) : text;
}

/** "0-2,5" → [0, 1, 2, 5] (cpuset.cpus, the kernel's cpu list format). */
export function parseCpuList(text: string, field: string): number[] {
  const cpus: number[] = [];
  for (const part of text.split(',')) {
    const match = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (match === null)
      throw new UnsupportedField(field, `'${text}' is not a CPU list such as 0-2,5`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from) throw new UnsupportedField(field, `'${part}' is an empty range`);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  return cpus;
}

export function envOf(list: readonly string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [index, entry] of (list ?? []).entries()) {
    const at = entry.indexOf('=');
    if (at <= 0)
      throw new UnsupportedField(`process.env[${index}]`, `'${entry}' is not NAME=VALUE`);
    env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

function isBind(mount: OciMount): boolean {
  return (
    mount.type === 'bind' ||
    (mount.options ?? []).some((option) => option === 'bind' || option === 'rbind')
  );
}

/** The host path of `path` inside the root directory, in the mode without the emulated chroot. */
function inRoot(root: string, path: string): string {
  return join(root, resolve('/', path));
}

/**
 * Finds `command` in the root directory the way execvp does with PATH, for
 * the mode without the emulated chroot (the program runs by its host path).
 */
function commandInRoot(root: string, command: string, cwd: string, path: string): string {
  if (command.includes('/'))
    return inRoot(root, isAbsolute(command) ? command : join(cwd, command));
  for (const dir of path.split(':')) {
    if (dir === '') continue;
    const candidate = inRoot(root, join(dir, command));
    if (existsSync(candidate)) return candidate;
  }
  throw new UnsupportedField(
    'process.args[0]',
    `'${command}' is not found in the PATH of the root`,
  );
}

function mapRlimits(process: OciProcess, draft: PolicyDraft, plan: ContainerPlan): void {
  for (const [index, limit] of (process.rlimits ?? []).entries()) {
    const field = `process.rlimits[${index}]`;
    const name = String(limit.type).replace(/^RLIMIT_/, '') as RlimitResource;
    if (!(name in RLIMIT))
      throw new UnsupportedField(`${field}.type`, `unknown limit '${limit.type}'`);
    if (limit.soft > limit.hard) throw new UnsupportedField(field, 'soft is above hard');
    if (name === 'NOFILE') {
      // The sandbox's own limit field: it sets soft and hard alike.
      if (limit.soft !== limit.hard) {
        plan.warnings.push(
          `${field}: RLIMIT_NOFILE soft ${limit.soft} is raised to hard ${limit.hard}`,
        );
      }
      draft.add('maxOpenFiles', limit.hard, origin(field, String(limit.hard)));
      continue;
    }
    if (name === 'CORE' && limit.hard === 0) {
      draft.add('noCoredump', true, origin(field, '0'));
      continue;
    }
    // Limits that would bind the supervisor too (it is a Node process that
    // shares nothing with the workload's address space or CPU time).
    if (name === 'AS' || name === 'DATA' || name === 'CPU' || name === 'RSS') {
      throw new UnsupportedField(
        `${field}.type`,
        `RLIMIT_${name} is not supported (use linux.resources.memory.limit or cpu.quota)`,
      );
    }
    plan.rlimits.push({ resource: name, soft: BigInt(limit.soft), hard: BigInt(limit.hard) });
  }
}

function mapCapabilities(process: OciProcess, plan: ContainerPlan): void {
  const listed = new Set(Object.values(process.capabilities ?? {}).flat());
  if (listed.size === 0) return;
  plan.warnings.push(
    `process.capabilities: the workload runs with no capability; not granted: ${[...listed].sort().join(', ')} (docs/kubernetes.md)`,
  );
}

/**
 * process.user: as root the workload becomes that user (SpawnOptions.user);
 * otherwise only this runtime's own uid and gid can be honoured, as nothing
 * else could switch to another.
 */
function mapUser(process: OciProcess, plan: ContainerPlan): void {
  const user = process.user ?? { uid: 0, gid: 0 };
  const groups = user.additionalGids ?? [];
  for (const [key, value] of [
    ['uid', user.uid],
    ['gid', user.gid],
    ...groups.map((gid, index) => [`additionalGids[${index}]`, gid] as const),
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || value >= 2 ** 32 - 1) {
      throw new UnsupportedField(`process.user.${key}`, `${value} is not a uid or gid`);
    }
  }
  if (
    user.umask !== undefined &&
    !(Number.isInteger(user.umask) && user.umask >= 0 && user.umask <= 0o777)
  ) {
    throw new UnsupportedField('process.user.umask', `${user.umask} is not a umask (0 to 0o777)`);
  }
  plan.umask = user.umask ?? null;
  const own = { uid: globalThis.process.getuid?.() ?? 0, gid: globalThis.process.getgid?.() ?? 0 };
  if (own.uid === 0) {
    if (user.uid !== 0 || user.gid !== 0 || groups.length > 0) {
      plan.user = { uid: user.uid, gid: user.gid, groups: [...new Set(groups)] };
    }
    return;
  }
  const asked = `${user.uid}:${user.gid}${groups.length > 0 ? ` (groups ${groups.join(',')})` : ''}`;
  const why = `${asked}: the runtime runs as ${own.uid}:${own.gid}, not root, so the workload can only run as ${own.uid}:${own.gid}`;
  if (user.uid !== own.uid) throw new UnsupportedField('process.user.uid', why);
  if (user.gid !== own.gid) throw new UnsupportedField('process.user.gid', why);
  if (groups.some((gid) => gid !== own.gid)) {
    throw new UnsupportedField('process.user.additionalGids', why);
  }
}

/** The limits linux.resources maps to (null: none, where `update` removes one). */
export interface ResourceLimits {
  maxMemory?: number | null;
  maxCpu?: number | null;
  cpuCores?: number[];
  maxProcesses?: number | null;
}

/** What linux.resources becomes: limits, the field each came from, and warnings for log.json. */
export interface MappedResources {
  limits: ResourceLimits;
  /** The OCI field and its text behind each limit. */
  from: Partial<Record<keyof ResourceLimits, { field: string; text: string }>>;
  warnings: string[];
}

/**
 * linux.resources as limits, for `create` and for `update` (where a field
 * left out or 0 changes nothing, and -1 asks for no limit). Fields that
 * cannot be honoured are refused (UnsupportedField) or, where ignoring is
 * safe, warned about.
 */
export function mapResources(resources: OciResources, update = false): MappedResources {
  const at = 'linux.resources';
  const mapped: MappedResources = { limits: {}, from: {}, warnings: [] };
  const set = <K extends keyof ResourceLimits>(
    name: K,
    value: ResourceLimits[K],
    field: string,
    text: string,
  ) => {
    mapped.limits[name] = value;
    mapped.from[name] = { field, text };
  };
  if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) {
    throw new UnsupportedField(at, 'expected an object');
  }
  for (const key of Object.keys(resources)) {
    if (
      ![
        'memory',
        'cpu',
        'pids',
        'devices',
        'blockIO',
        'hugepageLimits',
        'network',
        'rdma',
        'unified',
      ].includes(key)
    ) {
      throw new UnsupportedField(`${at}.${key}`, 'unknown resource');
    }
  }
  const unlimited = (value: unknown) => update && typeof value === 'number' && value < 0;
  const memory = resources.memory ?? {};
  for (const [key, value] of Object.entries(memory)) {
    if (value === undefined || value === null) continue;
    if (key === 'limit') {
      if (typeof value === 'number' && value > 0) {
        set('maxMemory', value, `${at}.memory.limit`, String(value));
      } else if (unlimited(value)) {
        set('maxMemory', null, `${at}.memory.limit`, String(value));
      }
    } else if (
      key === 'swap' ||
      key === 'reservation' ||
      key === 'swappiness' ||
      key === 'disableOOMKiller' ||
      key === 'useHierarchy'
    ) {
      mapped.warnings.push(
        `${at}.memory.${key}: not enforced (the sandbox is killed above memory.limit)`,
      );
    } else {
      throw new UnsupportedField(`${at}.memory.${key}`, 'not supported');
    }
  }
  const cpu = resources.cpu ?? {};
  if (cpu.quota !== undefined && cpu.quota !== null && cpu.quota > 0) {
    const period = cpu.period && cpu.period > 0 ? cpu.period : 100_000;
    const percent = Math.max(1, Math.ceil((cpu.quota / period) * 100));
    set('maxCpu', percent, `${at}.cpu.quota`, String(cpu.quota));
  } else if (unlimited(cpu.quota)) {
    set('maxCpu', null, `${at}.cpu.quota`, String(cpu.quota));
  }
  if (cpu.cpus !== undefined && cpu.cpus !== '') {
    set('cpuCores', parseCpuList(cpu.cpus, `${at}.cpu.cpus`), `${at}.cpu.cpus`, cpu.cpus);
  }
  for (const key of Object.keys(cpu)) {
    if (['quota', 'period', 'cpus'].includes(key)) continue;
    const value = cpu[key];
    if (value === undefined || value === null || value === 0 || value === '') continue;
    if (
      key === 'shares' ||
      key === 'mems' ||
      key === 'realtimeRuntime' ||
      key === 'realtimePeriod' ||
      key === 'burst' ||
      key === 'idle'
    ) {
      mapped.warnings.push(`${at}.cpu.${key}: not enforced`);
    } else {
      throw new UnsupportedField(`${at}.cpu.${key}`, 'not supported');
    }
  }
  const pids = resources.pids?.limit;
  if (pids !== undefined && pids !== null && pids > 0) {
    set('maxProcesses', pids, `${at}.pids.limit`, String(pids));
  } else if (unlimited(pids)) {
    set('maxProcesses', null, `${at}.pids.limit`, String(pids));
  }
  if ((resources.devices ?? []).some((rule) => rule.allow)) {
    mapped.warnings.push(
      `${at}.devices: no device is reachable but /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom and the terminal`,
    );
  }
  for (const key of ['blockIO', 'hugepageLimits', 'network', 'rdma', 'unified']) {
    const value = resources[key];
    if (value === undefined || value === null) continue;
    if (typeof value === 'object' && Object.keys(value).length === 0) continue;
    mapped.warnings.push(`${at}.${key}: not enforced`);
  }
  return mapped;
}

function addResources(resources: OciResources, draft: PolicyDraft, plan: ContainerPlan): void {
  const mapped = mapResources(resources);
  for (const [name, value] of Object.entries(mapped.limits)) {
    const from = mapped.from[name as keyof ResourceLimits]!;
    draft.add(name as FieldName, value, origin(from.field, from.text));
  }
  plan.warnings.push(...mapped.warnings);
}

function mapMounts(
  config: OciConfig,
  root: string,
  draft: PolicyDraft,
  plan: ContainerPlan,
  options: MappingOptions,
): void {
  for (const [index, mount] of (config.mounts ?? []).entries()) {
    const field = `mounts[${index}]`;
    const given = mount.destination;
    if (typeof given !== 'string' || !isAbsolute(given)) {
      throw new UnsupportedField(`${field}.destination`, 'expected an absolute path');
    }
    const made = (kind: 'dir' | 'file'): string => {
      if (!options.chroot || options.mountPoint === undefined) return given;
      try {
        return options.mountPoint(root, given, kind);
      } catch (error) {
        throw new UnsupportedField(`${field}.destination`, (error as Error).message);
      }
    };
    let target = given;
    const readOnly = (mount.options ?? []).includes('ro');
    if (isBind(mount)) {
      const source = mount.source ?? '';
      if (!isAbsolute(source) || !existsSync(source)) {
        throw new UnsupportedField(
          `${field}.source`,
          `'${source}' is not an absolute path that exists`,
        );
      }
      if (options.chroot) {
        target = made(statSync(source).isDirectory() ? 'dir' : 'file');
        draft.add(
          'fsMount' as FieldName,
          [`${target}:${source}${readOnly ? ':ro' : ''}`],
          origin(field, target),
        );
      } else {
        draft.add(readOnly ? 'fsRead' : 'fsWrite', [source], origin(field, source));
        plan.warnings.push(
          `${field}: ${source} is reachable at its host path, not at ${target} (no emulated chroot)`,
        );
      }
      continue;
    }
    switch (mount.type) {
      case 'proc':
        // Readable, Sandlock's /proc shows the sandbox's own processes only
        // (procfs's proc-pids module); inside the emulated chroot it exists
        // only when mounted.
        if (options.chroot) {
          target = made('dir');
          draft.add('fsMount' as FieldName, [`${target}:/proc`], origin(field, target));
        } else draft.add('fsRead', ['/proc'], origin(field, target));
        continue;
      case 'tmpfs': {
        if (target === '/dev') {
          // The device nodes that reach nothing (the `devices` field, on by default).
          continue;
        }
        const dir = join(options.scratchDir, String(plan.scratch.length));
        plan.scratch.push({ path: dir, ...tmpfsOwner(mount, field) });
        if (options.chroot) {
          target = made('dir');
          draft.add('fsMount' as FieldName, [`${target}:${dir}`], origin(field, target));
        } else {
          draft.add('fsWrite', [dir], origin(field, target));
          plan.warnings.push(`${field}: the tmpfs for ${target} is at ${dir} (no emulated chroot)`);
        }
        continue;
      }
      default:
        if (mount.type !== undefined && SKIPPED_MOUNTS.has(mount.type)) {
          plan.warnings.push(`${field}: ${mount.type} on ${target} is not mounted`);
          continue;
        }
        throw new UnsupportedField(`${field}.type`, `'${mount.type}' mounts are not supported`);
    }
  }
}

function mapLinux(config: OciConfig, draft: PolicyDraft, plan: ContainerPlan): void {
  const linux = config.linux ?? {};
  for (const [key, value] of Object.entries(linux)) {
    if (value === undefined || value === null) continue;
    switch (key) {
      case 'namespaces':
        for (const [index, namespace] of (linux.namespaces ?? []).entries()) {
          const note = NAMESPACE_NOTES[namespace.type];
          if (namespace.type === 'user') {
            throw new UnsupportedField(
              `linux.namespaces[${index}]`,
              'user namespaces are not supported',
            );
          }
          if (note === undefined) {
            throw new UnsupportedField(
              `linux.namespaces[${index}].type`,
              `unknown namespace '${namespace.type}'`,
            );
          }
          plan.warnings.push(
            `linux.namespaces[${index}]: ${note}${namespace.path ? ` (${namespace.path} is not joined)` : ''}`,
          );
        }
        break;
      case 'resources':
        addResources(linux.resources ?? {}, draft, plan);
        break;
      case 'seccomp':
        plan.seccomp = linux.seccomp;
        break;
      case 'uidMappings':
      case 'gidMappings':
        if (Array.isArray(value) && value.length > 0)
          throw new UnsupportedField(`linux.${key}`, 'user namespaces are not supported');
        break;
      case 'sysctl':
        for (const [name, setting] of Object.entries(value as Record<string, string>)) {
          if (!WIDENING_SYSCTLS.has(name)) {
            throw new UnsupportedField(
              'linux.sysctl',
              `setting sysctls is not supported (${name})`,
            );
          }
          plan.warnings.push(
            `linux.sysctl: ${name} = ${setting} not set: the container has no network namespace of its own, the host's setting applies`,
          );
        }
        break;
      case 'devices':
        if (Array.isArray(value) && value.length > 0)
          throw new UnsupportedField('linux.devices', 'creating device nodes is not supported');
        break;
      case 'cgroupsPath':
        plan.warnings.push(
          'linux.cgroupsPath: no cgroup is created; limits are enforced by the supervisor',
        );
        break;
      case 'maskedPaths':
      case 'readonlyPaths':
        // Outside the root and the mounts nothing is reachable, and the
        // virtual /proc shows none of /proc/kcore, /proc/keys, /proc/sys…
        plan.warnings.push(
          `linux.${key}: left to the virtual /proc and the root (nothing of the host is reachable there)`,
        );
        break;
      case 'mountLabel':
      case 'rootfsPropagation':
      case 'personality':
      case 'intelRdt':
        plan.warnings.push(`linux.${key}: not applied`);
        break;
      default:
        throw new UnsupportedField(`linux.${key}`, 'not supported');
    }
  }
}

function mapAnnotations(config: OciConfig, draft: PolicyDraft): void {
  for (const [key, text] of Object.entries(config.annotations ?? {})) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    const name = key.slice(ANNOTATION_PREFIX.length) as FieldName;
    if (!ANNOTATION_FIELDS.includes(name) || !FIELD_NAMES.includes(name)) {
      throw new UnsupportedField(
        `annotations.${key}`,
        `not a field an annotation may set (${ANNOTATION_FIELDS.join(', ')})`,
      );
    }
    // A list field takes several values, one per line or comma-separated as its flag does.
    const values = Array.isArray(FIELDS[name].default)
      ? text.split('\n').filter((line) => line.trim() !== '')
      : [text];
    for (const value of values) {
      const parsed = fromText(name, value.trim());
      const list = Array.isArray(FIELDS[name].default) && !Array.isArray(parsed);
      draft.add(name, list ? [parsed] : parsed, origin(`annotations.${key}`, value));
    }
  }
}

/** Turns a bundle's config.json into what the supervisor runs. */
export function mapConfig(config: OciConfig, options: MappingOptions): ContainerPlan {
  if (typeof config !== 'object' || config === null)
    throw new UnsupportedField('(config)', 'expected an object');
  if (typeof config.ociVersion !== 'string' || !config.ociVersion.startsWith('1.')) {
    throw new UnsupportedField('ociVersion', `'${config.ociVersion}' is not a 1.x version`);
  }
  const process = config.process;
  if (process === undefined) throw new UnsupportedField('process', 'missing');
  const draft = new PolicyDraft();
  const plan: ContainerPlan = {
    draft,
    argv: [],
    terminal: process.terminal === true,
    consoleSize: process.consoleSize
      ? { rows: process.consoleSize.height, columns: process.consoleSize.width }
      : null,
    rlimits: [],
    oomScoreAdj: typeof process.oomScoreAdj === 'number' ? process.oomScoreAdj : null,
    user: null,
    umask: null,
    scratch: [],
    seccomp: undefined,
    warnings: [],
  };
  for (const key of Object.keys(config)) {
    if (
      ![
        'ociVersion',
        'root',
        'mounts',
        'process',
        'hostname',
        'domainname',
        'hooks',
        'annotations',
        'linux',
      ].includes(key)
    ) {
      throw new UnsupportedField(key, 'not supported on Linux by this runtime');
    }
  }

  if (config.root === undefined || typeof config.root.path !== 'string') {
    throw new UnsupportedField('root.path', 'missing');
  }
  const root = resolve(options.bundle, config.root.path);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UnsupportedField('root.path', `${root} is not a directory`);
  }
  const readOnly = config.root.readonly === true;
  if (options.chroot) {
    draft.add('chroot' as FieldName, root, origin('root.path', config.root.path));
    if (!readOnly) draft.add('fsWrite', ['/'], origin('root.readonly', 'false'));
    else draft.add('fsRead', ['/'], origin('root.readonly', 'true'));
    // A default device of every container (runtime-config-linux.md, "Default
    // Devices"). It opens the opener's own controlling terminal (ENXIO
    // without one), so an `exec` with a terminal has it whatever the first
    // process had; Sandlock's `devices` grants it only to a supervisor with
    // a terminal. Made in the root as runc makes it; a read-only root
    // without one has it only where the image made it.
    let tty = '/dev/tty';
    try {
      tty = options.mountPoint?.(root, tty, 'file') ?? tty;
    } catch {}
    draft.add('fsMount' as FieldName, [`${tty}:/dev/tty`], origin('root.path', '/dev/tty'));
  } else {
    draft.add(readOnly ? 'fsRead' : 'fsWrite', [root], origin('root.path', config.root.path));
  }

  const args = process.args;
  if (process.commandLine !== undefined)
    throw new UnsupportedField('process.commandLine', 'Windows only');
  if (!Array.isArray(args) || args.length === 0 || typeof args[0] !== 'string' || args[0] === '') {
    throw new UnsupportedField('process.args', 'expected a non-empty list of strings');
  }
  const env = envOf(process.env);
  draft.add('cleanEnv', true, origin('process.env', ''));
  draft.add('env', env, origin('process.env', ''));
  const cwd = process.cwd ?? '/';
  if (!isAbsolute(cwd)) throw new UnsupportedField('process.cwd', `'${cwd}' is not absolute`);
  if (options.chroot) {
    plan.argv = [...args];
    draft.add('cwd', cwd, origin('process.cwd', cwd));
  } else {
    const program = commandInRoot(root, args[0]!, cwd, env.PATH ?? '/usr/local/bin:/usr/bin:/bin');
    plan.argv = [program, ...args.slice(1)];
    const hostCwd = inRoot(root, cwd);
    if (existsSync(hostCwd)) draft.add('cwd', hostCwd, origin('process.cwd', cwd));
    else throw new UnsupportedField('process.cwd', `${cwd} does not exist in the root`);
  }
  mapUser(process, plan);
  mapRlimits(process, draft, plan);
  mapCapabilities(process, plan);
  if (process.noNewPrivileges === false) {
    plan.warnings.push(
      'process.noNewPrivileges: false, but the sandbox always runs with no_new_privs',
    );
  }
  for (const key of [
    'apparmorProfile',
    'selinuxLabel',
    'ioPriority',
    'scheduler',
    'execCPUAffinity',
  ]) {
    if (process[key] !== undefined && process[key] !== '')
      plan.warnings.push(`process.${key}: not applied`);
  }
  if (typeof config.hostname === 'string' && config.hostname !== '') {
    draft.add('hostname', config.hostname, origin('hostname', config.hostname));
  }
  if (typeof config.domainname === 'string' && config.domainname !== '') {
    plan.warnings.push('domainname: not applied');
  }
  mapMounts(config, root, draft, plan, options);
  mapLinux(config, draft, plan);
  mapAnnotations(config, draft);
  return plan;
}
