// A copy-on-write layer over a directory (the lower): its upper tree, its
// whiteout log and its disk accounting, in one directory of the store
// (docs/design.md, "Copy-on-write layers: format, commit, recovery").

import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
} from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { close as closeFd, mountTmpfs, pageSize } from '@sandlock/sys';
import { descriptorPath, O, openDirectoryNoSymlinks } from './at.js';
import { type Change, computeChanges } from './changes.js';
import { commitLayer, commitLayerAsync, copyUpper, setOpener } from './commit.js';
import { loosenUpper, readModes, type TrueModes } from './loosen.js';
import { type PrivateTmpfs, privateTmpfs } from './private-tmpfs.js';
import { cleanStaleLayers } from './stale.js';
import {
  checkedStore,
  defaultStore,
  ID,
  newId,
  type Owner,
  ownerGone,
  parseMeta,
  readJson,
  removeLayerDir,
  thisProcess,
  unmountUpper,
  upperMounted,
  writeDurably,
} from './store.js';
import { Whiteouts } from './whiteouts.js';

export type { Change, ChangeKind } from './changes.js';
export { defaultStore, type Owner, StoreError } from './store.js';

export type LayerState = 'running' | 'kept' | 'committing' | 'aborting';

/** layer.json. */
export interface LayerMeta {
  readonly version: 1;
  /** The canonical directory the layer is over. */
  readonly lower: string;
  /** Its device and inode when the layer was made: a commit refuses a directory put in its place. */
  readonly device: string;
  readonly inode: string;
  readonly owner: Owner;
  readonly created: string;
  readonly state: LayerState;
  readonly maxDisk: number | null;
  /** How maxDisk is enforced (absent: no maxDisk, or a layer of an older version: 'measured'). */
  readonly diskBound?: DiskBound;
}

/**
 * How a layer's maxDisk is enforced: `tmpfs`, the upper is a tmpfs of that
 * size of its own and the kernel fails writes past it with ENOSPC;
 * `userns-tmpfs`, the same tmpfs mounted in a user and mount namespace of
 * its own (without CAP_SYS_ADMIN), which the process reaches through a
 * descriptor only and copies to the store's disk before a commit or keep;
 * `measured`, the upper is measured on a timer and the sandbox killed past
 * it (and each file capped by RLIMIT_FSIZE).
 */
export type DiskBound = 'tmpfs' | 'userns-tmpfs' | 'measured';

export interface CreateOptions {
  readonly lower: string;
  /** The store (fsStorage); default `$TMPDIR/sandlock-cow-<uid>`. */
  readonly storage?: string;
  /** The most bytes the upper may hold (reserve() says no past it); null: no bound. */
  readonly maxDisk?: number | null;
  /**
   * With maxDisk, whether to try an upper of its own size (a tmpfs, which
   * needs CAP_SYS_ADMIN, or one in a user namespace) before the measured
   * bound; default true.
   */
  readonly kernelBound?: boolean;
}

export interface OpenOptions {
  /**
   * The accounting of another Layer instance of the same layer (its
   * `usage`), shared between threads; default: a fresh count from a scan of
   * the upper.
   */
  readonly usage?: SharedArrayBuffer;
  /**
   * The `upper` of another Layer instance of the same layer in this process
   * (a tmpfs in a user namespace is reached through its descriptor).
   */
  readonly upper?: string;
}

const META = 'layer.json';
const LOG = 'whiteouts';

export class Layer {
  readonly id: string;
  /** STORE/<id>. */
  readonly dir: string;
  /** STORE/<id>/upper: where the upper is mounted, and the name the kernel shows for its files. */
  readonly upperName: string;
  readonly lower: string;
  readonly store: string;
  /** The bytes the upper holds, as one BigInt64 shared by every instance given it (Atomics). */
  readonly usage: SharedArrayBuffer;
  private readonly used: BigInt64Array;
  private readonly whiteouts: Whiteouts;
  private meta: LayerMeta;
  private closed = false;
  private reached: string;
  /** A tmpfs in a user namespace this instance made, held by descriptors. */
  private held: PrivateTmpfs | null = null;

