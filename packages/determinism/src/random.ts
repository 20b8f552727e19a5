import type { DispatchModule } from '@sandlock/dispatch';

const randomModule: DispatchModule<unknown, { randomSeed?: bigint | null }> = {
  name: 'random',
  syscalls: [],
  enabled: (policy) => policy?.randomSeed != null,
  handlers: {},
};

export default randomModule;
