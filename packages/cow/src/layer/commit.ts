// The commit: a plan made from the layer (the lower untouched), written to
// the layer's journal durably before the lower is touched, then applied one
// step at a time, every step idempotent, so that the next process to see the
// layer with its owner gone runs the journal again from the start and ends
// where the interrupted commit would have (roll forward). Every change to the
// lower goes through descriptors beneath it (at.ts): a symlink someone put in
// the lower makes the commit fail, never write elsewhere.

import type { BigIntStats } from 'node:fs';
import {
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  AT_REMOVEDIR,
  close,
  ERRNO,
  flock,
  LOCK_EX,
  LOCK_NB,
  S_IFIFO,
  SysError,
  syscallAsync,
} from '@sandlock/sys';
import {
  chownLink,
  fchmodFd,
  fchownFd,
  fsyncFd,
  linkAt,
  lstatBeneath,
  mkdirAt,
  mknodAt,
  namesIn,
  O,
  openBeneath,
  openDirectoryNoSymlinks,
  readLinkFd,
  renameAt,
  setLinkTimes,
  setTimesFd,
  setXattrs,
  stat,
  symlinkAt,
  syncfs,
  tryOpenBeneath,
  unlinkAt,
  withFd,
  xattrsOf,
} from './at.js';
import { byPath, walkLayer } from './changes.js';
import type { Layer } from './index.js';
import { type TrueModes, trueStat } from './loosen.js';
import {
  ID,
  ownerGone,
  parseMeta,
  readJson,
  removeLayerDir,
  removeStoreIfEmpty,
  writeDurably,
} from './store.js';
import type { Whiteouts } from './whiteouts.js';

/** One step of a commit; paths are relative to the lower (and the upper). */
export type Step =
  | { readonly op: 'delete'; readonly path: string }
  | { readonly op: 'mkdir'; readonly path: string }
  | { readonly op: 'put'; readonly path: string }
  | { readonly op: 'link'; readonly path: string; readonly to: string }
  | { readonly op: 'meta'; readonly path: string };

const JOURNAL = 'journal';

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
    out.push(path.slice(0, slash));
  }
  return out;
}

/**
 * The steps, in the order they run: deletions (a directory once, with what
 * it holds), directories made, files, symlinks and FIFOs put in place, hard
 * links made, then the modes and times of directories, deepest first (putting
 * an entry in a directory changes its times).
 */
export function plan(
  lowerRoot: number,
  upperRoot: number,
  whiteouts: Pick<Whiteouts, 'records' | 'deleted' | 'opaque'>,
  modes?: TrueModes,
): Step[] {
  const deletes = new Set<string>();
  const mkdirs: string[] = [];
  const puts: string[] = [];
  const metas: string[] = [];
  const groups = new Map<string, string[]>();
  const remove = (path: string) => {
    if (!ancestors(path).some((above) => deletes.has(above))) deletes.add(path);
  };
  walkLayer(
    lowerRoot,
    upperRoot,
    whiteouts,
    ({ path, stat: upper }, change, lower) => {
      if (upper.isDirectory()) {
        if (change === null) return;
        if (lower !== null && !lower.isDirectory()) remove(path);
        if (lower === null || !lower.isDirectory()) mkdirs.push(path);
        metas.push(path);
        return;
      }
      if (lower?.isDirectory()) remove(path);
      if (upper.isFile() && upper.nlink > 1n) {
        const key = `${upper.dev}:${upper.ino}`;
        groups.set(key, [...(groups.get(key) ?? []), path]);
      } else if (change !== null) {
        puts.push(path);
      }
    },
    (change) => remove(change.path),
    modes,
  );
  const links: Step[] = [];
  for (const members of groups.values()) {
    members.sort(byPath);
    const [first, ...others] = members as [string, ...string[]];
    puts.push(first);
    for (const path of others) links.push({ op: 'link', path, to: first });
  }
  // A deletion beneath a path deleted later in tree order is covered by it too.
  const deletions = [...deletes].filter((path) => !ancestors(path).some((up) => deletes.has(up)));
  return [
    ...deletions.sort(byPath).map((path): Step => ({ op: 'delete', path })),
    ...mkdirs.sort(byPath).map((path): Step => ({ op: 'mkdir', path })),
    ...puts.sort(byPath).map((path): Step => ({ op: 'put', path })),
    ...links.sort((a, b) => byPath(a.path, b.path)),
    ...metas.sort((a, b) => byPath(b, a)).map((path): Step => ({ op: 'meta', path })),
  ];
}

