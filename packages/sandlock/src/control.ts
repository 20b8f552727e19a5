// Signals to a sandbox this process did not start, found by name in the
// registry: they go to its reaper, which passes them to every process of
// the sandbox (process.ts), through a pidfd taken before the reaper's start
// time is checked, so a pid reused meanwhile is never signalled.
import { setTimeout as sleep } from 'node:timers/promises';
import { close, pidfdOpen, pidfdSendSignal, SysError } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import { badSignal, reaperSignal } from './process.js';
import { findSandbox, pruneEnded, type SandboxEntry, stillRuns } from './registry.js';

/** How long a killed sandbox is waited for: only a hang is caught. */
const END_WAIT_MS = 30_000;
const END_POLL_MS = 10;

function noSuchSandbox(name: string): SandboxError {
  return new SandboxError(
    `sandlock: no running sandbox is called '${name}' (sandlock ps lists them)`,
    'lookup',
  );
}

/**
 * Sends `signal` to every process of the running sandbox `name` (SIGKILL by
 * default: then resolves once all of them have ended and the entry is gone).
 * Rejects with a SandboxError whose step is 'lookup' when no running sandbox
 * has that name, and with a TypeError for a signal a sandbox cannot be sent.
 */
export async function killSandbox(
  name: string,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<SandboxEntry> {
  const number = reaperSignal(signal);
  if (number === undefined) throw badSignal(signal);
  const found = await findSandbox(name);
  if (found === null) throw noSuchSandbox(name);
  const { entry, reaper } = found;
  let pidfd: number;
  try {
    pidfd = pidfdOpen(entry.reaperPid);
  } catch (error) {
    if (error instanceof SysError && error.code === 'ESRCH') {
      await pruneEnded(name);
      throw noSuchSandbox(name);
    }
    throw error;
  }
  try {
    if (!stillRuns(reaper)) {
      await pruneEnded(name);
      throw noSuchSandbox(name);
    }
    pidfdSendSignal(pidfd, number);
  } finally {
    close(pidfd);
  }
  if (signal !== 'SIGKILL') return entry;
  const deadline = performance.now() + END_WAIT_MS;
  while (stillRuns(reaper)) {
    if (performance.now() > deadline) {
      throw new SandboxError(
        `sandlock: sandbox '${name}' (reaper pid ${entry.reaperPid}) was sent SIGKILL but has not ended after ${END_WAIT_MS / 1000}s`,
        'kill',
      );
    }
    await sleep(END_POLL_MS);
  }
  await pruneEnded(name);
  return entry;
}
