import { collectBytes, type Finished } from '../../../tools/test-support/index.js';
import { type Launched, type LaunchOptions, launch } from '../src/index.js';

/** Launches, releases and waits for the exit. */
export async function launchAndWait(
  options: LaunchOptions,
  beforeRelease?: (launched: Launched) => void | Promise<void>,
): Promise<Finished<Buffer>> {
  const launched = launch(options);
  const finished = collectBytes(launched.child);
  if (beforeRelease) {
    await launched.ready;
    await beforeRelease(launched);
  }
  await launched.release();
  return finished;
}
