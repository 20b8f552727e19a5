// The copy-on-write workdir as a handler module of @sandlock/dispatch: every
// path-taking call of a sandbox with a workdir is notified (seccomp cannot
// filter on a path), resolved as the kernel would resolve it in the merged
// view (resolve.ts), and, where it lands inside the workdir, answered on the
// sandbox's behalf: what the layer changed is served from the upper, every
// change is made there by the sandbox's reaper (upper.ts). The sandbox's own
// Landlock domain reads the workdir and has nothing of the layer's store,
// so whatever is left to the kernel (a read of an untouched file, a path
// outside) cannot write the workdir nor reach the layer. The supervisor
// imports this file in its worker threads by URL (COW_MODULE): no side
// effects at import.
import { realpathSync } from 'node:fs';
import {
  type Answer,
  defineModule,
  LAYER_VIEW,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import {
  AT_EMPTY_PATH,
  byPathCall,
  close,
  hasSyscall,
  hostArch,
  openFlags,
  trySyscall,
} from '@sandlock/sys';
import { type CowPolicy, type Ctx, sessions } from './call.js';
import { onAllocate } from './handlers/allocate.js';
import {
  onLink,
  onMetadata,
  onMkdir,
  onMknod,
  onRename,
  onSymlink,
  onTruncate,
  onUnlink,
} from './handlers/change.js';
import { onExec } from './handlers/exec.js';
import { onDescriptorOnly } from './handlers/fd-meta.js';
import { forgetListings, onListing } from './handlers/listing.js';
import { onAccess, onReadlink, onStat, onStatx } from './handlers/look.js';
import { onOpen } from './handlers/open.js';
import { onWatch } from './handlers/watch.js';
import { onChdir, onGetcwd } from './handlers/where.js';
import { onGetXattr, onGetXattrAt, onSetXattr } from './handlers/xattr.js';
import { Layer } from './layer/index.js';
import { brokenLayerView, layerView } from './layer-view.js';
import { identify, type Workdir } from './resolve.js';
import { keepOwner, metaOf } from './upper.js';

const EMPTY = Buffer.from('\0');

const O = openFlags(hostArch());

type Handler = (ctx: Ctx) => Answer;

/** Every call this module answers, by name (those of this architecture are used). */
const HANDLERS: Readonly<Record<string, Handler>> = {
  ...byPathCall<Handler>({
    open: onOpen,
    stat: onStat,
    statx: onStatx,
    access: onAccess,
    readlink: onReadlink,
    unlink: onUnlink,
    mkdir: onMkdir,
    mknod: onMknod,
    symlink: onSymlink,
    link: onLink,
    rename: onRename,
    truncate: onTruncate,
    metadata: onMetadata,
    readXattr: onGetXattr,
    writeXattr: onSetXattr,
    exec: onExec,
    chdir: onChdir,
  }),
  fchmod: onDescriptorOnly,
  fchown: onDescriptorOnly,
  fsetxattr: onDescriptorOnly,
  fremovexattr: onDescriptorOnly,
  getxattrat: onGetXattrAt,
  listxattrat: onGetXattrAt,
  setxattrat: onSetXattr,
  removexattrat: onSetXattr,
  getdents64: onListing,
  getdents: onListing,
  getcwd: onGetcwd,
  inotify_add_watch: onWatch,
  fallocate: onAllocate,
};

/** The calls of this module that exist on this architecture (aarch64 has no open, stat, unlink…). */
export const COW_SYSCALLS: readonly string[] = Object.keys(HANDLERS).filter((name) =>
  hasSyscall(name),
);

function openRoot(path: string): number {
  const fd = trySyscall(
    'openat',
    -100,
    Buffer.from(`${path}\0`),
    O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC,
    0,
  );
  if (fd < 0) throw new Error(`sandlock: cannot open ${path}: errno ${-fd}`);
  return fd;
}

function openWorkdir(policy: CowPolicy): Workdir {
  const given = policy.cowLayer;
  if (given === undefined || given === null) {
    throw new Error('sandlock: a sandbox with a workdir was started without its layer');
  }
  const layer = Layer.open(given.dir, {
    usage: given.usage,
    ...(given.upper !== undefined ? { upper: given.upper } : {}),
  });
  const lowerRoot = openRoot(layer.lower);
  const upperRoot = openRoot(layer.upper);
  const lower = identify(lowerRoot);
  const upper = identify(upperRoot);
  if (typeof lower === 'number' || typeof upper === 'number') {
    close(lowerRoot);
    close(upperRoot);
    throw new Error('sandlock: cannot stat the workdir or its layer');
  }
  const mirrored = mirrorRoot(lowerRoot, upperRoot);
  if (mirrored < 0) {
    close(lowerRoot);
    close(upperRoot);
    throw new Error(
      `sandlock: cannot give the layer's upper the workdir's owner and mode: errno ${-mirrored}`,
    );
  }
  const chroot =
    policy.chroot === null || policy.chroot === undefined
      ? null
      : { fd: openRoot(policy.chroot), path: realpathSync(policy.chroot) };
  return {
    chroot,
    layer,
    lowerPath: layer.lower,
    upperPath: layer.upperName,
    lowerRoot,
    upperRoot,
    lowerId: lower.id,
    upperId: upper.id,
    copies: new Map(),
  };
}

/**
 * The upper's root given the workdir's owner, group and mode: the reaper
 * makes what the sandbox creates at the top of the workdir there, where the
 * kernel then checks it as it would in the workdir. The store (0700, the
 * supervisor's) still keeps every other process from reaching the upper.
 * A supervisor without CAP_CHOWN keeps the owner (then the group) it may
 * not give. -errno.
 */
function mirrorRoot(lowerRoot: number, upperRoot: number): number {
  const meta = metaOf(lowerRoot);
  if (typeof meta === 'number') return meta;
  const owned = keepOwner(upperRoot, meta);
  if (owned < 0) return owned;
  return trySyscall('fchmodat2', upperRoot, EMPTY, meta.mode & 0o7777, AT_EMPTY_PATH);
}

/**
 * On for a sandbox whose policy has a workdir: inside it, the sandbox reads
 * through to the real tree and every change lands in its private layer.
 */
export default defineModule<unknown, CowPolicy>({
  name: 'cow',
  syscalls: COW_SYSCALLS,
  onBehalf: true,
  enabled: (policy) => policy.workdir !== null && policy.workdir !== undefined,
  // Listings and f* calls are served on duplicates of the caller's descriptors.
  takesDescriptors: () => true,
  /**
   * Before the modules that act on paths themselves: a chmod inside the
   * workdir is the layer's, not fs-meta's on the real file; a listing of a
   * changed directory is the merged one, which deterministic-dirs would
   * otherwise read from the lower.
   */
  before: ['fs-meta', 'deterministic-dirs'],
  after: ['proc-pids'],
  handlers: Object.fromEntries(COW_SYSCALLS.map((name) => [name, HANDLERS[name]!])),
  sessionStart(session: WorkerSession<CowPolicy>) {
    try {
      const state = {
        workdir: openWorkdir(session.policy),
        changed: false,
        deterministic: session.policy.deterministicDirs === true,
      };
      sessions.set(session.id, state);
      session.provide(LAYER_VIEW, layerView(state));
    } catch (error) {
      // Every call of the sandbox that needs the layer fails (sessionOf).
      sessions.set(session.id, error as Error);
      session.provide(LAYER_VIEW, brokenLayerView(error as Error));
    }
  },
  sessionEnd(session: WorkerSession<CowPolicy>) {
    const state = sessions.get(session.id);
    sessions.delete(session.id);
    if (state === undefined || state instanceof Error) return;
    close(state.workdir.lowerRoot);
    if (state.workdir.chroot) close(state.workdir.chroot.fd);
    close(state.workdir.upperRoot);
    state.workdir.layer.close();
    forgetListings(session.id);
  },
});
