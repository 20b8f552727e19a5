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
export { HostResolutionError, resolveNetHosts } from './resolve.js';
export { type Destination, reaches } from './rules.js';

// The handler modules, for `Supervisor.start({ modules: [...] })` of
// @sandlock/dispatch: dist/<name>.js beside this file when built,
// src/<name>.ts when run from the sources (vitest).

/** Datagrams (UDP, ICMP ping) checked against netAllow/netDeny and sent from the checked copies. */
export const DATAGRAMS_MODULE: URL = moduleBeside(import.meta.url, 'datagrams');

/** Binds checked against the bind rules and made by the sandbox's reaper from the checked copies; portRemap. */
export const BINDS_MODULE: URL = moduleBeside(import.meta.url, 'binds');

/** getsockname and getpeername showing a sandbox's virtual ports (portRemap). */
export const PORT_NAMES_MODULE: URL = moduleBeside(import.meta.url, 'port-names');

/** The network's modules, each on when its policy field says so. */
export const NETWORK_MODULES: readonly ModuleRef[] = [
  { module: DATAGRAMS_MODULE, load: () => import('./datagrams.js') },
  { module: BINDS_MODULE, load: () => import('./binds.js') },
  { module: PORT_NAMES_MODULE, load: () => import('./port-names.js') },
];
