import { existsSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import { RLIMIT, type RlimitResource } from '@sandlock/sys';
import { OciError } from './errors.js';
import { envOf, UnsupportedField } from './mapping.js';
import type { OciProcess } from './spec.js';

/** What `exec`'s process.json asks, as SandboxProcess.join takes it (stdio aside). */
export interface ExecPlan {
  path: string;
  argv: string[];
  env: string[];
  cwd: string;
  umask?: number;
  rlimits: { resource: RlimitResource; soft: bigint; hard: bigint }[];
  terminal: boolean;
}

/** The container's user, as its workload runs (SpawnOptions.user, or this runtime's own ids). */
export interface ContainerUser {
  uid: number;
  gid: number;
  groups: number[];
}

function refuse(field: string, why: string): never {
  throw new OciError(`process.json: ${field}: ${why}`);
}

/**
 * Finds `command` as execvp would with PATH, looking in the container's root
 * (host paths, for the choice only: the exec itself happens inside the
 * sandbox, where the emulated root resolves it).
 */
function commandPath(rootfs: string, command: string, cwd: string, path: string): string {
  if (command.includes('/')) return isAbsolute(command) ? command : posix.join(cwd, command);
  for (const dir of path.split(':')) {
    if (dir === '') continue;
    if (existsSync(join(rootfs, dir, command))) return posix.join(dir, command);
  }
  return refuse('args[0]', `'${command}' is not found in the PATH of the container`);
}

/**
 * Maps the process.json of `exec`. The process joins the running container
 * (the same sandbox: Landlock domains, filters, supervisor, limits), so what
 * was fixed when the container started cannot change: its user (no process
 * of the container holds a capability to switch), and limits only as far as
 * lowering them goes.
 */
export function planExec(process: OciProcess, rootfs: string, user: ContainerUser): ExecPlan {
  if (typeof process !== 'object' || process === null) refuse('(process)', 'expected an object');
  const args = process.args;
  if (!Array.isArray(args) || args.length === 0 || args.some((arg) => typeof arg !== 'string')) {
    refuse('args', 'expected a non-empty list of strings');
  }
  let env: Record<string, string>;
  try {
    env = envOf(process.env);
  } catch (error) {
    if (error instanceof UnsupportedField)
      refuse(error.field.replace(/^process\./, ''), 'not NAME=VALUE');
    throw error;
  }
  const cwd = process.cwd ?? '/';
  if (!isAbsolute(cwd)) refuse('cwd', `'${cwd}' is not absolute`);
  const asked = process.user ?? { uid: 0, gid: 0 };
  const groups = [...new Set(asked.additionalGids ?? [])].sort();
  const own = [...new Set(user.groups)].sort();
  if (
    asked.uid !== user.uid ||
    asked.gid !== user.gid ||
    groups.length !== own.length ||
    groups.some((gid, index) => gid !== own[index])
  ) {
    refuse(
      'user',
      `${asked.uid}:${asked.gid} (groups ${groups.join(',') || 'none'}): the process joins the container, whose processes run as ${user.uid}:${user.gid} (groups ${own.join(',') || 'none'}) with no capability to switch`,
    );
  }
  if (
    asked.umask !== undefined &&
    !(Number.isInteger(asked.umask) && asked.umask >= 0 && asked.umask <= 0o777)
  ) {
    refuse('user.umask', `${asked.umask} is not a umask (0 to 0o777)`);
  }
  const rlimits: ExecPlan['rlimits'] = [];
  for (const [index, limit] of (process.rlimits ?? []).entries()) {
    const name = String(limit.type).replace(/^RLIMIT_/, '') as RlimitResource;
    if (!(name in RLIMIT)) refuse(`rlimits[${index}].type`, `unknown limit '${limit.type}'`);
    if (limit.soft > limit.hard) refuse(`rlimits[${index}]`, 'soft is above hard');
    rlimits.push({ resource: name, soft: BigInt(limit.soft), hard: BigInt(limit.hard) });
  }
  const argv = args as string[];
  return {
    path: commandPath(rootfs, argv[0]!, cwd, env.PATH ?? '/usr/local/bin:/usr/bin:/bin'),
    argv,
    env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    cwd,
    ...(asked.umask !== undefined ? { umask: asked.umask } : {}),
    rlimits,
    terminal: process.terminal === true,
  };
}
