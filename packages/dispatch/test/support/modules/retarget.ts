// Retarget answers for the kernel tests: chdir and execve of paths under
// /retarget/ run fchdir and execveat of descriptors the module opens.
import { readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AT_EMPTY_PATH, hostArch, openAt, openFlags } from '@sandlock/sys';
import { answer, defineModule } from '../../../src/index.js';

interface Options {
  /** chdir('/retarget/dir') goes here. */
  dir: string;
  /** chdir('/retarget/file') is fchdir of this regular file (ENOTDIR). */
  file: string;
  /** execve('/retarget/exec') runs this program. */
  program: string;
  /** fchdir of a descriptor of this directory is retargeted again (the thread is traced already). */
  twice: string;
  /** chdir('/retarget/second') and chdir('/retarget/other'): openat(O_PATH) of that name in here, then fchdir if it is `second`. */
  parent: string;
}

let options: Options;
const { O_RDONLY, O_DIRECTORY, O_CLOEXEC, O_PATH } = openFlags(hostArch());

export default defineModule<Options>({
  name: 'retarget-test',
  // fchdir and execveat: the retargeted calls are notified too, served while the thread is traced.
  syscalls: ['chdir', 'fchdir', 'execve', 'execveat'],
  setup(given) {
    options = given;
  },
  handlers: {
    chdir(ctx) {
      const path = ctx.readPath();
      if (path === '/retarget/dir') {
        return answer.retarget('fchdir', ['fd'], {
          fd: openAt(options.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
        });
      }
      if (path === '/retarget/file') {
        return answer.retarget('fchdir', ['fd'], {
          fd: openAt(options.file, O_RDONLY | O_CLOEXEC),
        });
      }
      if (path === '/retarget/twice') {
        return answer.retarget('fchdir', ['fd'], {
          fd: openAt(options.twice, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
        });
      }
      if (path === '/retarget/nosuch') return answer.retarget('no_such_call', []);
      if (path === '/retarget/second' || path === '/retarget/other') {
        const name = ctx.args[0]! + BigInt('/retarget/'.length);
        const { dev, ino } = statSync(join(options.parent, 'second'), { bigint: true });
        return answer.retarget('openat', ['fd', name, O_PATH | O_DIRECTORY | O_CLOEXEC, 0], {
          fd: openAt(options.parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
          second: { syscall: 'fchdir', args: ['result'], sameAs: { dev, ino } },
        });
      }
      return answer.continue();
    },
    fchdir(ctx) {
      const number = Number(ctx.args[0]! & 0xffffffffn);
      let target = '';
      try {
        target = readlinkSync(`/proc/${ctx.pid}/fd/${number}`);
      } catch {}
      if (target === options.twice) {
        return answer.retarget('fchdir', ['fd'], {
          fd: openAt(options.twice, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
        });
      }
      return answer.continue();
    },
    execve(ctx) {
      const bytes = ctx.readString(ctx.args[0]!);
      if (bytes !== '/retarget/exec' && bytes !== '/retarget/args') return answer.continue();
      const { pathname, argv, envp } = ctx.argsOf('execve');
      // The NUL that ends the caller's own path: an empty path for AT_EMPTY_PATH.
      const end = pathname + BigInt(Buffer.byteLength(bytes));
      const execArgs =
        bytes === '/retarget/args'
          ? [
              { index: 3, value: `replaced ${'x'.repeat(300)}` },
              { index: 0, value: 'renamed' },
              { index: 99, value: 'past argc' },
            ]
          : [];
      return answer.retarget('execveat', ['fd', end, argv, envp, AT_EMPTY_PATH], {
        fd: openAt(options.program, O_RDONLY | O_CLOEXEC),
        execArgs,
      });
    },
    execveat: () => answer.continue(),
  },
});
