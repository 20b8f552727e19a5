// The syscall-heavy case the supervisor benchmarks share (here and in
// tools/bench): a Python loop of open+close of one file, which Python times
// itself and prints as µs per iteration (one openat each).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The loop's program for `path`: prints µs per open+close. */
export function openLoopProgram(path, iterations) {
  return [
    'import os, time',
    `path = ${JSON.stringify(path)}`,
    't = time.perf_counter()',
    `for _ in range(${iterations}):`,
    '    os.close(os.open(path, os.O_RDONLY))',
    `print((time.perf_counter() - t) / ${iterations} * 1e6)`,
  ].join('\n');
}

/** A file in a fresh directory and the loop's program; `dispose()` removes them. */
export function openLoop(iterations, prefix = 'sandlock-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  const program = openLoopProgram(file, iterations);
  return { dir, file, program, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