function ignoreEperm(result: number, what: string, path: string): void {
  // Giving a file away, or to a group one is not in, needs CAP_CHOWN
  // (chown(2)): the commit keeps what the user may, as cp -p does.
  if (result < 0 && result !== -ERRNO.EPERM && result !== -ERRNO.EINVAL) {
    throw new SysError(what, -result, path);
  }
}

function checked(result: number, what: string, path: string): void {
  if (result < 0) throw new SysError(what, -result, path);
}

/** Removes `name` in the directory `dir` and, for a directory, all it holds; never follows a symlink. */
export function removeTree(dir: number, name: string, shown: string): void {
  const result = unlinkAt(dir, name, 0);
  if (result === 0 || result === -ERRNO.ENOENT) return;
  if (result !== -ERRNO.EISDIR) throw new SysError('unlinkat', -result, shown);
  const fd = tryOpenBeneath(dir, name, O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW);
  if (fd === -ERRNO.ENOENT) return;
  checked(fd, 'openat2', shown);
  withFd(fd, (inner) => {
    for (const entry of namesIn(inner)) removeTree(inner, entry, `${shown}/${entry}`);
  });
  const removed = unlinkAt(dir, name, AT_REMOVEDIR);
  if (removed < 0 && removed !== -ERRNO.ENOENT) throw new SysError('unlinkat', -removed, shown);
}

const COPY_CHUNK = 1 << 20;
/** Files written (and synced together) before their renames. */
const PUT_BATCH = 256;

function copyBytes(from: number, to: number, shown: string): void {
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let position = 0;
  for (;;) {
    const got = readSyncAt(from, buffer, position);
    if (got === 0) return;
    let done = 0;
    while (done < got) {
      const wrote = writeSyncAt(to, buffer.subarray(done, got), position + done);
      if (wrote <= 0) throw new Error(`sandlock: short write committing ${shown}`);
      done += wrote;
    }
    position += got;
  }
}

function readSyncAt(fd: number, buffer: Buffer, position: number): number {
  return readSync(fd, buffer, 0, buffer.length, position);
}
function writeSyncAt(fd: number, buffer: Buffer, position: number): number {
  return writeSync(fd, buffer, 0, buffer.length, position);
}

/** Applies steps to the lower open as `root`, reading the upper open as `upperRoot`. */
export class Applier {
  private readonly parents = new Map<string, number>();

  constructor(
    private readonly root: number,
    private readonly upperRoot: number,
    /** Unique to the layer: temporary names beside each file are `<prefix><step>`. */
    private readonly tempPrefix: string,
    private readonly lowerName: string,
    /** The modes of loosened upper entries, carried instead of the loosened ones. */
    private readonly modes?: TrueModes,
  ) {}

  run(steps: readonly Step[], after?: (index: number) => void): void {
    for (let index = 0; index < steps.length; ) {
      const step = steps[index]!;
      if (step.op !== 'put') {
        this.apply(step, index);
        after?.(index);
        index++;
        continue;
      }
      // Consecutive puts go in batches: every temporary of the batch written,
      // then one syncfs(2) of each file system they are on, then the renames
      // in order. Each file is durable before its rename, as with an fsync
      // of each, at the cost of one flush per batch instead of one per file.
      let end = index;
      while (end < steps.length && end - index < PUT_BATCH && steps[end]!.op === 'put') end++;
      this.putBatch(steps.slice(index, end), index, after);
      index = end;
    }
    for (const fd of [this.root, ...this.parents.values()]) {
      checked(fsyncFd(fd), 'fsync', this.lowerName);
    }
  }

