// Refuses opening any path that contains the session policy's `word`, read
// at each call (Session.updatePolicy changes it). For tests.
import { answer, defineModule } from '../../../src/index.js';

export default defineModule<unknown, { word: string }>({
  name: 'policy-word',
  syscalls: ['openat'],
  handlers: {
    openat(ctx) {
      const path = ctx.readPath();
      return path.includes(ctx.session.policy.word) ? answer.errno('EACCES') : answer.continue();
    },
  },
});
