import { readFileSync } from 'node:fs';
import { descendantsOf } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { type ResourceWatch, watchResources } from '../src/index.js';
import { type SandboxProcess, systemBuilder } from './helpers.js';

const BUSY = ['/bin/sh', '-c', 'while :; do :; done'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The share of one CPU the sandbox's processes ran over `ms`, in percent, and
 * the share they spent runnable but waiting for a CPU (busy with other work),
 * from /proc/PID/schedstat (nanoseconds, kept by the scheduler): another
 * source than the throttle's own clock-tick figures.
 */
async function measure(sandboxed: SandboxProcess, ms: number) {
  const read = () => {
    let run = 0;
    let wait = 0;
    for (const pid of descendantsOf(sandboxed.reaperPid)) {
      try {
        const [onCpu, queued] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
        run += Number(onCpu);
        wait += Number(queued);
      } catch {
        // exited meanwhile
      }
    }
    return { run, wait };
  };
  const before = read();
  const t0 = performance.now();
  await sleep(ms);
  const after = read();
  const wall = (performance.now() - t0) * 1e6;
  return {
    share: ((after.run - before.run) / wall) * 100,
    waiting: ((after.wait - before.wait) / wall) * 100,
  };
}

/**
 * Checks `percent` within ±10 %: never above; below only by what the sandbox
 * spent waiting for a CPU while it was allowed to run (other tests, other
 * work on the machine: the throttle is a cap, not a reservation).
 */
function expectShare({ share, waiting }: { share: number; waiting: number }, percent: number) {
  expect(share).toBeLessThan(percent * 1.1);
  expect(share + waiting).toBeGreaterThan(percent * 0.9);
}

const measureShare = async (sandboxed: SandboxProcess, ms: number) =>
  (await measure(sandboxed, ms)).share;

function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0]!;
}

async function throttled(argv: string[], maxCpu: number) {
  const sandboxed = await systemBuilder().build().spawn(argv);
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

describe('CPU throttle on the real kernel', () => {
  it.each([25, 50])('holds a busy loop to %d %% of a CPU within ±10 %%', async (percent) => {
    await using run = await throttled(BUSY, percent);
    await sleep(300);
    const measured = await measure(run.sandboxed, 3000);
    const { checks, busyMs } = run.watch.stats;
    console.log(
      `busy loop at ${percent} %: ran ${measured.share.toFixed(1)} %, waited ${measured.waiting.toFixed(1)} % ` +
        `(${checks} checks, ${((busyMs / checks) * 1000).toFixed(0)} µs each)`,
    );
    expectShare(measured, percent);
  });

  it('holds two busy processes together to 50 % of one CPU', async () => {
    await using run = await throttled(
      ['/bin/sh', '-c', 'while :; do :; done & while :; do :; done'],
      50,
    );
    await sleep(300);
    const measured = await measure(run.sandboxed, 3000);
    console.log(`two busy loops at 50 %: ran ${measured.share.toFixed(1)} %`);
    expectShare(measured, 50);
  });

  it('does not stop an idle sandbox', async () => {
    await using run = await throttled(['/bin/sleep', '1'], 25);
    await sleep(500);
    expect(run.watch.stats.throttleStops).toBe(0);
  });

  it('leaves a paused sandbox stopped, and resume lets it run again', async () => {
    await using run = await throttled(BUSY, 50);
    await sleep(200);
    run.watch.pause();
    await sleep(50);
    for (let i = 0; i < 10; i++) {
      expect(state(run.sandboxed.pid)).toBe('T');
      await sleep(50);
    }
    const paused = await measureShare(run.sandboxed, 300);
    expect(paused).toBeLessThan(4);
    run.watch.resume();
    await sleep(100);
    const share = await measureShare(run.sandboxed, 1500);
    expect(share).toBeGreaterThan(35);
    expect(share).toBeLessThan(65);
  });

  it('lets the sandbox run at full speed once stopped', async () => {
    await using run = await throttled(BUSY, 10);
    await sleep(300);
    run.watch.stop();
    await sleep(100);
    expect(await measureShare(run.sandboxed, 500)).toBeGreaterThan(80);
  });
});
