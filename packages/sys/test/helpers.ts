import type { ChildProcess } from 'node:child_process';
import { type Launched, type LaunchOptions, launch } from '../src/index.js';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Collects a child's stdout/stderr and resolves at exit. */
export function collect(child: ChildProcess): Promise<Finished> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }),
    );
  });
}

/** Launches, releases and waits for the exit. */
export async function launchAndWait(
  options: LaunchOptions,
  beforeRelease?: (launched: Launched) => void | Promise<void>,
): Promise<Finished> {
  const launched = launch(options);
  const finished = collect(launched.child);
  if (beforeRelease) {
    await launched.ready;
    await beforeRelease(launched);
  }
  await launched.release();
  return finished;
}
