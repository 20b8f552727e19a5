// Modules that say whether they take the caller's descriptors (pidfd_getfd).
import { answer, defineModule } from '../../../src/index.js';

interface Policy {
  off?: boolean;
  sockets?: boolean;
}

export const taking = defineModule<unknown, Policy>({
  name: 'taking',
  syscalls: ['connect'],
  enabled: (policy) => policy?.off !== true,
  takesDescriptors: (policy) => policy?.sockets === true,
  handlers: { connect: () => answer.continue() },
});

export const walking = defineModule<unknown, Policy>({
  name: 'walking',
  syscalls: ['openat'],
  handlers: { openat: () => answer.continue() },
});
