// The upper's entries a supervisor that is not root cannot read: a directory
// the sandbox made 0111 (no listing) or 0600 (no lookup beneath), a file it
// made 0 or 0200. The upper is the supervisor's own (its user made every
// entry, through the reaper), so before the layer is listed, copied,
// committed or removed, each such entry is given the owner's rwx (a
// directory) or r (a file), and its mode is recorded first, durably, in
// STORE/<id>/modes.json: whatever reads the upper's modes (the change list,
// the commit, a journal replayed after a crash) takes the recorded one. A
// root supervisor reads everything (CAP_DAC_READ_SEARCH) and loosens nothing.

import type { BigIntStats } from 'node:fs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AT_FDCWD, close, SysError, trySyscall } from '@sandlock/sys';
import { namesIn, O, openDirectoryNoSymlinks, stat, tryOpenBeneath, withFd } from './at.js';
import { writeDurably } from './store.js';

export const MODES_FILE = 'modes.json';

/** The recorded modes (permission bits) of loosened entries, by path beneath the upper. */
export type TrueModes = ReadonlyMap<string, number>;

/** The modes recorded in the layer directory `dir` (none: an empty map). */
export function readModes(dir: string): Map<string, number> {
  const path = join(dir, MODES_FILE);
  if (!existsSync(path)) return new Map();
  return new Map(Object.entries(JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>));
}

/** `stat` with the permission bits recorded for `rel`, if any (its type and all else as they are). */
export function trueStat(st: BigIntStats, rel: string, modes: TrueModes | undefined): BigIntStats {
  const mode = modes?.get(rel);
  if (mode === undefined) return st;
  const adjusted = Object.create(Object.getPrototypeOf(st)) as BigIntStats;
  return Object.assign(adjusted, st, { mode: (st.mode & ~0o7777n) | BigInt(mode) });
}

/** What the owner needs: rwx on a directory (list, look up, remove beneath), r on a file. */
function needed(st: BigIntStats): bigint {
  if (st.isDirectory()) return 0o700n;
  if (st.isFile()) return 0o400n;
  return 0n;
}

/**
 * Loosens every entry of the upper at `upper` (a path: the layer's tmpfs
 * through /proc/self/fd, or its directory on disk) that its owner, this
 * process's user, cannot read; records modes in the layer directory `dir`.
 */
export function loosenUpper(dir: string, upper: string): void {
  const uid = BigInt(process.geteuid?.() ?? 0);
  if (uid === 0n || !existsSync(upper)) return;
  const modes = readModes(dir);
  const loosen = (fd: number, rel: string): void => {
    const st = stat(fd);
    const bits = needed(st);
    if (st.uid !== uid || (st.mode & bits) === bits) return;
    if (!modes.has(rel)) {
      modes.set(rel, Number(st.mode & 0o7777n));
      writeDurably(dir, MODES_FILE, JSON.stringify(Object.fromEntries(modes)));
    }
    // Through the descriptor's magic link: the very inode checked, never a symlink's target.
    const path = Buffer.from(`/proc/self/fd/${fd}\0`);
    const result = trySyscall('fchmodat', AT_FDCWD, path, Number((st.mode | bits) & 0o7777n));
    if (result < 0) throw new SysError('fchmodat', -result, join(upper, rel));
  };
  const walk = (fd: number, rel: string): void => {
    loosen(fd, rel);
    for (const name of namesIn(fd)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const entry = tryOpenBeneath(fd, name, O.O_PATH | O.O_NOFOLLOW);
      if (entry < 0) continue; // removed meanwhile
      withFd(entry, (opened) => {
        if (stat(opened).isDirectory()) walk(opened, path);
        else loosen(opened, path);
      });
    }
  };
  const root = openDirectoryNoSymlinks(upper);
  try {
    walk(root, '');
  } finally {
    close(root);
  }
}
