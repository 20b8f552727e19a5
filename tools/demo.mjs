#!/usr/bin/env node
// The README's first command ends here: one real command run through the exec
// stub, confined with no_new_privs, with its own view of its status printed.
import { launch } from '../packages/sys/dist/index.js';

const script =
  'echo "hello from a confined child (pid $$)"; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status';
const launched = launch({
  path: '/bin/sh',
  argv: ['sh', '-c', script],
  env: { PATH: '/usr/bin:/bin' },
  stdio: ['ignore', 'inherit', 'inherit'],
  steps: [{ kind: 'setsid' }, { kind: 'noNewPrivs' }],
});
const exited = new Promise((resolve) => launched.child.on('exit', (code) => resolve(code)));
try {
  await launched.release();
} catch (error) {
  console.error(error.message);
  process.exit(125);
}
process.exit(await exited);
