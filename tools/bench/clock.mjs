import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from 'sandlock';
import { median } from './stats.mjs';

const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

/** Each clock read in a loop (fewer for the slow ones), ns per call, one line per read. */
const PROGRAM = `
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static volatile long sink;
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
#define TIME(label, n, body) do { \\
    double t0 = now(); \\
    for (long i = 0; i < (n); i++) { body; } \\
    printf("%s\\t%.1f\\n", label, (now() - t0) / (n)); \\
  } while (0)
int main(void) {
  struct timespec ts;
  struct timeval tv;
  TIME("clock_gettime(CLOCK_REALTIME) (vDSO)", 5000000, clock_gettime(CLOCK_REALTIME, &ts); sink += ts.tv_nsec);
  TIME("clock_gettime(CLOCK_MONOTONIC) (vDSO)", 5000000, clock_gettime(CLOCK_MONOTONIC, &ts); sink += ts.tv_nsec);
  TIME("gettimeofday(tv, NULL) (vDSO)", 5000000, gettimeofday(&tv, 0); sink += tv.tv_usec);
  TIME("time(NULL) (vDSO)", 5000000, sink += time(0));
  TIME("syscall(SYS_clock_gettime, CLOCK_REALTIME): a vDSO read where it is not detoured", 20000,
       syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts));
  TIME("syscall(SYS_clock_gettime, CLOCK_MONOTONIC): a syscall through the filter", 200000,
       syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts));
  return 0;
}
`;

function parse(text) {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => line.split('\t'))
      .map(([label, ns]) => [label, Number(ns)]),
  );
}

/**
 * The clock reads of a C program (built with gcc), bare and in a sandbox
 * with `timeStart`, ns per call, `runs` runs each, interleaved.
 */
export async function benchClock(runs = 5) {
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-bench-clock-'));
  try {
    writeFileSync(join(dir, 'clock.c'), PROGRAM);
    const binary = join(dir, 'clock');
    const built = spawnSync('gcc', ['-O2', '-o', binary, join(dir, 'clock.c')], {
      encoding: 'utf8',
    });
    if (built.status !== 0) throw new Error(`gcc: ${built.error?.message ?? built.stderr}`);
    const sandbox = Sandbox.builder()
      .fsRead(...SYSTEM, dir)
      .timeStart('2000-01-01T00:00:00Z')
      .build();
    const samples = {};
    const add = (values, suffix) => {
      for (const [label, ns] of Object.entries(values)) {
        samples[`${label}, ${suffix}`] ??= [];
        samples[`${label}, ${suffix}`].push(ns);
      }
    };
    for (let i = 0; i < runs; i++) {
      const bare = spawnSync(binary, { encoding: 'utf8' });
      if (bare.status !== 0) throw new Error(bare.stderr);
      const confined = await sandbox.run([binary]);
      if (confined.exitCode !== 0) throw new Error(confined.stderr.toString());
      add(parse(bare.stdout), 'bare');
      add(parse(confined.stdout.toString()), 'timeStart');
    }
    const result = Object.fromEntries(
      Object.entries(samples)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, values]) => [
          name,
          { median: median(values), min: Math.min(...values), p90: Math.max(...values), runs },
        ]),
    );
    return {
      title: `clock reads of a C program, ns per call, ${runs} runs each, interleaved`,
      unit: 'ns',
      spread: true,
      result,
      ratios: {},
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
