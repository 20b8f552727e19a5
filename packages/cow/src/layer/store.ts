// The store: the directory holding one directory per layer. It must be the
// user's own and writable by no one else, because everything in it (the
// upper trees, the logs, the journals) is trusted by the commit.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detachMount, ERRNO, SysError, startTimeOf } from '@sandlock/sys';
import type { LayerMeta } from './index.js';
import { loosenUpper } from './loosen.js';

/** The default store of this user: `$TMPDIR/sandlock-cow-<uid>`. */
export function defaultStore(): string {
  return join(tmpdir(), `sandlock-cow-${process.getuid?.() ?? 'user'}`);
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/**
 * Makes the store if it is missing (0700) and checks it: a directory, not a
 * symlink, owned by this user, writable by neither its group nor others.
 * Returns its path. Throws {@link StoreError} otherwise.
 */
export function checkedStore(storage?: string): string {
  const store = storage ?? defaultStore();
  try {
    mkdirSync(store, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new StoreError(
        `sandlock: cannot make the copy-on-write store ${store}: ${(error as Error).message}`,
      );
    }
  }
  const stat = lstatSync(store);
  const uid = process.geteuid?.() ?? -1;
  if (!stat.isDirectory()) {
    throw new StoreError(`sandlock: the copy-on-write store ${store} is not a directory`);
  }
  if (stat.uid !== uid) {
    throw new StoreError(
      `sandlock: the copy-on-write store ${store} belongs to uid ${stat.uid}, not to this user (${uid})`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new StoreError(
      `sandlock: the copy-on-write store ${store} is writable by others (mode ${(stat.mode & 0o7777).toString(8)}); make it 0700`,
    );
  }
  return store;
}

/** A layer id: 128 random bits, so no other process can guess a layer's directory. */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

export const ID = /^[0-9a-f]{32}$/;

/** The process that owns a layer: a pid alone may be reused, with its start time it names one process. */
export interface Owner {
  readonly pid: number;
  readonly startTime: string;
  /** The inode of the owner's pid namespace (absent: unknown). */
  readonly pidNamespace?: string;
}

export function pidNamespace(): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

export function thisProcess(): Owner {
  const namespace = pidNamespace();
  return {
    pid: process.pid,
    startTime: String(startTimeOf(process.pid) ?? ''),
    ...(namespace === undefined ? {} : { pidNamespace: namespace }),
  };
}

/**
 * Whether a layer's owner is gone. False when that cannot be told (another
 * pid namespace, whose pids mean something else here).
 */
export function ownerGone(owner: Owner): boolean {
  const namespace = pidNamespace();
  if (owner.pidNamespace !== undefined && owner.pidNamespace !== namespace) return false;
  if (owner.startTime === '') return false;
  let start: number | null;
  try {
    start = startTimeOf(owner.pid);
  } catch {
    return false;
  }
  return start === null || String(start) !== owner.startTime;
}

/** Writes a file atomically and durably: a temporary beside it, fsync, rename, fsync of the directory. */
export function writeDurably(dir: string, name: string, content: string): void {
  const temp = join(dir, `.${name}.${randomBytes(4).toString('hex')}`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, join(dir, name));
  syncDirectory(dir);
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * Removes a layer's directory: renamed first to a `.trash-` name (one atomic
 * step, so no half-removed layer is ever taken for a layer), then removed.
 */
export function removeLayerDir(store: string, id: string): void {
  const trash = join(store, `.trash-${id}`);
  unmountUpper(join(store, id));
  try {
    renameSync(join(store, id), trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // Someone else got there first, or it is already in the trash.
  }
  syncDirectory(store);
  unmountUpper(trash);
  // What the sandbox made unreadable or unwritable to its owner (loosen.ts);
  // where that fails, the removal says what it could not remove.
  try {
    if (existsSync(trash)) loosenUpper(trash, join(trash, 'upper'));
  } catch {}
  rmSync(trash, { recursive: true, force: true });
  removeStoreIfEmpty(store);
}

/** Whether DIR/upper is a mount point (a tmpfs of the layer's own): another device than DIR's. */
export function upperMounted(dir: string): boolean {
  const outer = lstatSync(dir, { throwIfNoEntry: false });
  const inner = lstatSync(join(dir, 'upper'), { throwIfNoEntry: false });
  return outer !== undefined && inner?.isDirectory() === true && inner.dev !== outer.dev;
}

/**
 * Detaches the tmpfs mounted on a layer's DIR/upper, if one is (its memory
 * is freed once nothing holds a file of it open); throws when it cannot be.
 */
export function unmountUpper(dir: string): void {
  // A mount propagated back onto the same point (a shared parent) stacks: one detach each.
  for (let detached = 0; upperMounted(dir); detached++) {
    if (detached === 8) throw new Error(`sandlock: ${join(dir, 'upper')} is still a mount point`);
    const result = detachMount(join(dir, 'upper'));
    if (result === -ERRNO.EINVAL || result === -ERRNO.ENOENT) return;
    if (result < 0) throw new SysError('umount2', -result, join(dir, 'upper'));
  }
}

/**
 * The default store removed once it holds nothing (no layer, no lock), so
 * that a run leaves nothing in the temp dir; a store the user named stays.
 * rmdir(2) removes only an empty directory; a sandbox making its layer
 * meanwhile finds the store gone and makes it again (Layer.create).
 */
export function removeStoreIfEmpty(store: string): void {
  if (store !== defaultStore()) return;
  try {
    rmdirSync(store);
  } catch {
    // Not empty (another sandbox's layer or lock), or already gone.
  }
}

/** A layer.json, checked; throws when it is not one of version 1. */
export function parseMeta(value: unknown): LayerMeta {
  const meta = value as Partial<LayerMeta> | null;
  if (
    meta === null ||
    typeof meta !== 'object' ||
    meta.version !== 1 ||
    typeof meta.lower !== 'string' ||
    typeof meta.device !== 'string' ||
    typeof meta.inode !== 'string' ||
    typeof meta.owner?.pid !== 'number' ||
    typeof meta.owner.startTime !== 'string' ||
    !['running', 'kept', 'committing', 'aborting'].includes(meta.state as string) ||
    !(meta.maxDisk === null || typeof meta.maxDisk === 'number') ||
    !(
      meta.diskBound === undefined ||
      meta.diskBound === 'tmpfs' ||
      meta.diskBound === 'userns-tmpfs' ||
      meta.diskBound === 'measured'
    )
  ) {
    throw new Error('not a layer description of version 1');
  }
  return meta as LayerMeta;
}
