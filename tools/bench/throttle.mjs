// How close the CPU throttle (maxCpu) holds a busy sandbox to its share, and
// that it runs at full speed once the throttle stops. The tests check what the
// throttle does (stop, continue); these figures depend on the machine's load.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantsOf } from '@sandlock/sys';
import { Sandbox } from 'sandlock';
import { watchResources } from '../../packages/resource/dist/index.js';

const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const ONE = 'while :; do :; done';
const TWO = 'while :; do :; done & while :; do :; done';
const WINDOW_MS = 2000;

/** CPU time the sandbox's processes ran (ns, /proc/PID/schedstat). */
function ranNs(reaperPid) {
  let ns = 0;
  for (const pid of descendantsOf(reaperPid)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {}
  }
  return ns;
}

/** Percent of one CPU the sandbox ran over each of `windows` windows. */
async function shares(script, maxCpu, windows, { stopFirst = false } = {}) {
  const sandbox = Sandbox.builder()
    .fsRead(...SYSTEM, '/dev/null')
    .build();
  const sandboxed = await sandbox.spawn(['/bin/sh', '-c', script], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const watch = watchResources(sandboxed.reaperPid, { maxCpu });
  try {
    await sleep(300);
    if (stopFirst) {
      watch.stop();
      await sleep(100);
    }
    const out = [];
    for (let i = 0; i < windows; i++) {
      const before = ranNs(sandboxed.reaperPid);
      const t0 = process.hrtime.bigint();
      await sleep(WINDOW_MS);
      const wall = Number(process.hrtime.bigint() - t0);
      out.push(((ranNs(sandboxed.reaperPid) - before) / wall) * 100);
    }
    return out;
  } finally {
    watch.stop();
    await sandboxed.kill().catch(() => {});
    await sandboxed.wait();
  }
}

function row(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[sorted.length >> 1],
    min: sorted[0],
    p90: sorted[sorted.length - 1],
    runs: sorted.length,
  };
}

export async function benchThrottle(windows = 3) {
  const result = {
    'one busy loop, maxCpu 25': row(await shares(ONE, 25, windows)),
    'one busy loop, maxCpu 50': row(await shares(ONE, 50, windows)),
    'two busy loops, maxCpu 50': row(await shares(TWO, 50, windows)),
    'one busy loop, maxCpu 10, throttle stopped': row(
      await shares(ONE, 10, windows, { stopFirst: true }),
    ),
  };
  return {
    title: `CPU throttle: percent of one CPU over ${WINDOW_MS / 1000} s windows`,
    result,
    ratios: {},
    unit: '%',
    spread: true,
  };
}
