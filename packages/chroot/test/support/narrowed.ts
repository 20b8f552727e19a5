// The probe of the narrowed tests (narrowed.c, built here) and what to
// make of its output, for the chroot's tests and the copy-on-write module's.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROBE_SOURCE = fileURLToPath(new URL('./narrowed.c', import.meta.url));

/** The operations, in order; each line of output is "op args: ok" or the errno's name. */
export const OPS = (at: string): string[] => [
  `landlock:${at}/ro:${at}/rw`,
  `cat:${at}/ro/file`,
  `cat:${at}/other/file`,
  `ls:${at}/ro`,
  `ls:${at}/other`,
  `write:${at}/rw/new`,
  `write:${at}/other/new`,
  `write:${at}/ro/new`,
  `mkdir:${at}/rw/d`,
  `mkdir:${at}/other/d`,
  `rename:${at}/rw/a:${at}/rw/b`,
  `rename:${at}/other/file:${at}/other/moved`,
  `rename:${at}/other/file:${at}/rw/moved`,
  `link:${at}/rw/a:${at}/rw/c`,
  `link:${at}/other/file:${at}/rw/l`,
  `unlink:${at}/other/file`,
  `truncate:${at}/rw/a`,
  `truncate:${at}/other/file`,
  `exec:${at}/ro/probe`,
  `exec:${at}/other/probe`,
];

/** Lines of the probe's output, by operation: "ok" or an errno's name. */
export function outcomes(stdout: string): Map<string, string> {
  const lines = stdout.trim().split('\n');
  return new Map(lines.map((line) => line.split(': ') as [string, string]));
}

/** The same operations answered by the kernel (`kernel`) and in a sandbox (`sandboxed`): nothing the first refused succeeds in the second. */
export function refusedByBoth(kernel: string, sandboxed: string): string[] {
  const alone = outcomes(kernel);
  const inside = outcomes(sandboxed);
  const leaks: string[] = [];
  for (const [op, outcome] of alone) {
    if (outcome !== 'ok' && inside.get(op) === 'ok') leaks.push(op);
  }
  return leaks;
}

/** A fresh tree under `dir`: the static probe at its top, in ro/ and in other/. */
export function makeTree(dir: string, probe: string): void {
  for (const sub of ['ro', 'rw', 'other']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'ro/file'), 'readable\n');
  writeFileSync(join(dir, 'rw/a'), 'mine\n');
  writeFileSync(join(dir, 'other/file'), 'not for the narrowed\n');
  for (const at of ['probe', 'ro/probe', 'other/probe']) copyFileSync(probe, join(dir, at));
}

/** The static probe, compiled into `into`. */
export function buildProbe(into: string): string {
  const probe = join(into, 'narrowed-probe');
  execFileSync('cc', ['-static', '-O1', '-o', probe, PROBE_SOURCE]);
  return probe;
}
