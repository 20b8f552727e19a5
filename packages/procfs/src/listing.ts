// Directory listings served by the supervisor: the records of getdents64 and
// the legacy getdents, and one listing per (sandbox, thread, fd number)
// cached while it is read. Shared by the deterministic-dirs module (every
// directory, sorted) and the proc-pids module (/proc without the processes
// outside the sandbox). Worker thread only; no side effects at import.
//
// How a listing is served. The caller's descriptor is duplicated
// (pidfd_getfd): the duplicate shares the caller's open file description,
// hence its file offset. The directory is *read* through a second, separate
// open of that directory (`/proc/self/fd/<dup>` with O_DIRECTORY): a new
// open file description with its own offset at 0, so reading the whole
// directory never moves the caller's offset (saving and restoring the shared
// offset instead would race with the caller's other threads, and reading
// through it would disturb the file system's own cursor). The entries are
// prepared (sorted, filtered) and cached. The caller's offset is then
// *ours*: after each call it is set (lseek on the duplicate, so on the
// caller's description) to the index of the next entry to return, and each
// record's d_off is the index after it. So:
//
// - offset 0 (a fresh open, rewinddir, lseek(fd, 0)) reads the directory
//   again: new entries show, and an fd number reused for another directory
//   never sees the old one's listing (sandlock 0.6's caches were never
//   invalidated, spec §7.40);
// - offset k > 0 continues at entry k of the cached listing when the cache
//   is for this (thread, fd number) and the same directory (dev and inode
//   checked by fstat at every call); telldir/seekdir work, since telldir's
//   values are our d_off;
// - offset k > 0 without such a cache (another process or fd number sharing
//   the description after fork or dup, another thread): the directory is
//   read again and served from entry k, when k is within it; else (an offset
//   the kernel set before the module was on: an inherited descriptor) the
//   call continues and the kernel answers.
//
// A cache entry is dropped when its listing is read to the end, when its
// process exits, and when the sandbox ends.
import type { BigIntStats } from 'node:fs';
import {
  type Answer,
  answer,
  CallError,
  type HandlerContext,
  threadGroupOf,
} from '@sandlock/dispatch/module';
import {
  close,
  ERRNO,
  F_GETFL,
  hostArch,
  openAt,
  openFlags,
  SEEK_CUR,
  SEEK_SET,
  SysError,
  trySyscall,
} from '@sandlock/sys';

