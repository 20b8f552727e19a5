// A program in a copy-on-write workdir that narrows itself with Landlock
// (the chroot tests' probe: reads of ro/, anything in rw/, nothing else),
// against the kernel on a copy of the tree (a sandbox with the same read
// rules that may write the copy): what its own domain refuses stays refused
// when the layer answers on its behalf, and what the layer would do with the
// sandbox's wider authority (a change in the layer, a descriptor of it) is
// refused too (fail closed). What stays the caller's own call (a read of an
// untouched file, an exec of one) is its domain's to decide.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildProbe,
  makeTree,
  OPS,
  outcomes,
  refusedByBoth,
} from '../../../chroot/test/support/narrowed.js';
import { cleanup, runIn, runOnCopy, scratch } from './helpers.js';

const compiler = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
if (!compiler) console.log('narrowed workdir test skipped: no C compiler for the static probe');

/** The launcher runs only programs of the read rules; a shell of the system's then runs the workdir's. */
function viaShell(program: string, ops: string[]): string[] {
  return ['/bin/sh', '-c', 'exec "$0" "$@"', program, ...ops];
}

describe.skipIf(!compiler)('a program that narrows itself with Landlock in a workdir', () => {
  const root = scratch();
  afterAll(() => cleanup(root));

  it('gets nothing done on its behalf that its domain refuses', async () => {
    const probe = buildProbe(root);
    const copy = join(root, 'copy');
    makeTree(copy, probe);
    const direct = await runOnCopy(viaShell(join(copy, 'probe'), OPS(copy)), copy);
    expect(direct.stderr).toBe('');
    const alone = direct.stdout.replaceAll(copy, '');
    expect(outcomes(alone).get('write /other/new')).toBe('EACCES');
    expect(outcomes(alone).get('write /rw/new')).toBe('ok');

    const tree = join(root, 'cow');
    makeTree(tree, probe);
    const layered = await runIn(viaShell(join(tree, 'probe'), OPS(tree)), {
      workdir: tree,
      storage: join(root, 'store'),
      onExit: 'abort',
      end: 'dry-run',
    });
    expect(layered.stderr).toBe('');
    expect(layered.exitCode).toBe(0);
    const inside = layered.stdout.replaceAll(tree, '');
    expect(refusedByBoth(alone, inside)).toEqual([]);
    expect(inside).toBe(
      [
        'landlock /ro /rw: ok',
        'cat /ro/file: ok',
        'cat /other/file: EACCES',
        'ls /ro: ok',
        'ls /other: EACCES',
        'write /rw/new: EACCES',
        'write /other/new: EACCES',
        'write /ro/new: EACCES',
        'mkdir /rw/d: EACCES',
        'mkdir /other/d: EACCES',
        'rename /rw/a /rw/b: EXDEV',
        'rename /other/file /other/moved: EXDEV',
        'rename /other/file /rw/moved: EXDEV',
        'link /rw/a /rw/c: EXDEV',
        'link /other/file /rw/l: EXDEV',
        'unlink /other/file: EACCES',
        'truncate /rw/a: EACCES',
        'truncate /other/file: EACCES',
        'exec /ro/probe: ok',
        'exec /other/probe: EACCES',
        '',
      ].join('\n'),
    );
    expect(layered.workdir?.changes ?? []).toEqual([]);
  }, 180_000);
});
