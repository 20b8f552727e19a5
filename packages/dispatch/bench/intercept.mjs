// Per-intercepted-call cost of the supervisor: a Python loop of open+close
// of one file, bare and with openat intercepted by a module that answers
// continue. Run after `pnpm build`:
//
//   node packages/dispatch/bench/intercept.mjs [--runs 5] [--iterations 20000]
//        [--sandboxes 1] [--workers N]
//
// With --sandboxes K, K sandboxes run the loop at the same time; --workers
// caps the supervisor's worker threads (1 = one shared loop).

import { parseArgs } from 'node:util';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import { launch } from '@sandlock/sys';
import { Supervisor } from '../dist/index.js';
import { openLoop } from './open-loop.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    iterations: { type: 'string', default: '20000' },
    sandboxes: { type: 'string', default: '1' },
    workers: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const runs = Number(values.runs);
const iterations = Number(values.iterations);
const sandboxes = Number(values.sandboxes);

const { program, dispose } = openLoop(iterations, 'sandlock-bench-');

const supervisor = await Supervisor.start({
  plugins: [{ module: new URL('./continue-openat.mjs', import.meta.url) }],
  ...(values.workers !== undefined ? { workers: Number(values.workers) } : {}),
});

/** Starts one Python loop; resolves with its µs per iteration. */
async function start(intercepted) {
  const steps = [{ kind: 'noNewPrivs' }];
  if (intercepted) {
    const notify = supervisor.notifiedSyscalls();
    steps.push(seccompFilterStep(compileSandboxFilter({ notify }), { listener: true }));
  }
  const launched = launch({
    path: values.python,
    argv: ['python3', '-c', program],
    env: {},
    steps,
    stdio: ['ignore', 'pipe', 'inherit'],
    handshake: true,
  });
  let out = '';
  launched.child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const closed = new Promise((resolve) => launched.child.on('close', resolve));
  const report = await launched.ready;
  if (intercepted) {
    supervisor.attach(launched.takeListener(), {
      reaperPid: launched.pid,
      programPid: report.pid,
    });
  }
  return {
    release: () => launched.release(),
    result: closed.then((code) => {
      if (code !== 0) throw new Error(`python exited with ${code}`);
      return Number(out);
    }),
  };
}

async function round(intercepted) {
  const started = [];
  for (let index = 0; index < sandboxes; index++) started.push(await start(intercepted));
  await Promise.all(started.map((one) => one.release()));
  const results = await Promise.all(started.map((one) => one.result));
  return results.reduce((sum, value) => sum + value, 0) / results.length;
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const fmt = (value) => value.toFixed(2);

// A warm-up round: also lets the supervisor start the workers it spreads
// concurrent sandboxes over (they start on demand).
await round(true);
await new Promise((resolve) => setTimeout(resolve, 500));

const bare = [];
const supervised = [];
for (let run = 0; run < runs; run++) {
  bare.push(await round(false));
  supervised.push(await round(true));
}
const overhead = supervised.map((value, index) => value - bare[index]);
const line = (name, list) =>
  `${name.padEnd(34)} median ${fmt(median(list))} µs   min ${fmt(Math.min(...list))}   max ${fmt(Math.max(...list))}`;
console.log(
  `open+close loop, ${iterations} iterations, ${runs} runs, ${sandboxes} sandbox(es) at once, workers ${values.workers ?? 'default'}`,
);
console.log(line('bare (per iteration)', bare));
console.log(line('openat intercepted (per iteration)', supervised));
console.log(line('per intercepted call', overhead));
await supervisor.close();
dispose();
