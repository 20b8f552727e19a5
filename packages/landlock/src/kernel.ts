// The three Landlock system calls, with errors that name what they were about.

import {
  encodeLandlockNetPortAttr,
  encodeLandlockPathBeneathAttr,
  encodeLandlockRulesetAttr,
  LANDLOCK_RULE_NET_PORT,
  LANDLOCK_RULE_PATH_BENEATH,
  SysError,
  trySyscall,
} from '@sandlock/sys';

export interface HandledAccess {
  handledFs: bigint;
  handledNet: bigint;
  scoped: bigint;
}

/** landlock_create_ruleset(): a new ruleset fd (the kernel always makes it O_CLOEXEC). */
export function createRulesetFd(handled: HandledAccess): number {
  // The full 24-byte struct works on every ABI as long as fields the kernel
  // does not know are zero (copy_struct_from_user() rejects non-zero tails
  // with E2BIG), which the plan guarantees.
  const attr = encodeLandlockRulesetAttr({
    handledAccessFs: handled.handledFs,
    handledAccessNet: handled.handledNet,
    scoped: handled.scoped,
  });
  const fd = trySyscall('landlock_create_ruleset', attr, attr.length, 0);
  if (fd < 0) throw new SysError('landlock_create_ruleset', -fd);
  return fd;
}

/** landlock_add_rule(PATH_BENEATH); `flags` must be 0 (syscalls.c rejects anything else). */
export function addPathRule(
  rulesetFd: number,
  pathFd: number,
  allowed: bigint,
  path: string,
): void {
  const attr = encodeLandlockPathBeneathAttr({ allowedAccess: allowed, parentFd: pathFd });
  const result = trySyscall('landlock_add_rule', rulesetFd, LANDLOCK_RULE_PATH_BENEATH, attr, 0);
  if (result < 0) throw new SysError('landlock_add_rule', -result, `for path '${path}'`);
}

/** landlock_add_rule(NET_PORT); the port is in host byte order. */
export function addPortRule(rulesetFd: number, port: number, allowed: bigint): void {
  const attr = encodeLandlockNetPortAttr({ allowedAccess: allowed, port: BigInt(port) });
  const result = trySyscall('landlock_add_rule', rulesetFd, LANDLOCK_RULE_NET_PORT, attr, 0);
  if (result < 0) throw new SysError('landlock_add_rule', -result, `for TCP port ${port}`);
}
