// Refuses opening any path that contains options.word, and records the
// paths it saw. For tests.
import { writeSync } from 'node:fs';
import { answer, defineModule } from '../../../src/index.js';

interface Options {
  word: string;
  /** An fd to append each resolved path to (a line each), or undefined. */
  logFd?: number;
}

let options: Options;

export default defineModule<Options>({
  name: 'path-guard',
  syscalls: ['openat', 'open'],
  setup(given) {
    options = given;
  },
  handlers: {
    openat(ctx) {
      const path = ctx.resolvePath();
      if (options.logFd !== undefined) writeSync(options.logFd, `${path}\n`);
      return path.includes(options.word) ? answer.errno('EACCES') : answer.continue();
    },
    open(ctx) {
      const path = ctx.resolvePath();
      return path.includes(options.word) ? answer.errno('EACCES') : answer.continue();
    },
  },
});
