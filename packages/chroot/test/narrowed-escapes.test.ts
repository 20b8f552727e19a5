// Ways out of the tree narrowed() walks for a program that narrows itself
// with Landlock inside the emulated chroot (support/narrowed.c), against
// the kernel under a real chroot(2): a process that inherited the domain
// stays held to it, wherever it was reparented.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProbe, makeTree, OPS, outcomes, refusedByBoth } from './support/narrowed.js';
import { runInRoot } from './support/rootfs.js';

const root = process.getuid?.() === 0;
const compiler = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const why = !root
  ? 'a real chroot(2) needs root'
  : !compiler
    ? 'no C compiler for the static probe'
    : null;
if (why !== null) console.log(`narrowed escape tests skipped: ${why}`);

describe.skipIf(why !== null)('a narrowed program inside a chroot, attacked', () => {
  const base = why === null ? realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-narrowed-'))) : '';
  afterAll(() => {
    if (base !== '') rmSync(base, { recursive: true, force: true });
  });
  const probe = why === null ? buildProbe(base) : '';
  let made = 0;
  const fresh = (name: string) => {
    made += 1;
    const dir = join(base, `${name}-${made}`);
    makeTree(dir, probe);
    return dir;
  };

  it('a child orphaned to a subreaper of the sandbox (its program) is still held to the domain', async () => {
    const [narrow, ...rest] = OPS('');
    // The program makes itself a child subreaper; its child narrows itself,
    // and that child's child, orphaned, is reparented to the program.
    const ops = ['subreaper', 'fork', narrow!, 'orphan', ...rest];
    const alone = execFileSync('chroot', [fresh('kernel'), '/probe', ...ops], { encoding: 'utf8' });
    expect(outcomes(alone).get('subreaper ')).toBe('ok');
    expect(outcomes(alone).get('orphan')).toBe('ok');
    expect(outcomes(alone).get('cat /other/file')).toBe('EACCES');
    const dir = fresh('subreaper');
    const result = await runInRoot(dir, ['/probe', ...ops], { write: ['/ro', '/rw', '/other'] });
    expect(result.stderr).toBe('');
    expect(outcomes(result.stdout).get('orphan')).toBe('ok');
    expect(refusedByBoth(alone, result.stdout)).toEqual([]);
    expect(existsSync(join(dir, 'other/new'))).toBe(false);
    expect(readFileSync(join(dir, 'other/file'), 'utf8')).toBe('not for the narrowed\n');
  }, 180_000);
});