  private putBatch(steps: readonly Step[], first: number, after?: (index: number) => void): void {
    const written: { dir: number; temp: string; path: string }[] = [];
    let renamed = 0;
    try {
      for (const [offset, step] of steps.entries()) {
        const dir = this.parent(step.path)!;
        const temp = `${this.tempPrefix}${first + offset}`;
        written.push({ dir, temp, path: step.path });
        if (!this.write(dir, step.path, temp)) written.pop();
      }
      const devices = new Map<bigint, number>();
      for (const { dir } of written) devices.set(stat(dir).dev, dir);
      for (const dir of devices.values()) checked(syncfs(dir), 'syncfs', this.lowerName);
      for (const [offset, step] of steps.entries()) {
        const entry = written[renamed];
        if (entry !== undefined && entry.path === step.path) {
          this.renameOver(entry.dir, entry.temp, basename(step.path), step.path);
          renamed++;
        }
        after?.(first + offset);
      }
    } catch (error) {
      // No temporary is left in the directory by a batch that failed (a full
      // disk, a symlink swapped in): the commit stops here.
      for (const { dir, temp } of written.slice(renamed)) unlinkAt(dir, temp, 0);
      throw error;
    }
  }

  close(): void {
    for (const fd of this.parents.values()) close(fd);
    this.parents.clear();
  }

  private shown(path: string): string {
    return join(this.lowerName, path);
  }

  /** The directory of `path`'s parent, open for reading (fsync needs more than O_PATH); null if gone. */
  private parent(path: string, missing: 'null' | 'throw' = 'throw'): number | null {
    const rel = dirname(path) === '.' ? '' : dirname(path);
    if (rel === '') return this.root;
    const cached = this.parents.get(rel);
    if (cached !== undefined) return cached;
    const fd = tryOpenBeneath(this.root, rel, O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW);
    if (fd < 0) {
      if (missing === 'null' && (fd === -ERRNO.ENOENT || fd === -ERRNO.ENOTDIR)) return null;
      throw new SysError('openat2', -fd, this.shown(rel));
    }
    this.parents.set(rel, fd);
    return fd;
  }

  private forget(path: string): void {
    for (const [rel, fd] of this.parents) {
      if (rel === path || rel.startsWith(`${path}/`)) {
        close(fd);
        this.parents.delete(rel);
      }
    }
  }

  private apply(step: Step, index: number): void {
    const temp = `${this.tempPrefix}${index}`;
    const name = basename(step.path);
    switch (step.op) {
      case 'delete': {
        const dir = this.parent(step.path, 'null');
        if (dir === null) return;
        this.forget(step.path);
        removeTree(dir, name, this.shown(step.path));
        return;
      }
      case 'mkdir': {
        const dir = this.parent(step.path)!;
        let made = mkdirAt(dir, name, 0o700);
        if (made === -ERRNO.EEXIST && !lstatBeneath(dir, name)?.isDirectory()) {
          removeTree(dir, name, this.shown(step.path));
          made = mkdirAt(dir, name, 0o700);
        }
        if (made < 0 && made !== -ERRNO.EEXIST) {
          throw new SysError('mkdirat', -made, this.shown(step.path));
        }
        const upper = lstatBeneath(this.upperRoot, step.path)!;
        withFd(openBeneath(dir, name, O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW), (fd) =>
          ignoreEperm(fchownFd(fd, Number(upper.uid), Number(upper.gid)), 'fchown', step.path),
        );
        return;
      }
      case 'put':
        this.putBatch([step], index);
        return;
      case 'link': {
        const dir = this.parent(step.path)!;
        const from = this.parent(step.to)!;
        this.clearTemp(dir, temp);
        checked(linkAt(from, basename(step.to), dir, temp), 'linkat', this.shown(step.path));
        try {
          this.renameOver(dir, temp, name, step.path, true);
        } catch (error) {
          unlinkAt(dir, temp, 0);
          throw error;
        }
        return;
      }
      case 'meta': {
        const found = lstatBeneath(this.upperRoot, step.path);
        if (found === null) return;
        const upper = trueStat(found, step.path, this.modes);
        const attributes = withFd(
          openBeneath(this.upperRoot, step.path, O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW),
          xattrsOf,
        );
        const fd = openBeneath(this.root, step.path, O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW);
        withFd(fd, () => {
          checked(fchmodFd(fd, Number(upper.mode & 0o7777n)), 'fchmod', this.shown(step.path));
          checked(setXattrs(fd, attributes), 'fsetxattr', this.shown(step.path));
          checked(setTimesFd(fd, upper.atimeNs, upper.mtimeNs), 'utimensat', this.shown(step.path));
        });
        return;
      }
    }
  }

