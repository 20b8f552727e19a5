// A program the layer holds is executed from a sealed copy the supervisor
// reads; the descriptor the caller gets for the exec must not read it: a
// thread of the caller reads every descriptor while another thread execs an
// execute-only (0111) program written in the layer. The kernel alone (the
// same program on a copy of the tree) lets no thread read it either.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, runIn, runOnCopy, scratch } from './helpers.js';

const ROUNDS = 200;
const source = fileURLToPath(new URL('../support/execrace.c', import.meta.url));
const compiler = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const asRoot = process.getuid?.() === 0;
if (!compiler) console.log('exec-copy test skipped: no C compiler for the static probe');
if (!asRoot) console.log('exec-copy test skipped: a sandbox run as root reads no 0111 file');

const root = scratch('cow-exec-copy-');
afterAll(() => cleanup(root));

const SCRIPT = [
  `cp /bin/true prog && chmod 111 prog && ./execrace ./prog ${ROUNDS}`,
  // A script nobody may read: its interpreter cannot open it either.
  "printf '#!/bin/sh\\necho secret\\n' > s && chmod 111 s && { ./s 2>/dev/null; echo script $?; }",
].join('; ');

describe.skipIf(!compiler || !asRoot)('the descriptor of a program executed from the layer', () => {
  it('reads nothing of an execute-only program, as on the kernel alone', async () => {
    const workdir = join(root, 'w');
    const copy = join(root, 'copy');
    for (const dir of [workdir, copy]) {
      mkdirSync(dir);
      const built = spawnSync(
        'cc',
        ['-O2', '-static', '-pthread', '-o', join(dir, 'execrace'), source],
        {
          encoding: 'utf8',
        },
      );
      expect(built.stderr).toBe('');
    }
    const kernel = await runOnCopy(['/bin/sh', '-c', SCRIPT], copy);
    expect(kernel.stderr).toBe('');
    expect(kernel.stdout).toBe(`ran ${ROUNDS} leaks 0\nscript 2\n`);
    const cow = await runIn(['/bin/sh', '-c', SCRIPT], {
      workdir,
      storage: join(root, 'store'),
      onExit: 'abort',
    });
    expect(cow.stderr).toBe('');
    expect(cow.stdout).toBe(kernel.stdout);
  }, 300_000);
});