  private constructor(
    dir: string,
    meta: LayerMeta,
    usage?: SharedArrayBuffer,
    options: { upper?: string; held?: PrivateTmpfs } = {},
  ) {
    this.dir = dir;
    this.id = basename(dir);
    this.store = dirname(dir);
    this.upperName = join(dir, 'upper');
    this.held = options.held ?? null;
    this.reached =
      this.held !== null ? descriptorPath(this.held.root) : (options.upper ?? this.upperName);
    this.lower = meta.lower;
    this.meta = meta;
    this.whiteouts = new Whiteouts(join(dir, LOG));
    this.usage = usage ?? new SharedArrayBuffer(8);
    this.used = new BigInt64Array(this.usage);
    if (usage === undefined) Atomics.store(this.used, 0, BigInt(upperSize(this.upper)));
  }

  /**
   * A new layer over `lower` (an existing directory), owned by this process.
   * The store is cleaned first ({@link cleanStaleLayers}): what dead owners
   * left is removed, and their interrupted commits finished.
   */
  static create(options: CreateOptions): Layer {
    const lower = realpathSync(options.lower);
    const stat = statSync(lower, { bigint: true });
    if (!stat.isDirectory()) throw new Error(`sandlock: ${lower} is not a directory`);
    const where = resolvedStore(options.storage ?? defaultStore());
    if (where === lower || where.startsWith(`${lower === '/' ? '' : lower}/`)) {
      throw new Error(
        `sandlock: the copy-on-write store ${where} lies inside the directory ${lower}; put it elsewhere (fsStorage)`,
      );
    }
    const maxDisk = options.maxDisk ?? null;
    if (maxDisk !== null && !(Number.isSafeInteger(maxDisk) && maxDisk >= 0)) {
      throw new RangeError(`sandlock: maxDisk must be a whole number of bytes, got ${maxDisk}`);
    }
    const id = newId();
    const owner = thisProcess();
    let store: string;
    let building: string;
    for (let attempt = 1; ; attempt++) {
      store = checkedStore(options.storage);
      // What dead owners left: their layers removed, their commits finished
      // (this directory's among them) before this layer is made.
      cleanStaleLayers(store);
      // Made under a name that says whose it is, then renamed into place: a
      // layer directory without its layer.json is never seen under an id.
      building = join(store, `.new-${owner.pid}-${owner.startTime}-${id}`);
      try {
        mkdirSync(building, { mode: 0o700 });
        break;
      } catch (error) {
        // The default store is removed when it is left empty: another
        // sandbox's end may have removed it between the check and here.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 5) throw error;
      }
    }
    let held: PrivateTmpfs | undefined;
    try {
      mkdirSync(join(building, 'upper'), { mode: 0o700 });
      const bound =
        maxDisk === null ? null : boundUpper(join(building, 'upper'), maxDisk, options.kernelBound);
      const diskBound = bound?.bound ?? null;
      if (bound?.held !== undefined) held = bound.held;
      const meta: LayerMeta = {
        version: 1,
        lower,
        device: String(stat.dev),
        inode: String(stat.ino),
        owner,
        created: new Date().toISOString(),
        state: 'running',
        maxDisk,
        ...(diskBound !== null ? { diskBound } : {}),
      };
      writeDurably(building, LOG, '');
      writeDurably(building, META, `${JSON.stringify(meta)}\n`);
      renameSync(building, join(store, id));
      return new Layer(join(store, id), meta, undefined, held === undefined ? {} : { held });
    } catch (error) {
      if (held !== undefined) releaseTmpfs(held);
      unmountUpper(building);
      rmSync(building, { recursive: true, force: true });
      throw error;
    }
  }

