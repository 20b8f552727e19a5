// The cost of a retarget answer: a Python loop of chdir, bare, intercepted
// (a module answers continue), and retargeted (chdir('/retarget') runs as
// fchdir of an injected descriptor, closed afterwards). Run after `pnpm build`:
//
//   node packages/dispatch/bench/retarget.mjs [--runs 5] [--iterations 5000]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import { launch } from '@sandlock/sys';
import { Supervisor } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    iterations: { type: 'string', default: '5000' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const runs = Number(values.runs);
const iterations = Number(values.iterations);
const dir = mkdtempSync(join(tmpdir(), 'sandlock-bench-'));

const program = (target) => `
import os, time
os.chdir(${JSON.stringify(dir)})
start = time.perf_counter()
for i in range(${iterations}):
    os.chdir(${JSON.stringify(target)})
print((time.perf_counter() - start) / ${iterations} * 1e6)
`;

const supervisor = await Supervisor.start({
  plugins: [{ module: new URL('./retarget-chdir.mjs', import.meta.url), options: { dir } }],
});

async function once(mode) {
  // The program runs under a reaper, as in a sandbox: a child of this
  // process cannot be retargeted (libuv would wait for its ptrace stops).
  const steps = [
    { kind: 'noNewPrivs' },
    { kind: 'forkReaper', parentPid: process.pid, killTarget: 0 },
  ];
  if (mode !== 'bare') {
    const notify = supervisor.notifiedSyscalls();
    steps.push(seccompFilterStep(compileSandboxFilter({ notify }), { listener: true }));
  }
  const launched = launch({
    path: values.python,
    argv: ['python3', '-c', program(mode === 'retargeted' ? '/retarget' : dir)],
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
  if (mode !== 'bare') {
    supervisor.attach(launched.takeListener(), { reaperPid: launched.pid, programPid: report.pid });
  }
  await launched.release();
  const code = await closed;
  if (code !== 0 || out.trim() === '') throw new Error(`python exited with ${code}: '${out}'`);
  return Number(out);
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const modes = ['bare', 'intercepted', 'retargeted'];
await once('retargeted'); // warm-up
const results = Object.fromEntries(modes.map((mode) => [mode, []]));
for (let run = 0; run < runs; run++) {
  for (const mode of modes) results[mode].push(await once(mode));
}
console.log(`chdir loop, ${iterations} iterations, ${runs} runs (µs per chdir)`);
for (const mode of modes) {
  const list = results[mode];
  console.log(
    `${mode.padEnd(12)} median ${median(list).toFixed(2)}   min ${Math.min(...list).toFixed(2)}   max ${Math.max(...list).toFixed(2)}`,
  );
}
await supervisor.close();
rmSync(dir, { recursive: true, force: true });
