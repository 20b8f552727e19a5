// The change list of a layer: the lower as it is, against the tree seen
// through the layer (the upper's entries over the lower's, less what the
// whiteout log hides). Both trees are read through descriptors beneath their
// roots (at.ts), so a symlink in either is never followed.

import { type BigIntStats, readSync } from 'node:fs';
import { close } from '@sandlock/sys';
import {
  lstatBeneath,
  namesIn,
  O,
  openBeneath,
  openDirectoryNoSymlinks,
  readLinkFd,
  tryOpenBeneath,
  withFd,
  xattrsOf,
} from './at.js';
import { type TrueModes, trueStat } from './loosen.js';
import type { Whiteouts } from './whiteouts.js';

export type ChangeKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'other';

/**
 * One change: A (added: nothing of the lower there), M (modified: content,
 * permission bits or type differ), D (deleted). A deleted directory is listed
 * with every entry beneath it, each a D; a renamed directory is its old
 * entries as D and its new ones as A. `mode` is the permission bits
 * (0o7777) and `size` the bytes (a symlink's target length, 0 for a
 * directory) of the new entry, or of the old one for D. The directory
 * itself (its mode, times) is not part of the layer.
 */
export interface Change {
  readonly type: 'A' | 'M' | 'D';
  readonly path: string;
  readonly kind: ChangeKind;
  readonly mode: number;
  readonly size: number;
}

export function kindOf(stat: BigIntStats): ChangeKind {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isFIFO()) return 'fifo';
  return 'other';
}