/** One directory entry as the kernel listed it. */
export interface DirEntry {
  readonly name: Buffer;
  readonly ino: bigint;
  readonly type: number;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/**
 * The entries in the order served: `.` and `..` first (where the kernel
 * lists them: every Linux file system does), then every other name sorted
 * bytewise.
 */
export function sortEntries(entries: readonly DirEntry[]): DirEntry[] {
  const dots = entries.filter((entry) => entry.name.equals(DOT) || entry.name.equals(DOTDOT));
  dots.sort((a, b) => a.name.length - b.name.length);
  const rest = entries.filter((entry) => !entry.name.equals(DOT) && !entry.name.equals(DOTDOT));
  rest.sort((a, b) => Buffer.compare(a.name, b.name));
  return [...dots, ...rest];
}

/** The record formats: `linux_dirent64` (getdents64) and `linux_dirent` (legacy getdents, 64-bit). */
export type DirentFormat = 'dirent64' | 'dirent';

/** A record's length: the kernel's `ALIGN(offsetof(d_name) + namelen + 1 or 2, sizeof(long))`. */
export function recordLength(format: DirentFormat, nameLength: number): number {
  // dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, name, NUL.
  // dirent: d_ino 8, d_off 8, d_reclen 2, name, NUL, (pad), d_type last byte.
  const bytes = format === 'dirent64' ? 19 + nameLength + 1 : 18 + nameLength + 2;
  return (bytes + 7) & ~7;
}

/**
 * The records of `entries[from…]` that fit in `count` bytes, whole, with
 * d_off = the index after each entry. Returns the bytes and the index after
 * the last record; none fit: an empty buffer and `from`.
 */
export function packRecords(
  format: DirentFormat,
  entries: readonly DirEntry[],
  from: number,
  count: number,
): { bytes: Buffer; next: number } {
  let size = 0;
  let next = from;
  while (next < entries.length) {
    const length = recordLength(format, entries[next]!.name.length);
    if (size + length > count) break;
    size += length;
    next++;
  }
  const bytes = Buffer.alloc(size);
  let at = 0;
  for (let index = from; index < next; index++) {
    const entry = entries[index]!;
    const length = recordLength(format, entry.name.length);
    bytes.writeBigUInt64LE(entry.ino, at);
    bytes.writeBigInt64LE(BigInt(index + 1), at + 8);
    bytes.writeUInt16LE(length, at + 16);
    if (format === 'dirent64') {
      bytes.writeUInt8(entry.type, at + 18);
      entry.name.copy(bytes, at + 19);
    } else {
      entry.name.copy(bytes, at + 18);
      bytes.writeUInt8(entry.type, at + length - 1);
    }
    at += length;
  }
  return { bytes, next };
}

/** Parses the `linux_dirent64` records a real getdents64 returned. */
export function parseDirent64(buffer: Buffer, length: number): DirEntry[] {
  const entries: DirEntry[] = [];
  let at = 0;
  while (at + 19 <= length) {
    const reclen = buffer.readUInt16LE(at + 16);
    if (reclen === 0) break;
    const nameStart = at + 19;
    const nul = buffer.indexOf(0, nameStart);
    const nameEnd = nul < 0 || nul > at + reclen ? at + reclen : nul;
    entries.push({
      ino: buffer.readBigUInt64LE(at),
      type: buffer.readUInt8(at + 18),
      name: Buffer.from(buffer.subarray(nameStart, nameEnd)),
    });
    at += reclen;
  }
  return entries;
}

const O = openFlags(hostArch());
const { EINVAL, EFAULT } = ERRNO;
/** Cache entries kept per worker at most (the oldest go first): threads' entries, abandoned listings. */
const MAX_CACHED = 1024;

/**
 * Every entry of the directory a (duplicated) descriptor refers to, read
 * through a separate open of it; or -errno.
 */
function readDirectory(dup: number): DirEntry[] | number {
  let fd: number;
  try {
    fd = openAt(`/proc/self/fd/${dup}`, O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC);
  } catch (error) {
    return error instanceof SysError ? -error.errno : -EINVAL;
  }
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const entries: DirEntry[] = [];
    for (;;) {
      const length = trySyscall('getdents64', fd, buffer, buffer.length);
      if (length < 0) return length;
      if (length === 0) return entries;
      entries.push(...parseDirent64(buffer, length));
    }
  } finally {
    close(fd);
  }
}

interface Listing {
  readonly sessionId: number;
  /** The process (thread group) of the caller, for processExit. */
  readonly tgid: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly entries: readonly DirEntry[];
}

/** A CallError(EFAULT) of ctx.write. */
function isFault(error: unknown): boolean {
  return error instanceof CallError && error.errno === EFAULT;
}

/**
 * Writes packed records one by one until one faults: how many whole records
 * (and bytes) reached the caller.
 */
function writeWholeRecords(
  ctx: HandlerContext,
  address: bigint,
  bytes: Buffer,
): { records: number; bytes: number } {
  let at = 0;
  let records = 0;
  while (at < bytes.length) {
    const length = bytes.readUInt16LE(at + 16); // d_reclen, in both formats
    try {
      ctx.write(address + BigInt(at), bytes.subarray(at, at + length));
    } catch {
      break;
    }
    at += length;
    records++;
  }
  return { records, bytes: at };
}

/** What a listing module tells the server: the caller's fd and its duplicate (owned by the caller of serve). */
export interface ListingCall {
  readonly fd: number;
  readonly dup: number;
  readonly stat: BigIntStats;
}

/**
 * The cached listings of one module (a worker's). `prepare` turns the
 * kernel's entries into the ones served (sorted, filtered); it runs each
 * time the directory is read again.
 */
export class ListingCache {
  private readonly listings = new Map<string, Listing>();

  /** A descriptor's open flags, or null for an O_PATH one (the kernel's EBADF) or an error. */
  static readableFlags(dup: number): number | null {
    const flags = trySyscall('fcntl', dup, F_GETFL, 0);
    return flags < 0 || (flags & O.O_PATH) !== 0 ? null : flags;
  }

