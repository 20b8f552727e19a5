// The figures in the README, measured on this machine: memory overshoot,
// monitor cost, CPU throttle accuracy, fork cost under the process limit.
// Needs `pnpm build` first; run with `node packages/resource/bench/measure.mjs`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { close, descendantsOf, launch } from '@sandlock/sys';
// By path: sandlock depends on this package, not the other way round.
import { parsePolicy, prepareConfinement, Sandbox } from '../../sandlock/dist/index.js';
import { PROCESS_LIMIT_MODULE, watchResources } from '../dist/index.js';

const MiB = 1024 ** 2;
const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc', '/dev/null'];
const work = mkdtempSync(join(tmpdir(), 'sandlock-resource-bench-'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const runs = Number(process.env.RUNS ?? 8);

async function watched(argv, limits) {
  const started = performance.now();
  const sandboxed = await Sandbox.builder()
    .fsRead(...SYSTEM, work)
    .build()
    .spawn(argv);
  sandboxed.stdout.resume();
  sandboxed.stderr.resume();
  const watch = watchResources(sandboxed.reaperPid, limits);
  const status = await sandboxed.wait();
  watch.stop();
  return { status, watch, ms: performance.now() - started };
}

async function overshoot() {
  console.log('\n## Memory: how far past 256 MiB a fast allocator gets before the kill\n');
  writeFileSync(
    join(work, 'hog.c'),
    `#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
static size_t size;
static void *touch(void *arg) {
  char *p = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(p, size, MADV_HUGEPAGE);
  for (size_t i = 0; i < size; i += 4096) p[i] = 1;
  return 0;
}
int main(int argc, char **argv) {
  size = (size_t)atol(argv[1]) << 20;
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], 0, touch, 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
  return 0;
}
`,
  );
  let hog = null;
  try {
    execFileSync('cc', ['-O2', '-pthread', '-o', join(work, 'hog'), join(work, 'hog.c')]);
    hog = join(work, 'hog');
  } catch {
    console.log('(no C compiler: the two-thread case is skipped)');
  }
  const cases = [
    ['python3 bytearray(1 GiB)', [PYTHON, '-c', 'b = bytearray(1 << 30)']],
    ['C, 2 threads x 1 GiB, MADV_HUGEPAGE', hog && [hog, '1024']],
  ];
  console.log(
    '| allocator | memory options | overshoot, MiB (median, max) | killed after ms (median) |',
  );
  console.log('|---|---|---|---|');
  for (const [name, argv] of cases) {
    if (!argv) continue;
    for (const [label, memory] of [
      ['default (adaptive)', undefined],
      ['fixed 20 ms', { minInterval: 20, maxInterval: 20 }],
      ['fixed 50 ms', { minInterval: 50, maxInterval: 50 }],
    ]) {
      const over = [];
      const times = [];
      for (let i = 0; i < runs; i++) {
        const { watch, ms } = await watched(argv, { maxMemory: '256M', memory });
        if (!watch.violation) throw new Error(`${name}: not killed`);
        over.push((watch.violation.used - 256 * MiB) / MiB);
        times.push(ms);
      }
      console.log(
        `| ${name} | ${label} | ${median(over).toFixed(1)}, ${Math.max(...over).toFixed(1)} | ${median(times).toFixed(0)} |`,
      );
    }
  }
}

async function cost() {
  console.log('\n## Monitor cost (CPU time of the Node thread), steady state\n');
  const java = (() => {
    try {
      return execFileSync('/bin/sh', ['-c', 'command -v java']).toString().trim();
    } catch {
      return null;
    }
  })();
  writeFileSync(
    join(work, 'Idle.java'),
    'public class Idle { public static void main(String[] a) throws Exception { Thread.sleep(4000); } }',
  );
  const cases = [
    [
      'python3, 100 MiB, 1 process',
      [PYTHON, '-c', 'import time; b = bytearray(100 << 20); time.sleep(4)'],
    ],
    [
      'node, 100 MiB, 1 process',
      [process.execPath, '-e', 'const b = Buffer.alloc(100 << 20, 1); setTimeout(() => {}, 4000)'],
    ],
    ['java, idle, ~20 threads', java && [java, join(work, 'Idle.java')]],
    ['sh + 20 sleeping children', ['/bin/sh', '-c', 'for i in $(seq 20); do sleep 4 & done; wait']],
    [
      'python3, 200 socketpairs (400 descriptors)',
      [
        PYTHON,
        '-c',
        'import socket, time; p = [socket.socketpair() for _ in range(200)]; time.sleep(4)',
      ],
    ],
  ];
  console.log('| sandbox | limits | checks/s | µs CPU per check | % of a CPU |');
  console.log('|---|---|---|---|---|');
  for (const [name, argv] of cases) {
    if (!argv) continue;
    for (const limits of [{ maxMemory: '2G' }, { maxMemory: '160M' }, { maxCpu: 50 }]) {
      const sandboxed = await Sandbox.builder()
        .fsRead(...SYSTEM, work)
        .build()
        .spawn(argv);
      const watch = watchResources(sandboxed.reaperPid, limits);
      await sleep(1500);
      const a = watch.stats;
      const t0 = performance.now();
      await sleep(2000);
      const b = watch.stats;
      const wall = performance.now() - t0;
      const checks = b.checks - a.checks;
      const busy = b.busyMs - a.busyMs;
      console.log(
        `| ${name} | ${JSON.stringify(limits)} | ${((checks / wall) * 1000).toFixed(0)} | ${((busy / checks) * 1000).toFixed(0)} | ${((busy / wall) * 100).toFixed(2)} |`,
      );
      watch.stop();
      await sandboxed.kill().catch(() => {});
      await sandboxed.wait();
    }
  }
}

function schedNs(reaperPid) {
  let total = 0;
  for (const pid of descendantsOf(reaperPid)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {}
  }
  return total;
}

async function cpu() {
  console.log('\n## CPU throttle: achieved share of one CPU (schedstat), 5 s windows\n');
  console.log('| program | maxCpu | achieved % (runs) |');
  console.log('|---|---|---|');
  const loops = {
    'sh busy loop': ['/bin/sh', '-c', 'while :; do :; done'],
    'python3 busy loop': [PYTHON, '-c', 'while True: pass'],
    'two sh busy loops': ['/bin/sh', '-c', 'while :; do :; done & while :; do :; done'],
  };
  for (const [name, argv] of Object.entries(loops)) {
    for (const percent of [10, 25, 50]) {
      const shares = [];
      for (let i = 0; i < 3; i++) {
        const sandboxed = await Sandbox.builder()
          .fsRead(...SYSTEM)
          .build()
          .spawn(argv);
        const watch = watchResources(sandboxed.reaperPid, { maxCpu: percent });
        await sleep(500);
        const ns0 = schedNs(sandboxed.reaperPid);
        const t0 = performance.now();
        await sleep(5000);
        shares.push(((schedNs(sandboxed.reaperPid) - ns0) / 1e6 / (performance.now() - t0)) * 100);
        watch.stop();
        await sandboxed.kill();
        await sandboxed.wait();
      }
      console.log(`| ${name} | ${percent} | ${shares.map((s) => s.toFixed(1)).join(', ')} |`);
    }
  }
}

async function forks() {
  console.log('\n## Process limit: cost of fork + exit + wait (python3, 2000 in a row)\n');
  const supervisor = await Supervisor.start({ modules: [{ module: PROCESS_LIMIT_MODULE }] });
  const script =
    'import os, time\nt = time.perf_counter()\nfor i in range(2000):\n    pid = os.fork()\n    if pid == 0: os._exit(0)\n    os.waitpid(pid, 0)\nprint((time.perf_counter() - t) * 500)';
  const results = new Map();
  for (let round = 0; round < 5; round++) {
    for (const max of [null, 1000, 2]) {
      const policy = { maxProcesses: max };
      const notify = supervisor.notifiedSyscalls({ policy });
      const confinement = prepareConfinement(parsePolicy({ fsRead: SYSTEM }), { notify });
      const launched = launch({
        path: PYTHON,
        argv: [PYTHON, '-c', script],
        env: { PATH: '/usr/bin:/bin' },
        steps: confinement.steps,
        stdio: ['ignore', 'pipe', 'inherit'],
        handshake: true,
      });
      for (const fd of confinement.fds) close(fd);
      let out = '';
      launched.child.stdout.on('data', (chunk) => {
        out += chunk;
      });
      const done = new Promise((resolve) => launched.child.on('close', resolve));
      const report = await launched.ready;
      if (confinement.listener) {
        supervisor.attach(launched.takeListener(), {
          reaperPid: launched.pid,
          programPid: report.pid,
          policy,
        });
      }
      await launched.release();
      await done;
      const key =
        max === null
          ? 'no limit (no supervisor)'
          : `maxProcesses ${max}${max === 2 ? ' (at the cap: walk + pidfds every time)' : ' (below the cap)'}`;
      results.set(key, [...(results.get(key) ?? []), Number(out)]);
    }
  }
  await supervisor.close();
  console.log('| limit | µs per fork+exit+wait (median of 5) |');
  console.log('|---|---|');
  for (const [key, values] of results) console.log(`| ${key} | ${median(values).toFixed(0)} |`);
}

const only = process.argv[2];
try {
  if (!only || only === 'memory') await overshoot();
  if (!only || only === 'cost') await cost();
  if (!only || only === 'cpu') await cpu();
  if (!only || only === 'forks') await forks();
} finally {
  rmSync(work, { recursive: true, force: true });
}