  private clearTemp(dir: number, temp: string): void {
    // A temporary of an interrupted run of this step.
    const result = unlinkAt(dir, temp, 0);
    if (result < 0 && result !== -ERRNO.ENOENT) removeTree(dir, temp, temp);
  }

  private renameOver(dir: number, temp: string, name: string, path: string, linked = false): void {
    let result = renameAt(dir, temp, dir, name);
    if (result === -ERRNO.EISDIR || result === -ERRNO.ENOTEMPTY || result === -ERRNO.EEXIST) {
      // A directory where the layer has something else.
      this.forget(path);
      removeTree(dir, name, this.shown(path));
      result = renameAt(dir, temp, dir, name);
    }
    checked(result, 'renameat2', this.shown(path));
    if (!linked) return;
    // rename(2) of two links to one file does nothing and leaves the old name.
    const left = unlinkAt(dir, temp, 0);
    if (left < 0 && left !== -ERRNO.ENOENT) throw new SysError('unlinkat', -left, temp);
  }

  /**
   * Writes the upper's entry at `path` as `temp` beside its place, with its
   * owner, mode and times; false for what is not carried (sockets, devices).
   */
  private write(dir: number, path: string, temp: string): boolean {
    const shown = this.shown(path);
    const source = openBeneath(this.upperRoot, path, O.O_PATH | O.O_NOFOLLOW);
    const upper = withFd(source, (fd) => {
      const found = trueStat(stat(fd), path, this.modes);
      return { found, target: found.isSymbolicLink() ? readLinkFd(fd) : null };
    });
    const { found: st, target } = upper;
    const mode = Number(st.mode & 0o7777n);
    this.clearTemp(dir, temp);
    if (st.isFile()) {
      const from = openBeneath(this.upperRoot, path, O.O_RDONLY | O.O_NOFOLLOW);
      withFd(from, () => {
        const to = openBeneath(dir, temp, O.O_WRONLY | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW, 0o600);
        withFd(to, () => {
          copyBytes(from, to, shown);
          this.finishFile(to, st, mode, shown, xattrsOf(from));
        });
      });
    } else if (st.isSymbolicLink()) {
      checked(symlinkAt(target!, dir, temp), 'symlinkat', shown);
      ignoreEperm(chownLink(dir, temp, Number(st.uid), Number(st.gid)), 'fchownat', shown);
      checked(setLinkTimes(dir, temp, st.atimeNs, st.mtimeNs), 'utimensat', shown);
    } else if (st.isFIFO()) {
      checked(mknodAt(dir, temp, S_IFIFO | 0o600), 'mknodat', shown);
      // Opened (a FIFO opens for reading without waiting with O_NONBLOCK,
      // fifo(7)) so that its mode and owner are set on it, not on a name.
      const fd = openBeneath(dir, temp, O.O_RDONLY | O.O_NONBLOCK | O.O_NOFOLLOW);
      withFd(fd, () => {
        if (!fstatSync(fd).isFIFO()) throw new Error(`sandlock: ${shown} changed while committed`);
        this.finishFile(fd, st, mode, shown);
      });
    } else {
      return false; // sockets and devices are not carried
    }
    return true;
  }

