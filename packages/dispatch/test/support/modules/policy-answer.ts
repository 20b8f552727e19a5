// getppid answered from the session's policy, to tell which session's chain
// answered a call: `{ ppid: N }` answers N, anything else continues.
import { answer, defineModule } from '../../../src/index.js';

interface AnswerPolicy {
  ppid?: number;
  plugin?: number;
}

/** Built-in in the delegation tests. */
export const policyAnswer = defineModule<unknown, AnswerPolicy>({
  name: 'policy-answer',
  syscalls: ['getppid'],
  handlers: {
    getppid: (ctx) =>
      ctx.session.policy?.ppid === undefined
        ? answer.continue()
        : answer.value(ctx.session.policy.ppid),
  },
});

/** Also answers getppid, from `plugin`: a plugin in the delegation tests. */
export const pluginAnswer = defineModule<unknown, AnswerPolicy>({
  name: 'plugin-answer',
  syscalls: ['getppid'],
  handlers: {
    getppid: (ctx) =>
      ctx.session.policy?.plugin === undefined
        ? answer.continue()
        : answer.value(ctx.session.policy.plugin),
  },
});

/** Notified getpgrp, continued; a delegated policy with `{ pgrp: true }` needs it. */
export const needsGetpgrp = defineModule<unknown, { pgrp?: boolean }>({
  name: 'needs-getpgrp',
  syscalls: ['getpgrp'],
  enabled: (policy) => policy?.pgrp === true,
  handlers: { getpgrp: () => answer.continue() },
});
