// A module that is notified of the open calls and always continues: the
// baseline cost of an intercepted open, for the measurements in the README.
import type { DispatchModule } from '@sandlock/dispatch';
import { CONTINUE, OPEN_SYSCALLS } from '../src/synthetic.js';

const noop: DispatchModule<unknown, { noop?: boolean }> = {
  name: 'noop-open',
  syscalls: OPEN_SYSCALLS,
  enabled: (policy) => policy?.noop === true,
  handlers: Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, () => CONTINUE])),
};

export default noop;
