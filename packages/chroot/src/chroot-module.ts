// The emulated chroot as a handler module of @sandlock/dispatch: every
// path-taking call of a sandbox with a root is notified (seccomp cannot
// filter on a path), walked inside the root and its mounts (root.ts), and
// answered on the sandbox's behalf (handlers.ts). Nothing is left to the
// kernel's walk from the host's root, but descriptor-only calls and paths
// into a mounted /proc. The sandbox's Landlock domain grants nothing outside
// the root but the mounts: the backstop under every answer. The supervisor
// imports this file in its worker threads by URL (CHROOT_MODULE): no side
// effects at import.

import { fstatSync, readFileSync } from 'node:fs';
import {
  type Answer,
  defineModule,
  PATH_VIEW,
  ROOT_VIEW,
  type RootView,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import {
  type Arch,
  byPathCall,
  close,
  hasSyscall,
  hostArch,
  openFlags,
  S_IFMT,
  S_IFREG,
} from '@sandlock/sys';
import { brokerOf, type ChrootPolicy, type Ctx, sessions } from './call.js';
import { onFanotifyMark } from './fanotify.js';
import { onFileAttr } from './file-attr.js';
import {
  onAccess,
  onChroot,
  onGetcwd,
  onLink,
  onMetadata,
  onMkdir,
  onMknod,
  onOpen,
  onReadlink,
  onRename,
  onStat,
  onStatfs,
  onStatx,
  onSymlink,
  onTruncate,
  onUnlink,
  onUselib,
} from './handlers.js';
import { InterpreterNames } from './interpreter-name.js';
import { onPidfdGetfd } from './narrowed-open.js';
import { brokenView, pathView } from './path-view.js';
import { onChdir, onExec } from './retargeted.js';
import { Root } from './root.js';
import { ScriptOpens } from './script-opens.js';
import { onWatch } from './watch.js';
import { onXattr } from './xattr.js';

type Handler = (ctx: Ctx) => Answer;

/** Every path-taking call, by name (those of this architecture are used). */
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
    readXattr: onXattr,
    writeXattr: onXattr,
    exec: onExec,
    chdir: onChdir,
  }),
  statfs: onStatfs,
  getcwd: onGetcwd,
  getxattrat: onXattr,
  setxattrat: onXattr,
  listxattrat: onXattr,
  removexattrat: onXattr,
  file_getattr: onFileAttr,
  inotify_add_watch: onWatch,
  fanotify_mark: onFanotifyMark,
  // A path no handler walks: the host kernel's ENOSYS, or refused rather than
  // looked up from the host's root (mount, acct, swapon, name_to_handle_at…
  // are in the default deny list).
  uselib: onUselib,
  chroot: onChroot,
  // No path: refused to a narrowed caller (narrowed-open.ts).
  pidfd_getfd: onPidfdGetfd,
};

/** The calls of this module that exist on `arch` (aarch64 has no open, stat, unlink…). */
export function chrootSyscallsOf(arch: Arch): readonly string[] {
  return Object.keys(HANDLERS).filter((name) => hasSyscall(name, arch));
}

/** The calls of this module that exist on this architecture. */
export const CHROOT_SYSCALLS: readonly string[] = chrootSyscallsOf(hostArch());

const O = openFlags(hostArch());

/** What the other modules of the session see of the root (ROOT_VIEW). */
function rootView(root: Root, session: WorkerSession<ChrootPolicy>): RootView {
  return {
    virtualOf: (host) => {
      const virt = root.virtualOf(host);
      return virt === null ? null : `/${virt.join('/')}`;
    },
    read: (virtual) => {
      const found = root.walk(virtual, null, { followLast: true });
      try {
        const broker = session.onBehalf === null ? null : brokerOf({ session });
        if (found.errno !== 0 || found.proc || found.mode !== S_IFREG || broker === null)
          return null;
        const fd =
          found.parent >= 0
            ? broker.openat(
                found.parent,
                Buffer.from(found.name, 'latin1'),
                // The name may be a FIFO by now (renamed over it since the walk):
                // neither the reaper's open nor this thread's read may wait on it.
                O.O_RDONLY | O.O_NOFOLLOW | O.O_NONBLOCK,
              )
            : -1;
        if (fd < 0) return null;
        try {
          if ((fstatSync(fd).mode & S_IFMT) !== S_IFREG) return null;
          return readFileSync(fd);
        } finally {
          close(fd);
        }
      } finally {
        found.close();
      }
    },
  };
}

/** On for a sandbox whose policy has a root: the sandbox sees it as `/`. */
export default defineModule<unknown, ChrootPolicy>({
  name: 'chroot',
  syscalls: CHROOT_SYSCALLS,
  onBehalf: true,
  enabled: (policy) => policy.chroot !== null && policy.chroot !== undefined,
  /**
   * After the modules that answer made-up files by name (/proc's, the host
   * name's): a mounted /proc keeps its process hiding and virtual files; an
   * unmounted one is nothing they serve (they are off without /proc in the
   * policy). After cow, which walks the caller's paths from the root when
   * there is a workdir over it, and leaves the rest to this one. Before
   * fs-meta, which would act on the host's path.
   */
  after: ['cow', 'proc-pids', 'proc-host', 'hostname', 'num-cpus', 'meminfo'],
  before: ['fs-meta', 'deterministic-dirs'],
  handlers: Object.fromEntries(CHROOT_SYSCALLS.map((name) => [name, HANDLERS[name]!])),
  sessionStart(session: WorkerSession<ChrootPolicy>) {
    try {
      const { chroot, fsMount } = session.policy;
      const root = Root.open(chroot!, fsMount ?? []);
      const state = {
        root,
        exes: new Map(),
        interpreters: new InterpreterNames(),
        scripts: new ScriptOpens(),
      };
      sessions.set(session.id, state);
      session.provide(PATH_VIEW, pathView(state));
      session.provide(ROOT_VIEW, rootView(root, session));
    } catch (error) {
      sessions.set(session.id, error as Error);
      session.provide(PATH_VIEW, brokenView(error as Error));
    }
  },
  sessionEnd(session: WorkerSession<ChrootPolicy>) {
    const state = sessions.get(session.id);
    sessions.delete(session.id);
    if (state !== undefined && !(state instanceof Error)) {
      state.root.close();
      state.interpreters.remove();
      state.scripts.close();
    }
  },
});
