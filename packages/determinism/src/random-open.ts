// Recognising an open of /dev/urandom or /dev/random, by any path: absolute,
// relative to the cwd or a dirfd, through a symlink (/proc/<pid>/fd/N of an
// open random device, a link in /tmp) or a directory symlink. The test is
// the device itself, not the name: a character device 1:8 (random) or 1:9
// (urandom), see Documentation/admin-guide/devices.txt. And of the two
// random sysctl files, /proc/sys/kernel/random/uuid (a new random UUID at
// each read) and boot_id (one per boot), by their canonical paths.
import { fstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { HandlerContext } from '@sandlock/dispatch';
import {
  AT_FDCWD,
  close,
  encodeOpenHow,
  hostArch,
  isSymlink,
  OPEN_HOW_SIZE,
  openFlags,
  PATH_MAX,
  RESOLVE_CACHED,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  readCStringBytes,
  trySyscall,
  type Walked,
} from '@sandlock/sys';

const O = openFlags(hostArch());
const ACCESS_MODE = 3;
/** Bytes of a path the kernel accepts, without its NUL (PATH_MAX counts it). */
const PATH_MAX_BYTES = PATH_MAX - 1;
/** The largest open_how the kernel reads (PAGE_SIZE on every page size: larger is E2BIG). */
const OPEN_HOW_MAX = 4096;
/** Mode bits open_how.mode may hold (S_IALLUGO). */
const MODE_BITS = 0o7777n;
const NUL = Buffer.alloc(1);
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

/** What an open call asks for: its flags and, for openat2, its RESOLVE_* flags. */
interface OpenRequest {
  readonly flags: number;
  readonly resolve: bigint;
}

/**
 * The flags of an open call, or null when the kernel refuses its open_how
 * (openat2(2), copy_struct_from_user, build_open_flags): too small (EINVAL),
 * larger than a page or with non-zero bytes past the 24 it knows (E2BIG),
 * flags beyond 32 bits or a mode without O_CREAT (EINVAL). Those continue:
 * the kernel gives the caller its error.
 */
function openRequestOf(ctx: HandlerContext): OpenRequest | null {
  if (ctx.syscall !== 'openat2') {
    return { flags: Number(BigInt(ctx.arg('flags')) & 0xffffffffn), resolve: 0n };
  }
  const { how, size } = ctx.argsOf('openat2');
  const length = BigInt(size);
  if (length < BigInt(OPEN_HOW_SIZE) || length > BigInt(OPEN_HOW_MAX)) return null;
  const fields = ctx.read(BigInt(how), Number(length));
  if (fields.subarray(OPEN_HOW_SIZE).some((byte) => byte !== 0)) return null;
  const flags = fields.readBigUInt64LE(0);
  const mode = fields.readBigUInt64LE(8);
  const resolve = fields.readBigUInt64LE(16);
  if (flags > 0xffffffffn) return null;
  const creates = (Number(flags) & O.O_CREAT) !== 0; // O_TMPFILE has O_DIRECTORY: not served
  if ((mode !== 0n && !creates) || (mode & ~MODE_BITS) !== 0n) return null;
  return { flags: Number(flags), resolve };
}

/** An open of a random device, with the caller's flags. */
function deviceOpen(flags: number): DeviceOpen {
  return {
    readWrite: (flags & ACCESS_MODE) === O.O_RDWR,
    cloexec: (flags & O.O_CLOEXEC) !== 0,
    nonblock: (flags & O.O_NONBLOCK) !== 0,
  };
}

/** A read-only open of a random sysctl file, with the caller's flags (null for O_RDWR). */
function sysctlOpen(flags: number, file: SysctlFile): SysctlOpen | null {
  // Read-only files: the kernel refuses them for writing.
  if ((flags & ACCESS_MODE) === O.O_RDWR) return null;
  return { file, cloexec: (flags & O.O_CLOEXEC) !== 0 };
}

/**
 * An openat2 with RESOLVE_* flags, decided on the file the kernel would open
 * for the caller: the supervisor looks the path up itself, with openat2 and
 * the caller's resolve flags, from a duplicate of the caller's dirfd (its cwd
 * for AT_FDCWD), as O_PATH; the path is read once, and that copy is both
 * looked up here and what the decision is about. A lookup that fails
 * continues: the kernel gives the caller the same error (EXDEV, ELOOP,
 * EAGAIN…). What it finds is a random device by its fstat, a sysctl file
 * by its canonical path (readlink of /proc/self/fd/N).
 */
function resolvedOpen(
  ctx: HandlerContext,
  flags: number,
  resolve: bigint,
): DeviceOpen | SysctlOpen | null {
  // RESOLVE_CACHED refuses opens that may create or truncate (EAGAIN).
  if ((resolve & BigInt(RESOLVE_CACHED)) !== 0n && (flags & (O.O_CREAT | O.O_TRUNC)) !== 0) {
    return null;
  }
  const { dirfd, pathname } = ctx.argsOf('openat2');
  let path: Buffer;
  try {
    path = readCStringBytes(ctx.pid, BigInt(pathname), PATH_MAX_BYTES);
  } catch {
    return null; // EFAULT, ENAMETOOLONG: the kernel answers
  }
  if (!ctx.valid()) return null; // the bytes may be another process's
  const inRoot = (resolve & BigInt(RESOLVE_IN_ROOT)) !== 0n;
  const absolute = path[0] === 0x2f;
  if ((resolve & ~WALKABLE) === 0n) {
    // Walked as the kernel walks it for the caller (its /proc/self), from
    // the dirfd as the root with RESOLVE_IN_ROOT, following no magic link
    // with RESOLVE_NO_MAGICLINKS (the kernel's ELOOP: continued).
    let walked: Walked;
    try {
      walked = ctx.walk(path, {
        dirfd,
        followLast: (flags & O.O_NOFOLLOW) === 0,
        inRoot,
        ...((resolve & BigInt(RESOLVE_NO_MAGICLINKS)) !== 0n ? { followMagic: () => false } : {}),
      });
    } catch {
      return null; // EBADF, a caller gone: the kernel answers
    }
    try {
      return walked.errno === 0 && walked.kind !== 'symlink' ? decideOn(walked.fd, flags) : null;
    } finally {
      walked.close();
    }
  }
  // A lookup here would follow /proc/self and /proc/thread-self to this
  // process: with the other flags, a path that names them is left to the
  // kernel (not decided on a lookup that is not the caller's).
  if (/(^|\/)(self|thread-self)(\/|$)/.test(path.toString('latin1'))) return null;
  // The kernel ignores the dirfd of an absolute path, except under RESOLVE_IN_ROOT.
  let base = AT_FDCWD;
  try {
    if (!absolute || inRoot) base = ctx.openStart(dirfd);
  } catch {
    return null; // EBADF, a caller gone: the kernel answers
  }
  let fd: number;
  try {
    // The cwd was looked up in the caller's /proc entries: still the caller's?
    if (!ctx.valid()) return null;
    const how = encodeOpenHow({
      flags: BigInt(O.O_PATH | O.O_CLOEXEC | (flags & O.O_NOFOLLOW)),
      resolve,
    });
    fd = trySyscall('openat2', base, Buffer.concat([path, NUL]), how, OPEN_HOW_SIZE);
  } finally {
    if (base !== AT_FDCWD) close(base);
  }
  if (fd < 0) return null;
  try {
    return decideOn(fd, flags);
  } finally {
    close(fd);
  }
}

/** The RESOLVE_* flags a walk in the caller's view honours. */
const WALKABLE = BigInt(RESOLVE_CACHED | RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);

/** What an open of the object behind `fd` (O_PATH) is: a random device, a random sysctl file, or neither. */
function decideOn(fd: number, flags: number): DeviceOpen | SysctlOpen | null {
  try {
    const stat = fstatSync(fd);
    if (stat.isCharacterDevice() && isRandomDevice(stat.rdev)) return deviceOpen(flags);
    if (!stat.isFile()) return null;
    const file = sysctlFile(readlinkSync(`/proc/self/fd/${fd}`));
    return file === null ? null : sysctlOpen(flags, file);
  } catch {
    return null;
  }
}

/**
 * The open of a random device or sysctl file this open call (open, openat,
 * openat2) makes, or null when it is anything else, or an open the kernel
 * would refuse or that reads nothing: write-only, O_PATH, O_DIRECTORY,
 * O_CREAT|O_EXCL, O_NOFOLLOW on a symlink. Those continue (writing to
 * /dev/urandom is harmless: random(4)); so do read-write opens of the
 * sysctl files (read-only files: the kernel refuses them). An openat2 with
 * RESOLVE_* flags is decided on the file the kernel would open (resolvedOpen).
 */
export function randomOpen(ctx: HandlerContext): DeviceOpen | SysctlOpen | null {
  const request = openRequestOf(ctx);
  if (request === null) return null;
  const { flags } = request;
  const access = flags & ACCESS_MODE;
  if (access === O.O_WRONLY || access === ACCESS_MODE) return null;
  if ((flags & (O.O_PATH | O.O_DIRECTORY)) !== 0) return null;
  if ((flags & O.O_CREAT) !== 0 && (flags & O.O_EXCL) !== 0) return null;
  if (request.resolve !== 0n) {
    const found = resolvedOpen(ctx, flags, request.resolve);
    return found !== null && ctx.valid() ? found : null;
  }
  const lexical = ctx.resolvePath();
  const name = posix.basename(lexical);
  // Only a name of a device or a sysctl file, a symlink, or a path through
  // /proc (/proc/self/fd/N) can be one (and a lookup of an arbitrary path may
  // be slow: an automount, a FUSE file).
  const known = DEVICE_NAMES.has(name) || name in SYSCTL_FILES;
  if (!known && !lexical.startsWith('/proc/') && isSymlink(lexical) !== true) return null;
  // Resolved as the kernel resolves it for the caller (its /proc/self), and
  // decided on what it names.
  const dirfd = ctx.syscall === 'open' ? AT_FDCWD : Number(BigInt.asIntN(32, ctx.args[0] ?? 0n));
  let walked: Walked;
  try {
    walked = ctx.walk(readCStringBytes(ctx.pid, BigInt(ctx.arg('pathname')), PATH_MAX_BYTES), {
      dirfd,
      followLast: (flags & O.O_NOFOLLOW) === 0,
    });
  } catch {
    return null; // EFAULT, EBADF, a caller gone: the kernel answers
  }
  let found: DeviceOpen | SysctlOpen | null;
  try {
    // The kernel's error, or ELOOP (O_NOFOLLOW on a symlink): the kernel answers.
    found = walked.errno === 0 && walked.kind !== 'symlink' ? decideOn(walked.fd, flags) : null;
  } finally {
    walked.close();
  }
  // The path was read from the caller, and its /proc entries looked up: still the caller?
  return found !== null && ctx.valid() ? found : null;
}
