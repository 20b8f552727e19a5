import { describe, expect, it } from 'vitest';
import { CpuThrottle, MemoryLimit, type MemoryReader } from '../src/index.js';

const MiB = 1024 ** 2;
const entries = (...pids: number[]) => pids.map((pid) => ({ pid }));

function fakeReader(estimates: Record<number, number>, measures: Record<number, number>) {
  const calls = { estimate: 0, measure: 0 };
  const reader: MemoryReader = {
    estimate(pid) {
      calls.estimate += 1;
      return estimates[pid] ?? null;
    },
    measure(pid) {
      calls.measure += 1;
      return measures[pid] ?? null;
    },
  };
  return { reader, calls };
}

describe('MemoryLimit', () => {
  it('uses the cheap upper bound while it is under the limit', () => {
    const { reader, calls } = fakeReader({ 1: 50 * MiB, 2: 60 * MiB }, {});
    const limit = new MemoryLimit(256 * MiB, { reader });
    expect(limit.check(entries(1, 2))).toEqual({
      used: 110 * MiB,
      buffers: 0,
      buffersMs: 0,
      precise: false,
      violation: null,
    });
    expect(calls.measure).toBe(0);
  });

  it('does not kill when only the upper bound is over (pages shared after fork)', () => {
    // A 200 MiB parent forked: each process maps the same 200 MiB.
    const { reader } = fakeReader({ 1: 200 * MiB, 2: 200 * MiB }, { 1: 100 * MiB, 2: 100 * MiB });
    const limit = new MemoryLimit(256 * MiB, { reader });
    expect(limit.check(entries(1, 2))).toEqual({
      used: 200 * MiB,
      buffers: 0,
      buffersMs: 0,
      precise: true,
      violation: null,
    });
  });

  it('reports the limit, the use and the largest process when the precise sum is over', () => {
    const { reader } = fakeReader({ 1: 10 * MiB, 2: 300 * MiB }, { 1: 10 * MiB, 2: 290 * MiB });
    const limit = new MemoryLimit(256 * MiB, { reader });
    const { violation } = limit.check(entries(1, 2));
    expect(violation).toMatchObject({
      reason: 'memory',
      limit: 256 * MiB,
      used: 300 * MiB,
      largest: { pid: 2, used: 290 * MiB },
    });
    expect(violation?.message).toMatch(
      /^sandlock: memory limit 256 MiB exceeded: the sandbox used 300 MiB; largest: pid 2 /,
    );
  });

  it('adds the socket and pipe buffers the descriptors hold, and names them', () => {
    const { reader } = fakeReader({ 1: 10 * MiB }, { 1: 10 * MiB });
    const buffers = { sockets: 200 * MiB, pipes: 60 * MiB };
    const limit = new MemoryLimit(256 * MiB, { reader: { ...reader, buffers: () => buffers } });
    const sample = limit.check(entries(1));
    expect(sample).toMatchObject({ used: 270 * MiB, buffers: 260 * MiB, precise: true });
    expect(sample.violation).toMatchObject({ used: 270 * MiB, buffers: 260 * MiB });
    expect(sample.violation?.message).toMatch(/; socket and pipe buffers 260 MiB$/);
  });

  it('ignores processes that are gone', () => {
    const { reader } = fakeReader({ 1: 10 * MiB }, {});
    expect(new MemoryLimit(MiB * 256, { reader }).check(entries(1, 2, 3)).used).toBe(10 * MiB);
  });

  it('looks again sooner the closer it is to the limit', () => {
    const limit = new MemoryLimit(256 * MiB, { reader: fakeReader({}, {}).reader });
    expect(limit.nextDelay(0)).toBe(16);
    expect(limit.nextDelay(96 * MiB)).toBe(10);
    expect(limit.nextDelay(216 * MiB)).toBe(5);
    expect(limit.nextDelay(255 * MiB)).toBe(5);
    const large = new MemoryLimit(4096 * MiB, { reader: fakeReader({}, {}).reader });
    expect(large.nextDelay(0)).toBe(100);
  });

  it('refuses a limit that is not a positive number of bytes', () => {
    expect(() => new MemoryLimit(0)).toThrow(/invalid memory limit 0/);
    expect(() => new MemoryLimit(1.5)).toThrow(RangeError);
  });
});

