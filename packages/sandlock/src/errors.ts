export { PolicyError, type PolicyProblem } from '@sandlock/policy';

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