  /** An existing layer: STORE/<id>, kept or running (for another thread, or a commit). */
  static open(dir: string, options: OpenOptions = {}): Layer {
    const canonical = realpathSync(dir);
    if (!ID.test(basename(canonical))) {
      throw new Error(`sandlock: ${dir} is not a copy-on-write layer (not STORE/<id>)`);
    }
    checkedStore(dirname(canonical));
    let meta: LayerMeta;
    try {
      meta = parseMeta(readJson(join(canonical, META)));
    } catch (error) {
      throw new Error(
        `sandlock: ${dir} is not a copy-on-write layer (${META}: ${(error as Error).message})`,
      );
    }
    return new Layer(
      canonical,
      meta,
      options.usage,
      options.upper === undefined ? {} : { upper: options.upper },
    );
  }

  /**
   * The upper, as a path this process may open: STORE/<id>/upper, or for a
   * tmpfs in a user namespace `/proc/self/fd/N` (until a commit or keep
   * copies it to STORE/<id>/upper).
   */
  get upper(): string {
    return this.reached;
  }

  get state(): LayerState {
    return this.meta.state;
  }
  get owner(): Owner {
    return this.meta.owner;
  }
  /** The owner is gone (a layer not kept is then for anyone to finish). */
  get orphaned(): boolean {
    return ownerGone(this.meta.owner);
  }
  get maxDisk(): number | null {
    return this.meta.maxDisk;
  }
  /** How maxDisk is enforced; null without maxDisk. */
  get diskBound(): DiskBound | null {
    return this.meta.maxDisk === null ? null : (this.meta.diskBound ?? 'measured');
  }
  /** The bytes the upper holds, as counted. */
  get bytesUsed(): number {
    return Number(Atomics.load(this.used, 0));
  }
  /** layer.json as last read or written. */
  get metadata(): LayerMeta {
    return this.meta;
  }

  /** Whether the lower's entry at `rel` is invisible (deleted, or beneath an opaque directory). */
  hidden(rel: string): boolean {
    return this.whiteouts.hidden(rel);
  }

  /** `rel` and everything beneath it are gone from the lower. */
  recordDelete(rel: string): void {
    this.whiteouts.append({ op: 'delete', path: rel });
  }

  /** Nothing of the lower beneath the upper directory `rel` is visible. */
  recordOpaque(rel: string): void {
    this.whiteouts.append({ op: 'opaque', path: rel });
  }

  /**
   * Counts `bytes` more in the upper; false (and nothing counted) past
   * maxDisk: ENOSPC. A tmpfs upper is the kernel's to bound.
   */
  reserve(bytes: number): boolean {
    if (bytes <= 0) return true;
    const limit =
      this.meta.maxDisk === null || this.diskBound !== 'measured'
        ? null
        : BigInt(this.meta.maxDisk);
    const more = BigInt(bytes);
    for (;;) {
      const current = Atomics.load(this.used, 0);
      const next = current + more;
      if (limit !== null && next > limit) return false;
      if (Atomics.compareExchange(this.used, 0, current, next) === current) return true;
    }
  }

  /**
   * Measures the upper as it is (with what the sandbox wrote through
   * descriptors it was given, which reserve() never saw) and counts at
   * least that much from now on: the bytes measured. `holders`: processes
   * whose open files of the upper that no name leads to any more (removed
   * while open, or made with O_TMPFILE) are counted too, as their blocks
   * stay taken. Throws when the upper cannot be read.
   */
  measure(holders: readonly number[] = []): number {
    const measured = upperSize(this.upper) + heldUnnamed(this.upperName, holders);
    const floor = BigInt(measured);
    for (;;) {
      const current = Atomics.load(this.used, 0);
      if (current >= floor) return measured;
      if (Atomics.compareExchange(this.used, 0, current, floor) === current) return measured;
    }
  }

  /** Counts `bytes` fewer (never below zero). */
  release(bytes: number): void {
    if (bytes <= 0) return;
    const less = BigInt(bytes);
    for (;;) {
      const current = Atomics.load(this.used, 0);
      const next = current > less ? current - less : 0n;
      if (Atomics.compareExchange(this.used, 0, current, next) === current) return;
    }
  }

