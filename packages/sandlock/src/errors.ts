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

/** run() was aborted by its AbortSignal; `cause` is the signal's reason. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
}
