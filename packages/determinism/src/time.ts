import type { DispatchModule } from '@sandlock/dispatch';

const timeModule: DispatchModule<
  unknown,
  { timeStart?: number | null; randomSeed?: bigint | null }
> = {
  name: 'time',
  syscalls: [],
  enabled: (policy) => policy?.timeStart != null || policy?.randomSeed != null,
  handlers: {},
};

export default timeModule;
