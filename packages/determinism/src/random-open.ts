// Recognising an open of /dev/urandom or /dev/random, by any path: absolute,
// relative to the cwd or a dirfd, through a symlink (/proc/<pid>/fd/N of an
// open random device, a link in /tmp) or a directory symlink. The test is
// the device itself, not the name: a character device 1:8 (random) or 1:9
// (urandom), see Documentation/admin-guide/devices.txt. And of the two
// random sysctl files, /proc/sys/kernel/random/uuid (a new random UUID at
// each read) and boot_id (one per boot), by their canonical paths.
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { HandlerContext } from '@sandlock/dispatch';
import { hostArch, isSymlink, openFlags } from '@sandlock/sys';

const O = openFlags(hostArch());
const ACCESS_MODE = 3;
const OPEN_HOW_SIZE_VER0 = 24n;
const MEM_MAJOR = 1;
const RANDOM_MINORS: ReadonlySet<number> = new Set([8, 9]);
const DEVICE_NAMES: ReadonlySet<string> = new Set(['random', 'urandom']);

/** The random sysctl files (drivers/char/random.c, proc_do_uuid), by their last component. */
export const SYSCTL_FILES = {
  uuid: '/proc/sys/kernel/random/uuid',
  boot_id: '/proc/sys/kernel/random/boot_id',
} as const;
export type SysctlFile = keyof typeof SYSCTL_FILES;

/** An open of one of the random sysctl files. */
export interface SysctlOpen {
  readonly file: SysctlFile;
  readonly cloexec: boolean;
}

/** The sysctl file a path names once made canonical, if any. */
function sysctlFile(canonical: string): SysctlFile | null {
  for (const [file, path] of Object.entries(SYSCTL_FILES)) {
    if (canonical === path) return file as SysctlFile;
  }
  return null;
}

export interface DeviceOpen {
  /** O_RDWR (else O_RDONLY). */
  readonly readWrite: boolean;
  readonly cloexec: boolean;
  readonly nonblock: boolean;
}

/** major/minor of a dev_t as glibc's gnu_dev_major/gnu_dev_minor decode it. */
function isRandomDevice(rdev: number): boolean {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  return major === MEM_MAJOR && RANDOM_MINORS.has(minor);
}

function openFlagsOf(ctx: HandlerContext): number | null {
  if (ctx.syscall !== 'openat2') return Number(BigInt(ctx.arg('flags')) & 0xffffffffn);
  const { how, size } = ctx.argsOf('openat2');
  // Too small: the kernel refuses it (EINVAL). RESOLVE_* flags can make the
  // kernel refuse the path (RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS…): let it.
  if (BigInt(size) < OPEN_HOW_SIZE_VER0) return null;
  const fields = ctx.read(BigInt(how), 24);
  const flags = fields.readBigUInt64LE(0);
  if (flags > 0xffffffffn || fields.readBigUInt64LE(16) !== 0n) return null;
  return Number(flags);
}

/**
 * The open of a random device or sysctl file this open call (open, openat,
 * openat2) makes, or null when it is anything else, or an open the kernel
 * would refuse or that reads nothing: write-only, O_PATH, O_DIRECTORY,
 * O_CREAT|O_EXCL, O_NOFOLLOW on a symlink. Those continue (writing to
 * /dev/urandom is harmless: random(4)); so do read-write opens of the
 * sysctl files (read-only files: the kernel refuses them).
 */
export function randomOpen(ctx: HandlerContext): DeviceOpen | SysctlOpen | null {
  const flags = openFlagsOf(ctx);
  if (flags === null) return null;
  const access = flags & ACCESS_MODE;
  if (access === O.O_WRONLY || access === ACCESS_MODE) return null;
  if ((flags & (O.O_PATH | O.O_DIRECTORY)) !== 0) return null;
  if ((flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0) return null;
  const lexical = ctx.resolvePath();
  // /proc/self would be the supervisor's: name the caller's thread instead.
  const own = lexical
    .replace(/^\/proc\/thread-self(?=\/|$)/, `/proc/${ctx.pid}/task/${ctx.pid}`)
    .replace(/^\/proc\/self(?=\/|$)/, `/proc/${ctx.pid}`);
  const name = posix.basename(own);
  const cloexec = (flags & O.O_CLOEXEC) !== 0;
  let found: DeviceOpen | SysctlOpen | null = null;
  // Only a name of a device or a sysctl file, or a symlink, can be one (and
  // stat of an arbitrary path may be slow: an automount, a FUSE file).
  const known = DEVICE_NAMES.has(name) || name in SYSCTL_FILES;
  if (!known && isSymlink(own) !== true) return null;
  try {
    const link = lstatSync(own);
    const symlink = link.isSymbolicLink();
    if (symlink && (flags & O.O_NOFOLLOW) !== 0) return null; // ELOOP
    if (symlink || name in SYSCTL_FILES) {
      const file = sysctlFile(realpathSync(own));
      if (file !== null) found = access === O.O_RDWR ? null : { file, cloexec };
    }
    if (found === null && (symlink || DEVICE_NAMES.has(name))) {
      const target = symlink ? statSync(own) : link;
      if (target.isCharacterDevice() && isRandomDevice(target.rdev)) {
        found = {
          readWrite: access === O.O_RDWR,
          cloexec,
          nonblock: (flags & O.O_NONBLOCK) !== 0,
        };
      }
    }
  } catch {
    return null; // does not exist (or not for us to see): the kernel answers
  }
  // The path was looked up in the caller's /proc entries: still the caller's?
  return found !== null && ctx.valid() ? found : null;
}
