// The supervisor `create` and `exec` start (commands.ts): its own bundle.
import { containerIdOf, parseOptions } from './args.js';
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
supervise({
  root: own.options.get('root') ?? DEFAULT_ROOT,
  id: containerIdOf(own, 'supervisor'),
  bundle: own.options.get('bundle') ?? '.',
  mode: own.options.has('process') ? 'exec' : 'create',
  process: own.options.get('process') ?? null,
  consoleSocket: own.options.get('console-socket') ?? null,
  log,
}).catch((error: unknown) => {
  log.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
