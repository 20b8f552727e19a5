// The benchmark's module: sees every openat and lets it through.
import { answer } from '../dist/index.js';

export default {
  name: 'bench-continue-openat',
  syscalls: ['openat'],
  handlers: {
    openat: () => answer.continue(),
  },
};