  /** The change list: the lower as it is against the lower seen through the layer. */
  changes(): Change[] {
    this.whiteouts.refresh();
    this.loosen();
    return computeChanges(this.lower, this.upper, this.whiteouts, this.trueModes());
  }

  /**
   * Makes every entry of the upper readable to this process's user, their
   * modes recorded (loosen.ts), for what reads the whole layer: only once
   * its sandbox is gone (it would see the loosened modes). Done by
   * changes(), commit(), keep() and abort() themselves.
   */
  loosen(): void {
    loosenUpper(this.dir, this.upper);
  }

  /** @internal The recorded modes of the loosened entries of the upper. */
  trueModes(): TrueModes {
    return readModes(this.dir);
  }

  /**
   * Applies the layer to the lower and removes it. Waits for another commit
   * to the same directory (a lock in the store). Blocks the thread; see
   * {@link commitAsync}.
   */
  commit(): void {
    this.usable();
    this.loosen();
    this.toDisk();
    commitLayer(this);
    this.close();
  }

  /** {@link commit}, waiting for the lock on a thread of libuv's pool. */
  async commitAsync(): Promise<void> {
    this.usable();
    this.loosen();
    this.toDisk();
    await commitLayerAsync(this);
    this.close();
  }

  /** Removes the layer; the lower is untouched. */
  abort(): void {
    this.usable();
    if (existsSync(this.dir)) this.setState('aborting');
    this.close();
    removeLayerDir(this.store, this.id);
  }

  /** Leaves the layer in the store (state kept) and returns its directory. */
  keep(): string {
    this.usable();
    this.loosen();
    this.toDisk();
    this.setState('kept');
    this.close();
    return this.dir;
  }

  /** Releases this instance's descriptor; the layer stays. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.whiteouts.close();
    if (this.held !== null) releaseTmpfs(this.held);
    this.held = null;
  }

  /**
   * A tmpfs in a user namespace lives only as long as this process: its
   * files are copied to STORE/<id>/upper (on the store's disk), which a
   * commit journals from and a kept layer keeps, and it is released.
   */
  private toDisk(): void {
    if (this.held === null) return;
    const disk = openDirectoryNoSymlinks(this.upperName, O.O_RDONLY);
    try {
      copyUpper(disk, this.held.root, this.upperName);
    } finally {
      closeFd(disk);
    }
    releaseTmpfs(this.held);
    this.held = null;
    this.reached = this.upperName;
  }

  /**
   * @internal Throws when the upper was a tmpfs that is no longer mounted
   * (the machine restarted since): its files are lost, and committing only
   * the deletions would be no commit of what the sandbox did.
   */
  checkUpper(): void {
    if (this.diskBound !== 'tmpfs' || upperMounted(this.dir)) return;
    throw new Error(
      `sandlock: the layer ${this.dir} had its files on a tmpfs that is gone (the machine restarted?); not committed: abort it (sandlock cow abort)`,
    );
  }

  /** @internal The log, refreshed, for the commit. */
  whiteoutsForCommit(): Whiteouts {
    this.whiteouts.refresh();
    return this.whiteouts;
  }

  /** @internal */
  setState(state: LayerState): void {
    // The process that commits or aborts a layer owns it from then on: if it
    // dies, the next process to look finishes what it started.
    const owner = state === 'committing' || state === 'aborting' ? thisProcess() : this.meta.owner;
    this.meta = { ...this.meta, state, owner };
    writeDurably(this.dir, META, `${JSON.stringify(this.meta)}\n`);
  }

  private usable(): void {
    if (this.closed) throw new Error(`sandlock: the layer ${this.dir} was already finished`);
  }
}

setOpener((dir) => Layer.open(dir));

/** The store's canonical path, or that of its parent and its name when it is not made yet. */
function resolvedStore(store: string): string {
  try {
    return realpathSync(store);
  } catch {
    return join(realpathSync(dirname(resolve(store))), basename(store));
  }
}

