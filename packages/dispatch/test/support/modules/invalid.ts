// Modules the supervisor must refuse.
import { answer } from '../../../src/index.js';

export const mounter = {
  name: 'mounter',
  syscalls: ['openat', 'mount'],
  handlers: { mount: () => answer.errno('EPERM') },
};

export const notAModule = 42;
