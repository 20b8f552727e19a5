// The supervisor `create` starts, and the process `exec` leaves behind (commands.ts): its own bundle.
import { containerIdOf, parseOptions } from './args.js';
import { execClient } from './exec-client.js';
import { type LogFormat, RuntimeLog } from './log.js';
import { DEFAULT_ROOT } from './state.js';
import { supervise } from './supervise.js';

const OPTIONS = {
  values: {
    root: '',
    log: '',
    'log-format': '',
    bundle: '',
    process: '',
    'console-socket': '',
  },
  switches: {},
};

const own = parseOptions(process.argv.slice(2), OPTIONS, 'sandlock-oci supervisor');
const log = new RuntimeLog(
  own.options.get('log') ?? null,
  (own.options.get('log-format') ?? 'text') as LogFormat,
);
const root = own.options.get('root') ?? DEFAULT_ROOT;
const id = containerIdOf(own, 'supervisor');
const consoleSocket = own.options.get('console-socket') ?? null;
const processFile = own.options.get('process');
(processFile !== undefined
  ? execClient({ root, id, process: processFile, consoleSocket, log })
  : supervise({ root, id, bundle: own.options.get('bundle') ?? '.', consoleSocket, log })
).catch((error: unknown) => {
  log.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
