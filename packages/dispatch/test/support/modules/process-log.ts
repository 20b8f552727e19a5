// Appends the process events of every sandbox it is on for to options.log.
import { openSync, writeSync } from 'node:fs';
import { defineModule } from '../../../src/index.js';

let logFd = -1;

export default defineModule<{ log: string }>({
  name: 'process-log',
  // Declared so that the sandbox has a listener; nothing needs a handler.
  syscalls: ['clone', 'clone3', 'vfork'],
  setup(options, env) {
    if (env.thread === 'worker') logFd = openSync(options.log, 'a');
  },
  sessionStart(session) {
    writeSync(logFd, `session-start ${session.programPid}\n`);
  },
  processStart(_session, pid) {
    writeSync(logFd, `start ${pid}\n`);
  },
  processExit(session, pid) {
    writeSync(logFd, `exit ${pid} live ${session.processes.live.size}\n`);
  },
  sessionEnd() {
    writeSync(logFd, 'session-end\n');
  },
});
