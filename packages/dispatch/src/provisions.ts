// What one handler module provides to the others of a session
// (WorkerSession.provide), by a key both import from here, so that neither
// imports the other.

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
