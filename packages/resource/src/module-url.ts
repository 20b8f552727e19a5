// The process-limit handler module, for `Supervisor.start({ modules: [{
// module: PROCESS_LIMIT_MODULE }] })` of @sandlock/dispatch: dist/process-limit.js
// beside this package's entry when built, src/process-limit.ts when run from the
// sources (vitest).
import { moduleBeside } from '@sandlock/dispatch';

export const PROCESS_LIMIT_MODULE: URL = moduleBeside(import.meta.url, 'process-limit');

/** The socket-buffers handler module (on with `maxMemory`), beside PROCESS_LIMIT_MODULE. */
export const SOCKET_BUFFERS_MODULE: URL = moduleBeside(import.meta.url, 'socket-buffers');
