// chdir of /retarget runs fchdir of options.dir (a retarget answer); chdir of
// anything else continues.
import { hostArch, openAt, openFlags } from '@sandlock/sys';
import { answer, defineModule } from '../dist/index.js';

const { O_RDONLY, O_DIRECTORY, O_CLOEXEC } = openFlags(hostArch());
let dir = '';

export default defineModule({
  name: 'retarget-chdir',
  syscalls: ['chdir'],
  setup(options) {
    dir = options.dir;
  },
  handlers: {
    chdir(ctx) {
      if (ctx.readPath() !== '/retarget') return answer.continue();
      return answer.retarget('fchdir', ['fd'], {
        fd: openAt(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
      });
    },
  },
});