  private finishFile(
    fd: number,
    st: BigIntStats,
    mode: number,
    shown: string,
    attributes?: ReadonlyMap<string, Buffer>,
  ): void {
    // chown first: it clears the set-user-ID and set-group-ID bits (chown(2))
    // and a file's capabilities (security.capability, capabilities(7)).
    ignoreEperm(fchownFd(fd, Number(st.uid), Number(st.gid)), 'fchown', shown);
    checked(fchmodFd(fd, mode), 'fchmod', shown);
    if (attributes !== undefined) checked(setXattrs(fd, attributes), 'fsetxattr', shown);
    checked(setTimesFd(fd, st.atimeNs, st.mtimeNs), 'utimensat', shown);
  }
}

// ---------------------------------------------------------------------------
// The lock: STORE/.lock-<device>-<inode> of the lower, flock(2)ed; removed by
// its holder before it lets go, so the store keeps nothing. A waiter that got
// the lock on a file no longer at that name tries again.

export interface Lock {
  readonly fd: number;
  readonly path: string;
}

function lockPath(store: string, device: string, inode: string): string {
  return join(store, `.lock-${device}-${inode}`);
}

function openLock(path: string): number {
  return openSync(path, O.O_RDWR | O.O_CREAT | O.O_NOFOLLOW | O.O_CLOEXEC, 0o600);
}

function stillThere(fd: number, path: string): boolean {
  try {
    const held = fstatSync(fd);
    const named = lstatSync(path);
    return held.ino === named.ino && held.dev === named.dev;
  } catch {
    return false;
  }
}

