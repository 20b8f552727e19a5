import { answer, defineModule } from '../../../src/index.js';

/** Sees every openat and lets it through. */
export default defineModule({
  name: 'continue-openat',
  syscalls: ['openat'],
  handlers: {
    openat: () => answer.continue(),
  },
});