export function child(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

/** Paths in tree order: a directory before what it holds, siblings by name. */
export function byPath(a: string, b: string): number {
  const x = a.replaceAll('/', '\0');
  const y = b.replaceAll('/', '\0');
  return x < y ? -1 : x > y ? 1 : 0;
}

function sizeOf(stat: BigIntStats): number {
  return stat.isDirectory() ? 0 : Number(stat.size);
}

function change(type: Change['type'], path: string, stat: BigIntStats): Change {
  return {
    type,
    path,
    kind: kindOf(stat),
    mode: Number(stat.mode & 0o7777n),
    size: sizeOf(stat),
  };
}

/** Whether two files' bytes are equal (both read beneath their roots). */
function sameBytes(lowerRoot: number, upperRoot: number, rel: string): boolean {
  const a = tryOpenBeneath(lowerRoot, rel, O.O_RDONLY | O.O_NOFOLLOW);
  if (a < 0) return false; // unreadable: listed as modified
  return withFd(a, (lowerFd) =>
    withFd(openBeneath(upperRoot, rel, O.O_RDONLY | O.O_NOFOLLOW), (upperFd) =>
      equalStreams(lowerFd, upperFd),
    ),
  );
}

const CHUNK = 1 << 16;

function equalStreams(a: number, b: number): boolean {
  const left = Buffer.alloc(CHUNK);
  const right = Buffer.alloc(CHUNK);
  for (let offset = 0; ; offset += CHUNK) {
    const readA = readFull(a, left, offset);
    const readB = readFull(b, right, offset);
    if (readA !== readB) return false;
    if (left.compare(right, 0, readB, 0, readA) !== 0) return false;
    if (readA < CHUNK) return true;
  }
}

function readFull(fd: number, buffer: Buffer, position: number): number {
  let total = 0;
  while (total < buffer.length) {
    const got = readSync(fd, buffer, total, buffer.length - total, position + total);
    if (got === 0) break;
    total += got;
  }
  return total;
}

/**
 * Whether the upper's entry has an extended attribute the lower's lacks or
 * has with another value (one way only: an attribute removed in the layer
 * is not seen, since copies up need not carry the lower's).
 */
function xattrsAdded(lowerRoot: number, upperRoot: number, rel: string): boolean {
  const flags = O.O_RDONLY | O.O_NOFOLLOW | O.O_NONBLOCK;
  const upperFd = tryOpenBeneath(upperRoot, rel, flags);
  if (upperFd < 0) return false;
  const added = withFd(upperFd, xattrsOf);
  if (added.size === 0) return false;
  const lowerFd = tryOpenBeneath(lowerRoot, rel, flags);
  if (lowerFd < 0) return true;
  const present = withFd(lowerFd, xattrsOf);
  for (const [name, value] of added) {
    if (!present.get(name)?.equals(value)) return true;
  }
  return false;
}

function linkTarget(root: number, rel: string): string {
  return withFd(openBeneath(root, rel, O.O_PATH | O.O_NOFOLLOW), readLinkFd);
}

/** Whether the entry at `rel` differs: type, permission bits, or content. */
export function differs(
  lowerRoot: number,
  upperRoot: number,
  rel: string,
  lower: BigIntStats,
  upper: BigIntStats,
): boolean {
  if ((lower.mode & 0o177777n) !== (upper.mode & 0o177777n)) return true;
  if ((upper.isFile() || upper.isDirectory()) && xattrsAdded(lowerRoot, upperRoot, rel)) {
    return true;
  }
  if (upper.isFile()) {
    return lower.size !== upper.size || !sameBytes(lowerRoot, upperRoot, rel);
  }
  if (upper.isSymbolicLink()) {
    return linkTarget(lowerRoot, rel) !== linkTarget(upperRoot, rel);
  }
  if (upper.isCharacterDevice() || upper.isBlockDevice()) return lower.rdev !== upper.rdev;
  return false;
}

/** An upper entry: where it is, and its lstat. */
export interface UpperEntry {
  readonly path: string;
  readonly stat: BigIntStats;
}

/**
 * Every entry of the upper, in tree order, with the changes it makes, and
 * every lower entry the layer removes. Calls `onUpper` for each upper entry
 * (the commit plans from it) with its change (or null: the same as the lower).
 */
export function walkLayer(
  lowerRoot: number,
  upperRoot: number,
  whiteouts: Pick<Whiteouts, 'records' | 'deleted' | 'opaque'>,
  onUpper: (entry: UpperEntry, change: Change | null, lower: BigIntStats | null) => void,
  onDeleted: (change: Change) => void,
  /** The modes of loosened upper entries (loosen.ts). */
  modes?: TrueModes,
): void {
  const inUpper = (rel: string) => {
    const found = lstatBeneath(upperRoot, rel);
    return found === null ? null : trueStat(found, rel, modes);
  };
  // Lower entries beneath `rel` (a lower directory) the merged view lacks.
  const deletedBeneath = (rel: string, upperHasRel: boolean): void => {
    const fd = tryOpenBeneath(lowerRoot, rel, O.O_PATH | O.O_DIRECTORY | O.O_NOFOLLOW);
    if (fd < 0) return;
    const names = withFd(fd, namesIn);
    for (const name of names) {
      const path = child(rel, name);
      const lower = lstatBeneath(lowerRoot, path);
      if (lower === null) continue;
      const upper = upperHasRel ? inUpper(path) : null;
      if (upper !== null) continue; // compared in the upper walk
      onDeleted(change('D', path, lower));
      if (lower.isDirectory()) deletedBeneath(path, false);
    }
  };

  const walkUpper = (rel: string): void => {
    const fd = openBeneath(upperRoot, rel, O.O_PATH | O.O_DIRECTORY | O.O_NOFOLLOW);
    const names = withFd(fd, namesIn).sort(byPath);
    for (const name of names) {
      const path = child(rel, name);
      const upper = inUpper(path);
      if (upper === null) continue; // removed meanwhile
      const lower = lstatBeneath(lowerRoot, path);
      let found: Change | null = null;
      if (lower === null) found = change('A', path, upper);
      else if (differs(lowerRoot, upperRoot, path, lower, upper)) found = change('M', path, upper);
      onUpper({ path, stat: upper }, found, lower);
      if (lower?.isDirectory()) {
        // A lower directory replaced by something else loses all it held;
        // beneath an upper directory, what the log hides and the upper lacks.
        if (!upper.isDirectory()) deletedBeneath(path, false);
      }
      if (upper.isDirectory()) walkUpper(path);
    }
  };
  walkUpper('');

  // What the log hides: each record's lower entries the upper does not have.
  // A record beneath another record is covered by it.
  const records = [...new Set(whiteouts.records.map((record) => record.path))].sort(byPath);
  const covered = (path: string) => {
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const above = path.slice(0, slash);
      if (whiteouts.deleted.has(above) || whiteouts.opaque.has(above)) return true;
    }
    return false;
  };
  for (const path of records) {
    if (covered(path)) continue;
    const lower = lstatBeneath(lowerRoot, path);
    const upper = inUpper(path);
    if (lower === null) continue;
    if (whiteouts.deleted.has(path) && upper === null) {
      onDeleted(change('D', path, lower));
      if (lower.isDirectory()) deletedBeneath(path, false);
    } else if (lower.isDirectory() && upper?.isDirectory()) {
      hiddenBeneath(path);
    }
  }

  // Beneath an upper directory that hides the lower's: the lower entries it
  // lacks, at any depth (an upper subdirectory hides the lower's too).
  function hiddenBeneath(rel: string): void {
    const fd = tryOpenBeneath(lowerRoot, rel, O.O_PATH | O.O_DIRECTORY | O.O_NOFOLLOW);
    if (fd < 0) return;
    for (const name of withFd(fd, namesIn)) {
      const path = child(rel, name);
      const lower = lstatBeneath(lowerRoot, path);
      if (lower === null) continue;
      const upper = inUpper(path);
      if (upper === null) {
        onDeleted(change('D', path, lower));
        if (lower.isDirectory()) deletedBeneath(path, false);
      } else if (lower.isDirectory() && upper.isDirectory()) {
        hiddenBeneath(path);
      }
    }
  }
}

/** The change list, in tree order. */
export function computeChanges(
  lower: string,
  upper: string,
  whiteouts: Whiteouts,
  modes?: TrueModes,
): Change[] {
  const lowerRoot = openDirectoryNoSymlinks(lower);
  try {
    const upperRoot = openDirectoryNoSymlinks(upper);
    try {
      const out = new Map<string, Change>();
      walkLayer(
        lowerRoot,
        upperRoot,
        whiteouts,
        (_entry, found) => {
          if (found !== null) out.set(found.path, found);
        },
        (found) => {
          if (!out.has(found.path)) out.set(found.path, found);
        },
        modes,
      );
      return [...out.values()].sort((a, b) => byPath(a.path, b.path));
    } finally {
      close(upperRoot);
    }
  } finally {
    close(lowerRoot);
  }
}