export function lockLower(store: string, device: string, inode: string): Lock {
  const path = lockPath(store, device, inode);
  for (;;) {
    const fd = openLock(path);
    try {
      flock(fd, LOCK_EX);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (stillThere(fd, path)) return { fd, path };
    closeSync(fd);
  }
}

export async function lockLowerAsync(store: string, device: string, inode: string): Promise<Lock> {
  const path = lockPath(store, device, inode);
  for (;;) {
    const fd = openLock(path);
    try {
      if (!flock(fd, LOCK_EX | LOCK_NB)) {
        // Held: wait on a thread of libuv's pool, not on the event loop.
        let result: number;
        do result = await syscallAsync('flock', fd, LOCK_EX);
        while (result === -ERRNO.EINTR);
        if (result < 0) throw new SysError('flock', -result, path);
      }
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    if (stillThere(fd, path)) return { fd, path };
    closeSync(fd);
  }
}

/** The lock without waiting, or null when someone holds it. */
export function tryLock(path: string): Lock | null {
  const fd = openLock(path);
  try {
    if (flock(fd, LOCK_EX | LOCK_NB) && stillThere(fd, path)) return { fd, path };
  } catch {}
  closeSync(fd);
  return null;
}

export function unlock(lock: Lock): void {
  try {
    unlinkSync(lock.path);
  } catch {}
  closeSync(lock.fd);
  removeStoreIfEmpty(dirname(lock.path));
}

// ---------------------------------------------------------------------------

function readJournal(path: string): Step[] {
  const [header, ...lines] = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const head = JSON.parse(header ?? '{}') as { version?: unknown };
  if (head.version !== 1) throw new Error(`sandlock: ${path} is not a commit journal of version 1`);
  return lines.map((line) => JSON.parse(line) as Step);
}

/** Commits a layer whose lower's lock the caller holds. */
export function commitLocked(layer: Layer): void {
  layer.checkUpper();
  layer.loosen();
  const whiteouts = layer.whiteoutsForCommit();
  const meta = layer.metadata;
  const root = openDirectoryNoSymlinks(meta.lower, O.O_RDONLY);
  try {
    const found = stat(root);
    if (String(found.dev) !== meta.device || String(found.ino) !== meta.inode) {
      throw new Error(
        `sandlock: ${meta.lower} is not the directory the layer ${layer.dir} was made over (it was replaced); not committed`,
      );
    }
    const upperRoot = openDirectoryNoSymlinks(layer.upper);
    try {
      const journal = join(layer.dir, JOURNAL);
      let steps: Step[];
      if (existsSync(journal)) {
        steps = readJournal(journal);
      } else {
        if (layer.state !== 'committing') layer.setState('committing');
        steps = plan(root, upperRoot, whiteouts, layer.trueModes());
        const header = JSON.stringify({ version: 1, lower: meta.lower, steps: steps.length });
        writeDurably(
          layer.dir,
          JOURNAL,
          `${[header, ...steps.map((step) => JSON.stringify(step))].join('\n')}\n`,
        );
      }
      const applier = new Applier(
        root,
        upperRoot,
        `.sandlock-cow-${layer.id.slice(0, 12)}-`,
        meta.lower,
        layer.trueModes(),
      );
      try {
        applier.run(steps, commitHook);
      } finally {
        applier.close();
      }
    } finally {
      close(upperRoot);
    }
  } finally {
    close(root);
  }
  removeLayerDir(layer.store, layer.id);
}

/**
 * Copies the upper open as `upperRoot` into the empty directory open as
 * `root` (named `name` in errors) with the commit's steps: contents, modes,
 * times, extended attributes, hard links and (as far as the user may)
 * owners. Not journaled: the copy of a layer whose owner dies meanwhile is
 * removed with the layer.
 */
export function copyUpper(root: number, upperRoot: number, name: string): void {
  const steps = plan(root, upperRoot, { records: [], deleted: new Set(), opaque: new Set() });
  const applier = new Applier(root, upperRoot, '.sandlock-cow-copy-', name);
  try {
    applier.run(steps);
  } finally {
    applier.close();
  }
}

let stepHook: ((index: number) => void) | undefined;
/** @internal Called after each step of a commit (tests interrupt a commit in the middle with it). */
export function setStepHook(hook: ((index: number) => void) | undefined): void {
  stepHook = hook;
}
function commitHook(index: number): void {
  stepHook?.(index);
}

export function commitLayer(layer: Layer): void {
  const meta = layer.metadata;
  const lock = lockLower(layer.store, meta.device, meta.inode);
  try {
    finishOthers(layer.store, meta.device, meta.inode, layer.id);
    commitLocked(layer);
  } finally {
    unlock(lock);
  }
}

export async function commitLayerAsync(layer: Layer): Promise<void> {
  const meta = layer.metadata;
  const lock = await lockLowerAsync(layer.store, meta.device, meta.inode);
  try {
    finishOthers(layer.store, meta.device, meta.inode, layer.id);
    commitLocked(layer);
  } finally {
    unlock(lock);
  }
}

/**
 * Layers of the store: their directory and layer.json. A layer whose
 * layer.json cannot be read or is not one this version knows is left out:
 * nothing is done to it (nor to the directory it is over).
 */
export function layersIn(store: string): { dir: string; meta: Layer['metadata'] }[] {
  const out: { dir: string; meta: Layer['metadata'] }[] = [];
  for (const name of readdirNames(store)) {
    if (!ID.test(name)) continue;
    try {
      out.push({
        dir: join(store, name),
        meta: parseMeta(readJson(join(store, name, 'layer.json'))),
      });
    } catch {}
  }
  return out;
}

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

let openLayer: ((dir: string) => Layer) | undefined;
/** @internal: index.ts gives the constructor (a cycle otherwise). */
export function setOpener(open: (dir: string) => Layer): void {
  openLayer = open;
}

/**
 * Finishes, with the lower's lock held, the interrupted commits and aborts of
 * dead owners over the same lower (device and inode) in this store.
 */
export function finishOthers(store: string, device: string, inode: string, except?: string): void {
  for (const { dir, meta } of layersIn(store)) {
    if (dir.endsWith(`/${except}`) || meta.device !== device || meta.inode !== inode) continue;
    if (meta.state !== 'committing' && meta.state !== 'aborting') continue;
    if (!ownerGone(meta.owner)) continue;
    finishOne(store, dir, meta.state);
  }
}

function finishOne(store: string, dir: string, state: string): void {
  if (state === 'aborting') {
    removeLayerDir(store, basename(dir));
    return;
  }
  const layer = openLayer!(dir);
  try {
    commitLocked(layer);
  } finally {
    layer.close();
  }
}
