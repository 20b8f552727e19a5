// What one handler module provides to the others of a session
// (WorkerSession.provide), by a key both import from here, so that neither
// imports the other.
import type { Walked } from '@sandlock/sys';
import type { CallContext, HandlerContext } from './context.js';

/** A name under which a module of a session provides a value of type `T`. */
export interface Provision<T> {
  readonly name: string;
  /** Never set: carries `T`. */
  readonly type?: (value: T) => T;
}

const provision = <T>(name: string): Provision<T> => Object.freeze({ name });

/**
 * A /proc/net socket table's text (`tcp`, `tcp6`, `udp`, `udp6`) as the
 * sandbox sees it: the network's binds module provides it for a sandbox
 * with a private port space (its virtual ports); procfs applies it to the
 * tables it serves. `protocol` is the table's (`tcp` for tcp and tcp6).
 */
export type ProcNetTranslator = (text: string, protocol: 'tcp' | 'udp') => string;

export const PROC_NET_PORTS: Provision<ProcNetTranslator> = provision('proc-net-ports');

/** How a module walks a caller's path through a {@link PathView}. */
export interface PathViewWalk {
  /** The caller's dirfd argument (AT_FDCWD for its cwd). */
  readonly dirfd: number;
  /** Follow a symlink in the last component. */
  readonly followLast: boolean;
}

/**
 * The sandbox's own view of paths where it is not the host's: the chroot
 * module provides it for a sandbox with a root (the root and its mounts,
 * as openat2(RESOLVE_IN_ROOT) walks). A module that walks a caller's path
 * (a Unix socket's) walks it here instead of `ctx.walk`, which walks from
 * the caller's real root. The walk lowers this thread's capabilities to
 * the caller's (none) itself; throws a CallError where there is no view to
 * walk in (the root could not be opened).
 */
export interface PathView {
  walk(ctx: Pick<CallContext, 'openStart'>, path: Buffer, options: PathViewWalk): Walked;
  /**
   * A new O_PATH descriptor (this thread's to close) of the host object
   * shown at `virt` (components from the sandbox's `/`) by a mount, or -1
   * where nothing is mounted: another file system, whose `..` at its top
   * goes back to the directory it is mounted in.
   */
  mountAt(virt: readonly string[]): number;
}

export const PATH_VIEW: Provision<PathView> = provision('path-view');

/**
 * The emulated root of a sandbox (`--chroot`), as the chroot module sees it:
 * for the modules that serve files by the path the sandbox names (the host
 * name's /etc/hostname and /etc/hosts).
 */
export interface RootView {
  /** A host path (a resolved relative path of the caller) as the sandbox sees it, or null outside the root. */
  virtualOf(host: string): string | null;
  /** A regular file of the root by its path inside it, read by the sandbox's reaper; null when it cannot be. */
  read(virtual: string): Buffer | null;
}

export const ROOT_VIEW: Provision<RootView> = provision('root-view');

/** What a {@link LayerView} walk found. */
export interface LayerWalked {
  /**
   * The walk's result: errno (ENOENT for a name the layer deleted), kind,
   * `fd` and `parent` (O_PATH, this thread's), the last `name`. The caller
   * closes it.
   */
  readonly walked: Walked;
  /** Where it is, by components from the sandbox's `/`. */
  readonly path: readonly string[];
  /** Its S_IFMT bits (0: missing): `kind` 'file' is any other type than a directory or symlink. */
  readonly mode: number;
  /**
   * It is the layer's own file, not the tree's beneath: the sandbox's
   * Landlock domain has nothing of the layer's store, so an exec of it
   * runs a copy, checked as the kernel would check the file.
   */
  readonly layered: boolean;
}

/**
 * The merged view of a copy-on-write layer over the sandbox's files (the
 * cow module provides it for a sandbox with a workdir): the upper first,
 * then the tree beneath unless the layer deleted the name. A module that
 * opens files by a caller's path for its own answers (the chroot's exec:
 * the program, its `#!` interpreter, its loader, found before the kernel
 * runs it) walks here first.
 */
export interface LayerView {
  /**
   * `path` walked for the caller of `ctx` (from its cwd or `dirfd` when
   * relative), with the caller's capabilities (none); null when the walk
   * does not end inside the layer's directory (outside the workdir, in a
   * mount of an emulated chroot): the module's own walk decides.
   */
  walk(ctx: HandlerContext, path: Buffer, options: PathViewWalk): LayerWalked | null;
}

export const LAYER_VIEW: Provision<LayerView> = provision('layer-view');