/**
 * The largest maxDisk held on a tmpfs, as a share of the machine's memory: a
 * tmpfs lives in memory and swap, so a bound meant for a disk (tens of
 * gigabytes) would let the sandbox fill the host's memory instead.
 */
const TMPFS_MAX_SHARE = 0.25;

/**
 * Mounts a tmpfs of maxDisk bytes on the new layer's upper (rounded down to
 * whole pages: tmpfs rounds its size up, which would let more than maxDisk
 * land), or says why not: 'measured'. Without CAP_SYS_ADMIN (EPERM), in a
 * user namespace of its own where the kernel allows one. Below one page (a
 * size of 0 is no bound to tmpfs), above a quarter of the machine's memory,
 * with neither, or with kernelBound false, the measured bound applies.
 */
function boundUpper(
  upper: string,
  maxDisk: number,
  kernelBound = true,
): { bound: DiskBound; held?: PrivateTmpfs } {
  const size = maxDisk - (maxDisk % pageSize());
  if (!kernelBound || size === 0 || size > TMPFS_MAX_SHARE * totalmem()) {
    return { bound: 'measured' };
  }
  const mounted = mountTmpfs(upper, {
    size,
    mode: 0o700,
    uid: process.geteuid?.() ?? 0,
    gid: process.getegid?.() ?? 0,
  });
  if (mounted === 0) return { bound: 'tmpfs' };
  const held = privateTmpfs(upper, size);
  return typeof held === 'string' ? { bound: 'measured' } : { bound: 'userns-tmpfs', held };
}

function releaseTmpfs(held: PrivateTmpfs): void {
  closeFd(held.root);
  closeFd(held.namespace);
}

/** What the upper holds, as reserve() counts it: the sizes of its files and symlinks (a file's hard links once). */
function upperSize(upper: string): number {
  let total = 0;
  const seen = new Set<string>();
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && dir !== upper) return;
      throw error;
    }
    for (const name of names) {
      const path = join(dir, name);
      // Removed since it was listed: not in the upper any more.
      const stat = lstatSync(path, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() || stat.isSymbolicLink()) {
        const id = `${stat.dev}:${stat.ino}`;
        if (stat.nlink > 1 && seen.has(id)) continue;
        seen.add(id);
        total += heldBy(stat);
      }
    }
  };
  walk(upper);
  return total;
}

/**
 * The files of `upper` the processes `pids` hold open that have no name
 * left (d_path ` (deleted)`, no link): counted once each. A process gone
 * meanwhile holds nothing.
 */
function heldUnnamed(upper: string, pids: readonly number[]): number {
  const prefix = `${upper}/`;
  const seen = new Set<string>();
  let total = 0;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH') continue;
      throw error;
    }
    for (const fd of fds) {
      const path = `/proc/${pid}/fd/${fd}`;
      let link: string;
      try {
        link = readlinkSync(path);
      } catch {
        continue; // closed meanwhile
      }
      if (!link.startsWith(prefix) || !link.endsWith(' (deleted)')) continue;
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat === undefined || stat.nlink !== 0 || !stat.isFile()) continue;
      const id = `${stat.dev}:${stat.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      total += heldBy(stat);
    }
  }
  return total;
}

/**
 * A file's size, plus the blocks allocated past it: fallocate(2) with
 * FALLOC_FL_KEEP_SIZE allocates beyond the end of file without changing the
 * size (and RLIMIT_FSIZE does not bound it), so the size alone would count
 * nothing of it. A sparse file counts its size.
 */
function heldBy(stat: Stats): number {
  const allocated = stat.blocks * 512;
  const block = stat.blksize > 0 ? stat.blksize : 4096;
  const used = Math.ceil(stat.size / block) * block;
  return allocated > used ? stat.size + (allocated - used) : stat.size;
}

export { type CleanReport, cleanStaleLayers, listLayers } from './stale.js';
