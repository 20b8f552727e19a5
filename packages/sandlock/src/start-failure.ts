// A sandbox that fails to start: every failure becomes a SandboxError naming
// the step, and what the start had taken is given back, so that a host out of
// descriptors (EMFILE), memory or disk space keeps working once it has them
// again.
import { close, LaunchError, type Launched, REAPER_SIGNAL } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import { SUPERVISOR_VARIABLE } from './nesting.js';

function withoutPrefix(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^sandlock: /, '');
}

/** `error` as a SandboxError: its own step when it has one, else `step`. */
export function startError(error: unknown, step = 'start'): SandboxError {
  if (error instanceof SandboxError) return error;
  if (error instanceof LaunchError) {
    if (error.step === 'seccomp' && error.code === 'EBUSY') {
      // A task's filter chain holds at most one listener (kernel/seccomp.c,
      // has_duplicate_listener()): the sandbox around this process has one.
      return new SandboxError(
        `${error.message}: this process already runs under a supervised sandbox, whose seccomp listener is the only one its filters may have, and ${SUPERVISOR_VARIABLE} does not say where that sandbox's supervisor listens`,
        error.step,
        { cause: error },
      );
    }
    return new SandboxError(error.message, error.step, { cause: error });
  }
  return new SandboxError(`sandlock: ${step} failed: ${withoutPrefix(error)}`, step, {
    cause: error,
  });
}

/** Runs `body`; what it throws becomes a SandboxError of `step`. */
export function atStep<T>(step: string, body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw startError(error, step);
  }
}

/** {@link atStep} for a promise. */
export async function atStepAsync<T>(step: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw startError(error, step);
  }
}

/** Closes each descriptor once: the list is emptied. */
export function closeAll(fds: number[]): void {
  for (const fd of fds.splice(0)) close(fd);
}

/**
 * Ends a launch that will not become a sandbox, and waits until its child is
 * reaped and its pipes are closed. Before exec (`released` false) only the
 * stub and the program's process exist: SIGKILL to the stub, and the
 * program's parent-death signal ends the other. After exec the program may
 * have started others: the reaper kills them all first.
 */
export async function abandon(launched: Launched, released: boolean): Promise<void> {
  launched.child.kill(released ? REAPER_SIGNAL.killAll : 'SIGKILL');
  await launched.closed;
}
