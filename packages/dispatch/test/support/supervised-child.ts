// A Node process that supervises a sandbox, for the lifecycle tests. Run as
//   node --import <dispatch>/src/dev/register.mjs supervised-child.ts MODE FILE
// MODE hold: start `sleep 60` and a setsid'd `sleep 60`, write their pids to
//   FILE, and stay (the test SIGKILLs this process);
// MODE exit: the same, then process.exit(0) at once;
// MODE natural: run `true`, write "done" to FILE and let the event loop end.

import { readFileSync, writeFileSync } from 'node:fs';
import { Supervisor } from '../../src/index.js';
import { eventually, supervise, testModule } from './sandbox.js';

const [mode, file] = process.argv.slice(2);
const supervisor = await Supervisor.start({
  plugins: [{ module: testModule('continue-openat.ts') }],
});

if (mode === 'natural') {
  const { session, finished } = await supervise(supervisor, ['/bin/true']);
  await finished;
  await session!.closed;
  writeFileSync(file!, 'done');
} else {
  const { session } = await supervise(
    supervisor,
    ['/bin/sh', '-c', 'setsid sleep 60 & exec sleep 60'],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const sleeping = () =>
    session!.processes().filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
      } catch {
        return false;
      }
    });
  await eventually(() => sleeping().length === 2);
  writeFileSync(file!, JSON.stringify(sleeping()));
  if (mode === 'exit') process.exit(0);
  setInterval(() => {}, 1000);
}
