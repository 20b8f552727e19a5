/** One thing wrong with a policy: the field (or CLI flag) and what was expected. */
export interface PolicyProblem {
  field: string;
  message: string;
}

/** A policy that cannot be built; lists every problem at once. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';

  constructor(readonly problems: readonly PolicyProblem[]) {
    super(
      problems.length === 1
        ? `invalid policy: ${problems[0]!.field}: ${problems[0]!.message}`
        : `invalid policy (${problems.length} problems):\n${problems
            .map((problem) => `  ${problem.field}: ${problem.message}`)
            .join('\n')}`,
    );
  }
}

/** A sandbox that could not be set up or used; `step` names what failed. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';

  constructor(
    message: string,
    readonly step: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
