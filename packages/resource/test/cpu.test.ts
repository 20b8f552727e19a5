import { readFileSync } from 'node:fs';
import { descendantsOf } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../../tools/test-support/index.js';
import { type ResourceWatch, watchResources } from '../src/index.js';
import { type SandboxProcess, systemBuilder } from './helpers.js';

const BUSY = ['/bin/sh', '-c', 'while :; do :; done'];

// What the throttle does to the sandbox's processes, seen in /proc: it stops
// them (state T) and continues them in turn, and leaves them alone when idle,
// paused or no longer throttled. How close it holds a share is speed (the
// machine's load moves it): tools/bench/throttle.mjs measures that.

/** The state letter of a process (R, S, T, …), or null once it is gone. */
function state(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0]!;
  } catch {
    return null;
  }
}

/** The CPU time the sandbox's processes ran, in ns (/proc/PID/schedstat, kept by the scheduler). */
function ranNs(sandboxed: SandboxProcess): number {
  let run = 0;
  for (const pid of descendantsOf(sandboxed.reaperPid)) {
    try {
      run += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // exited meanwhile
    }
  }
  return run;
}

/** The sandbox's processes (the reaper's descendants). */
const processesOf = (sandboxed: SandboxProcess) => descendantsOf(sandboxed.reaperPid);

/** Whether every one of `pids` is stopped. */
const allStopped = (pids: number[]) => pids.length > 0 && pids.every((pid) => state(pid) === 'T');
/** Whether none of `pids` is stopped. */
const noneStopped = (pids: number[]) => pids.length > 0 && pids.every((pid) => state(pid) !== 'T');

/** Deadlines that only catch a hang. */
const HANG = 30_000;

async function throttled(argv: string[], maxCpu: number) {
  // /dev/null: a non-interactive shell reads a background job's stdin from it.
  const sandboxed = await systemBuilder().fsRead('/dev/null').build().spawn(argv);
  const watch = watchResources(sandboxed.reaperPid, { maxCpu }) as ResourceWatch;
  return {
    sandboxed,
    watch,
    async [Symbol.asyncDispose]() {
      watch.stop();
      await sandboxed.kill().catch(() => {});
      await sandboxed.wait();
    },
  };
}

/**
 * Samples the sandbox's processes every few ms until `cpuMs` of CPU time more
 * have run; returns how many samples found one stopped. Measured in the
 * sandbox's CPU time, not wall time: a loaded machine makes it take longer,
 * not differ.
 */
async function stoppedWhileRunning(sandboxed: SandboxProcess, cpuMs: number): Promise<number> {
  const until = ranNs(sandboxed) + cpuMs * 1e6;
  let stopped = 0;
  const ok = await eventually(() => {
    if (processesOf(sandboxed).some((pid) => state(pid) === 'T')) stopped++;
    return ranNs(sandboxed) >= until;
  }, HANG);
  expect(ok, `ran ${cpuMs} ms of CPU`).toBe(true);
  return stopped;
}

describe('CPU throttle on the real kernel', () => {
  it.each([25, 50])('stops and continues a busy loop held to %d %% of a CPU', async (percent) => {
    await using run = await throttled(BUSY, percent);
    const [pid] = processesOf(run.sandboxed);
    // Stopped, continued, and stopped again: the throttle's cycle, twice.
    for (let cycle = 0; cycle < 2; cycle++) {
      expect(await eventually(() => state(pid!) === 'T', HANG)).toBe(true);
      expect(await eventually(() => state(pid!) !== 'T', HANG)).toBe(true);
    }
    expect(run.watch.stats.throttleStops).toBeGreaterThanOrEqual(2);
  });

  it('stops and continues two busy processes together', async () => {
    await using run = await throttled(
      ['/bin/sh', '-c', 'while :; do :; done & while :; do :; done'],
      50,
    );
    // The shell and its background child.
    expect(await eventually(() => processesOf(run.sandboxed).length === 2, HANG)).toBe(true);
    const pids = processesOf(run.sandboxed);
    expect(await eventually(() => allStopped(pids), HANG)).toBe(true);
    expect(await eventually(() => noneStopped(pids), HANG)).toBe(true);
    expect(await eventually(() => allStopped(pids), HANG)).toBe(true);
  });

  it('does not stop an idle sandbox', async () => {
    await using run = await throttled(['/bin/sleep', '60'], 25);
    // 50 looks of the throttle at it.
    expect(await eventually(() => run.watch.stats.checks >= 50, HANG)).toBe(true);
    expect(run.watch.stats.throttleStops).toBe(0);
    expect(state(run.sandboxed.pid)).toBe('S');
  });

  it('leaves a paused sandbox stopped, and resume lets it run again', async () => {
    await using run = await throttled(BUSY, 50);
    expect(await eventually(() => run.watch.stats.throttleStops >= 1, HANG)).toBe(true);
    run.watch.pause();
    const pid = run.sandboxed.pid;
    expect(await eventually(() => state(pid) === 'T', HANG)).toBe(true);
    const ranBefore = ranNs(run.sandboxed);
    const checks = run.watch.stats.checks;
    // While 20 looks of the throttle pass, it is never continued: not a nanosecond more.
    expect(await eventually(() => run.watch.stats.checks >= checks + 20, HANG)).toBe(true);
    expect(state(pid)).toBe('T');
    expect(ranNs(run.sandboxed)).toBe(ranBefore);
    run.watch.resume();
    // It runs again, and the throttle goes on stopping it.
    const stops = run.watch.stats.throttleStops;
    expect(await eventually(() => ranNs(run.sandboxed) > ranBefore, HANG)).toBe(true);
    expect(await eventually(() => run.watch.stats.throttleStops > stops, HANG)).toBe(true);
  });

  it('never stops the sandbox again once stopped', async () => {
    await using run = await throttled(BUSY, 10);
    const pid = run.sandboxed.pid;
    expect(await eventually(() => state(pid) === 'T', HANG)).toBe(true);
    run.watch.stop();
    expect(await eventually(() => state(pid) !== 'T', HANG)).toBe(true);
    const stops = run.watch.stats.throttleStops;
    // At 10 % it would be stopped nine tenths of the time: over 300 ms of its
    // CPU time, samples would find it stopped again and again.
    expect(await stoppedWhileRunning(run.sandboxed, 300)).toBe(0);
    expect(run.watch.stats.throttleStops).toBe(stops);
  });

  it('a throttled sandbox is found stopped while it runs (the check above can fail)', async () => {
    await using run = await throttled(BUSY, 10);
    expect(await stoppedWhileRunning(run.sandboxed, 100)).toBeGreaterThan(0);
  });
});
