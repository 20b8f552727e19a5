// Attacks on the exec of an execute-only dynamically linked program in the
// emulated chroot, which runs from a copy naming the root's loader by a
// descriptor injected into the caller (/proc/self/fd/N as its PT_INTERP).
// Under chroot(2) its interpreter is the root's loader and nothing else:
// any other would run inside the process that maps the program, and read
// what the caller may not.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfs, missing, type Rootfs, runInRealRoot, runInRoot } from './support/rootfs.js';

const why = missing() ?? (process.getuid?.() === 0 ? null : 'a real chroot(2) needs root');
if (why !== null) console.log(`chroot exec-only escape tests skipped: ${why}`);

const support = (name: string) => fileURLToPath(new URL(`./support/${name}`, import.meta.url));

describe.skipIf(why !== null)('attacks on an execute-only program in the emulated chroot', () => {
  let fs: Rootfs;
  beforeAll(async () => {
    fs = buildRootfs();
    // /interp says whether it runs as a program or as another's interpreter;
    // /swapper runs a program while a thread puts a file at the descriptor
    // number injected next.
    execFileSync('cc', [
      '-O1',
      '-static',
      '-nostdlib',
      '-fno-pie',
      '-no-pie',
      '-fno-stack-protector',
      '-o',
      join(fs.dir, 'interp'),
      support('interp.c'),
    ]);
    execFileSync('cc', [
      '-O1',
      '-static',
      '-pthread',
      '-o',
      join(fs.dir, 'swapper'),
      support('swapper.c'),
    ]);
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => fs?.remove());

  it("runs it with the root's loader only, while another thread swaps the loader's descriptor", async () => {
    const user = { uid: 1000, gid: 1000 };
    // The controls: the file tells how it runs; the kernel runs the program with its loader.
    expect(runInRealRoot(fs.dir, ['/interp'])).toBe('as a program\n');
    expect(runInRealRoot(fs.dir, ['/swapper', '/dxonly', '/interp'])).toBe('RAN : unknown\n');
    const alone = await runInRoot(fs.dir, ['/dxonly', 'RAN'], { user });
    expect(alone.stdout).toBe('RAN : unknown\n');
    for (let run = 0; run < 5; run++) {
      const result = await runInRoot(fs.dir, ['/swapper', '/dxonly', '/interp'], { user });
      expect(result.stdout).not.toContain('as an interpreter');
    }
  }, 300_000);
});