/** A sandbox of `threads` busy threads, stopped and continued by the throttle. */
function simulate(percent: number, threads: number, wallMs: number, tick = 20) {
  let cpu = 0;
  let running = true;
  const throttle = new CpuThrottle(
    percent,
    {
      stopAll: () => {
        running = false;
        return true;
      },
      continueAll: () => {
        running = true;
        return true;
      },
    },
    { tick },
  );
  for (let now = 0; now <= wallMs; now += tick) {
    // What the kernel shows: whole clock ticks of 10 ms.
    throttle.update(Math.floor(cpu / 10) * 10, now);
    if (running) cpu += threads * tick;
  }
  return { share: (cpu / wallMs) * 100, throttle };
}

describe('CpuThrottle', () => {
  it.each([
    [25, 1],
    [50, 1],
    [10, 1],
    [75, 1],
    [50, 2],
    [150, 2],
  ])('holds %d %% with %d busy thread(s) to within 2 %%', (percent, threads) => {
    const { share } = simulate(percent, threads, 10_000);
    expect(Math.abs(share - percent) / percent).toBeLessThan(0.02);
  });

  /** A throttle over a fake sandbox that records whether it runs. */
  function recorded(percent: number) {
    const state = { running: true, continues: 0 };
    const throttle = new CpuThrottle(percent, {
      stopAll: () => {
        state.running = false;
        return true;
      },
      continueAll: () => {
        state.running = true;
        state.continues += 1;
        return true;
      },
    });
    return { state, throttle };
  }

  it('never stops an idle sandbox', () => {
    const { state, throttle } = recorded(25);
    // Uses 5 % of a CPU, under its 25 %.
    for (let now = 0; now < 5000; now += 20) throttle.update(now * 0.05, now);
    expect(state.running).toBe(true);
    expect(throttle.stops).toBe(0);
  });

  it('does not continue a sandbox the user paused, and lets it run again on release', () => {
    const { state, throttle } = recorded(50);
    throttle.update(0, 0);
    throttle.update(100, 20); // 100 ms of CPU in 20 ms: in debt, stopped
    expect(state.running).toBe(false);
    throttle.hold();
    for (let now = 40; now < 1000; now += 20) throttle.update(100, now);
    expect(state.continues).toBe(0); // the credit came back, but the user holds it
    throttle.release();
    expect(state.running).toBe(true);
  });

  it('on release in debt, waits for the debt to be paid', () => {
    const { state, throttle } = recorded(10);
    throttle.update(0, 0);
    throttle.hold();
    state.running = false; // the user's pause
    throttle.update(100, 20); // ran 100 ms of CPU just before the pause
    throttle.release();
    expect(state.running).toBe(false);
    let now = 40;
    for (; now < 5000 && !state.running; now += 20) throttle.update(100, now);
    // 100 ms of CPU at 10 % of a CPU (minus its 10 ms burst allowance) is paid in ~0.9 s.
    expect(now).toBeGreaterThan(800);
    expect(now).toBeLessThan(1100);
  });

  it('takes a new share from now on, the credit within the new cap', () => {
    const { state, throttle } = recorded(100);
    throttle.update(0, 0);
    for (let now = 20; now < 1000; now += 20) throttle.update(now, now); // busy at 100 %
    expect(state.running).toBe(true);
    throttle.setPercent(10);
    expect(throttle.percent).toBe(10);
    expect(throttle.balance).toBeLessThanOrEqual(10); // the 10 % cap: 10 ms of burst
    let used = 980;
    for (let now = 1000; now < 3000; now += 20) {
      if (state.running) used += 20;
      throttle.update(used, now);
    }
    // Two seconds at 10 %: about 200 ms of CPU, not the 2000 it had before.
    expect(used - 980).toBeLessThan(300);
    expect(() => throttle.setPercent(0)).toThrow(/invalid CPU share 0/);
    expect(throttle.percent).toBe(10);
  });

  it('refuses a share that is not above 0', () => {
    const control = { stopAll: () => true, continueAll: () => true };
    expect(() => new CpuThrottle(0, control)).toThrow(/invalid CPU share 0/);
    expect(() => new CpuThrottle(Number.NaN, control)).toThrow(RangeError);
  });
});
