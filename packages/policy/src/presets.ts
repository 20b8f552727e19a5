import { existsSync, readdirSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Policy } from './fields.js';

/** What `system` lets the sandbox read and execute: the programs and libraries. */
export const SYSTEM_PROGRAMS: readonly string[] = [
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
];

/**
 * What `system` lets the sandbox read of /etc: what programs read to run (the
 * loader's cache, users and groups by name, name resolution, time zone,
 * locales, certificates, interpreters' site files), and not the secrets
 * (`shadow`, `gshadow`, `sudoers`, `ssh/` host keys, `ssl/private`), the
 * machine's identity (`machine-id`) or service configuration.
 * `python3*` stands for every /etc/python3.N.
 */
export const SYSTEM_ETC: readonly string[] = [
  '/etc/alternatives',
  '/etc/bash.bashrc',
  '/etc/ca-certificates',
  '/etc/ca-certificates.conf',
  '/etc/debian_version',
  '/etc/environment',
  '/etc/fonts',
  '/etc/gai.conf',
  '/etc/group',
  '/etc/host.conf',
  '/etc/hostname',
  '/etc/hosts',
  '/etc/inputrc',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/locale.alias',
  '/etc/locale.conf',
  '/etc/localtime',
  '/etc/lsb-release',
  '/etc/magic',
  '/etc/magic.mime',
  '/etc/mime.types',
  '/etc/mtab',
  '/etc/networks',
  '/etc/nsswitch.conf',
  '/etc/os-release',
  '/etc/passwd',
  '/etc/perl',
  '/etc/profile',
  '/etc/profile.d',
  '/etc/protocols',
  '/etc/python3*',
  '/etc/resolv.conf',
  '/etc/services',
  '/etc/shells',
  '/etc/ssl/certs',
  '/etc/ssl/openssl.cnf',
  '/etc/terminfo',
  '/etc/timezone',
  '/etc/xdg',
];

/** What `devices` lets the sandbox read and write: device nodes that reach nothing. */
export const DEVICES: readonly string[] = [
  '/dev/null',
  '/dev/zero',
  '/dev/full',
  '/dev/random',
  '/dev/urandom',
];

/** `/dev/tty` too when this process has a terminal on a standard descriptor. */
const TERMINAL = '/dev/tty';

/** The paths of a list that exist here, `python3*`-style names expanded. */
function present(paths: readonly string[]): string[] {
  return paths.flatMap((path) => {
    if (!path.endsWith('*')) return existsSync(path) ? [path] : [];
    const directory = path.slice(0, path.lastIndexOf('/'));
    const prefix = path.slice(directory.length + 1, -1);
    try {
      return readdirSync(directory)
        .filter((name) => name.startsWith(prefix))
        .sort()
        .map((name) => `${directory}/${name}`);
    } catch {
      return [];
    }
  });
}

/**
 * The device nodes `devices` grants (read and write of the node itself), and
 * the terminal when this process has one on a standard descriptor. They are
 * not written paths: metadata changes and creation stay refused there.
 */
export function devicePaths(policy: Policy): string[] {
  if (!policy.devices) return [];
  return present([...DEVICES, ...([0, 1, 2].some((fd) => isatty(fd)) ? [TERMINAL] : [])]);
}

/**
 * The policy with `system` as paths: its programs and /etc files added to
 * `fsRead`, and `system` off. What the Landlock rules, the handler modules
 * and nested sandboxes work from.
 */
export function expandPresets(policy: Policy): Policy {
  if (!policy.system) return policy;
  const reads = present([...SYSTEM_PROGRAMS, ...SYSTEM_ETC]);
  return { ...policy, fsRead: [...new Set([...policy.fsRead, ...reads])], system: false };
}
