import { type ModuleRef, moduleBeside } from '@sandlock/dispatch/module';

export { HostResolutionError, resolveNetHosts } from './resolve.js';
export { type Destination, reaches } from './rules.js';

// The handler modules, for `Supervisor.start({ modules: [...] })` of
// @sandlock/dispatch: dist/<name>.js beside this file when built,
// src/<name>.ts when run from the sources (vitest).

/** Datagrams (UDP, ICMP ping) checked against netAllow/netDeny and sent from the checked copies. */
export const DATAGRAMS_MODULE: URL = moduleBeside(import.meta.url, 'datagrams');

/** The network's modules, each on when its policy field says so. */
export const NETWORK_MODULES: readonly ModuleRef[] = [
  { module: DATAGRAMS_MODULE, load: () => import('./datagrams.js') },
];
