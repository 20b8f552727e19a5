import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export {
  dropPortSpace,
  type PortMapping,
  type PortSpace,
  portSpaceOf,
  realDestination,
  realPort,
  translateProcNet,
  virtualPort,
} from './port-space.js';
export { type Dialled, onRedirectedConnect, type RedirectedConnect } from './redirect.js';
export { HostResolutionError, resolveNetHosts } from './resolve.js';
export { type Destination, reaches } from './rules.js';
export { unixAllowed } from './unix.js';

// The handler modules, for `Supervisor.start({ modules: [...] })` of
// @sandlock/dispatch: dist/<name>.js beside this file when built,
// src/<name>.ts when run from the sources (vitest).

/**
 * Every connect and addressed send, made on the sandbox's behalf from the
 * checked copies: UDP, ICMP and TCP against netAllow/netDeny, named Unix
 * sockets against the write grants and `unix`.
 */
export const DESTINATIONS_MODULE: URL = moduleBeside(import.meta.url, 'destinations');

/** Binds checked against the bind rules and made by the sandbox's reaper from the checked copies; portRemap. */
export const BINDS_MODULE: URL = moduleBeside(import.meta.url, 'binds');

/** getsockname and getpeername showing a sandbox's virtual ports (portRemap). */
export const PORT_NAMES_MODULE: URL = moduleBeside(import.meta.url, 'port-names');

/** The network's modules, each on when its policy field says so. */
export const NETWORK_MODULES: readonly ModuleRef[] = [
  { module: DESTINATIONS_MODULE, load: () => import('./destinations.js') },
  { module: BINDS_MODULE, load: () => import('./binds.js') },
  { module: PORT_NAMES_MODULE, load: () => import('./port-names.js') },
];
