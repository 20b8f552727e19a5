// The loop designs measured before choosing one (x86_64 only: the worker's
// epoll_event layout is x86_64's). Run after `pnpm build`:
//
//   node packages/dispatch/bench/loops.mjs [--runs 5] [--sandboxes 1,2,4]
//
// Per design, K sandboxes run a Python open+close loop at once; the result
// is µs per loop iteration (one intercepted openat each), median of runs:
//   per-sandbox recv   one worker per sandbox, blocking RECV only
//   per-sandbox poll   one worker per sandbox, poll then RECV
//   shared poll        one worker, poll over every listener
//   shared epoll       one worker, epoll over every listener
// and each once without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP.

import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import { launch } from '@sandlock/sys';
import { openLoop } from './open-loop.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    sandboxes: { type: 'string', default: '1,2,4' },
    iterations: { type: 'string', default: '20000' },
  },
});
const iterations = Number(values.iterations);
const { program, dispose } = openLoop(iterations, 'sandlock-loops-');
const filter = compileSandboxFilter({ notify: ['openat'] });

async function sandbox(supervised) {
  const launched = launch({
    path: '/usr/bin/python3',
    argv: ['python3', '-c', program],
    env: {},
    steps: supervised
      ? [{ kind: 'noNewPrivs' }, seccompFilterStep(filter, { listener: true })]
      : [{ kind: 'noNewPrivs' }],
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  launched.child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const closed = new Promise((resolve) => launched.child.on('close', resolve));
  await launched.ready;
  return {
    fd: supervised ? launched.takeListener() : -1,
    release: () => launched.release(),
    result: closed.then(() => Number(out)),
  };
}

function startWorker(fds, mode, sync) {
  const worker = new Worker(new URL('./loops-worker.mjs', import.meta.url), {
    workerData: { fds, mode, sync },
  });
  return new Promise((resolve, reject) => {
    worker.on('message', resolve);
    worker.on('error', reject);
  });
}

async function measure(design, count, sync) {
  const boxes = [];
  for (let index = 0; index < count; index++) boxes.push(await sandbox(design !== 'bare'));
  const fds = boxes.map((box) => box.fd);
  const workers =
    design === 'bare'
      ? []
      : design.startsWith('per-sandbox')
        ? fds.map((fd) => startWorker([fd], design.endsWith('recv') ? 'recv' : 'poll', sync))
        : [startWorker(fds, design.endsWith('epoll') ? 'epoll' : 'poll', sync)];
  // Let the workers load and block before the programs start.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const box of boxes) await box.release();
  const results = await Promise.all(boxes.map((box) => box.result));
  await Promise.all(workers);
  return results.reduce((sum, value) => sum + value, 0) / results.length;
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const designs = ['bare', 'per-sandbox recv', 'per-sandbox poll', 'shared poll', 'shared epoll'];
for (const count of values.sandboxes.split(',').map(Number)) {
  console.log(`${count} sandbox(es) at once, µs per iteration (median of ${values.runs}):`);
  const cases = designs.map((design) => [design, true]);
  if (count === 1) cases.push(['per-sandbox recv', false], ['shared poll', false]);
  for (const [design, sync] of cases) {
    const samples = [];
    for (let run = 0; run < Number(values.runs); run++)
      samples.push(await measure(design, count, sync));
    const label = design === 'bare' ? design : `${design}${sync ? '' : ' (no sync wake-up)'}`;
    console.log(
      `  ${label.padEnd(40)} ${median(samples).toFixed(2)}   (${Math.min(...samples).toFixed(2)}–${Math.max(...samples).toFixed(2)})`,
    );
  }
}
dispose();
