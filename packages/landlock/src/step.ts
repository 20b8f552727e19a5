import type { LaunchStep } from '@sandlock/sys';
import type { LandlockRuleset } from './create.js';

/**
 * The exec stub steps that enforce `ruleset` on the launched program:
 * `landlockRestrictSelf` with the ruleset's flags, or nothing when the status
 * is 'none'. Put them after `noNewPrivs` (landlock_restrict_self() needs
 * no_new_privs or CAP_SYS_ADMIN).
 */
export function restrictSelfSteps(ruleset: LandlockRuleset): LaunchStep[] {
  if (ruleset.fd === null) return [];
  return [{ kind: 'landlockRestrictSelf', rulesetFd: ruleset.fd, flags: ruleset.restrictFlags }];
}