  /**
   * getdents64 / getdents(fd, dirp, count) served from the prepared listing.
   * `hides`: the listing leaves entries out (proc-pids), so the kernel must
   * never list this directory itself: an offset that is not one of ours
   * reads as the end of the listing, and a failed lseek fails the call. (The
   * kernel's /proc listing takes any offset from 258 up as "pids from here
   * on", proc_pid_readdir() in fs/proc/base.c: handed back to it, an
   * lseek(fd, 258) listed every host process.)
   */
  serve(
    ctx: HandlerContext,
    call: ListingCall,
    prepare: (entries: DirEntry[]) => DirEntry[],
    hides = false,
  ): Answer {
    const foreign: Answer = hides ? answer.value(0) : answer.continue();
    const format: DirentFormat = ctx.syscall === 'getdents64' ? 'dirent64' : 'dirent';
    const address = ctx.args[1] ?? 0n;
    const count = Number((ctx.args[2] ?? 0n) & 0xffffffffn);
    const { dup, stat } = call;
    const position = trySyscall('lseek', dup, 0, SEEK_CUR);
    if (position < 0) return hides ? answer.errno(-position) : answer.continue();
    const key = `${ctx.session.id}:${ctx.pid}:${call.fd}`;
    let listing = this.listings.get(key);
    if (
      listing !== undefined &&
      (position === 0 || listing.dev !== stat.dev || listing.ino !== stat.ino)
    ) {
      this.listings.delete(key);
      listing = undefined;
    }
    if (listing === undefined) {
      const entries = readDirectory(dup);
      if (typeof entries === 'number') return answer.errno(-entries);
      const prepared = prepare(entries);
      // An offset that is not one of ours (set by the kernel before the
      // module saw this description, or by the caller's lseek): let the
      // kernel go on, unless the listing hides entries.
      if (position > prepared.length) return foreign;
      listing = {
        sessionId: ctx.session.id,
        tgid: threadGroupOf(ctx.pid),
        dev: stat.dev,
        ino: stat.ino,
        entries: prepared,
      };
      this.remember(key, listing);
    } else if (position > listing.entries.length) {
      this.listings.delete(key);
      return foreign;
    }
    if (position === listing.entries.length) {
      this.listings.delete(key); // read to the end
      return answer.value(0);
    }
    const { bytes, next } = packRecords(format, listing.entries, position, count);
    if (bytes.length === 0) return answer.errno('EINVAL'); // not even one record fits
    // The offset first: a file system that refuses it (none of ext4, xfs,
    // btrfs, tmpfs, overlayfs, procfs, sysfs does) lists unsorted.
    const moved = trySyscall('lseek', dup, next, SEEK_SET);
    if (moved < 0) return hides ? answer.errno(-moved) : answer.continue();
    try {
      ctx.write(address, bytes);
    } catch (error) {
      // A buffer that faults part-way: the kernel returns the whole records
      // it copied before the fault, EFAULT only when there is none
      // (getdents64() in fs/readdir.c).
      const copied = isFault(error)
        ? writeWholeRecords(ctx, address, bytes)
        : { records: 0, bytes: 0 };
      trySyscall('lseek', dup, position + copied.records, SEEK_SET);
      if (copied.records === 0) throw error;
      return answer.value(copied.bytes);
    }
    return answer.value(bytes.length);
  }

  /** processExit: drops the listings of that process. */
  forgetProcess(sessionId: number, pid: number): void {
    this.forget((listing) => listing.sessionId === sessionId && listing.tgid === pid);
  }

  /** sessionEnd: drops the sandbox's listings. */
  forgetSession(sessionId: number): void {
    this.forget((listing) => listing.sessionId === sessionId);
  }

  private forget(predicate: (listing: Listing) => boolean): void {
    for (const [key, listing] of this.listings) if (predicate(listing)) this.listings.delete(key);
  }

  private remember(key: string, listing: Listing): void {
    this.listings.delete(key);
    this.listings.set(key, listing);
    while (this.listings.size > MAX_CACHED) {
      const oldest = this.listings.keys().next().value;
      if (oldest === undefined) break;
      this.listings.delete(oldest);
    }
  }
}
