// Refuses opening any path that contains options.word, and reports each
// refusal (ctx.refused). For tests.
import { answer, defineModule } from '../../../src/index.js';

interface Options {
  word: string;
}

let word = '';

export default defineModule<Options>({
  name: 'refuser',
  syscalls: ['openat'],
  setup(options) {
    word = options.word;
  },
  handlers: {
    openat(ctx) {
      const path = ctx.readPath();
      if (!path.includes(word)) return answer.continue();
      ctx.refused({ what: () => `open ${path}`, rule: `refuser: paths with '${word}'` });
      return answer.errno('EACCES');
    },
  },
});
