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
