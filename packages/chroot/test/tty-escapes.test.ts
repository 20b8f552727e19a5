// Attacks through /dev/tty in the emulated chroot, which opens the caller's
// controlling terminal: the sandbox may not push input into it (TIOCSTI,
// refused by the filter where the kernel's dev.tty.legacy_tiocsti would
// allow it), while the descriptor is the terminal (the control).
import { execFileSync } from 'node:child_process';
import { closeSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F_GETFL, F_SETFL, fcntl, hostArch, openFlags, openPty } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '../../sandlock/src/index.js';
import { buildRootfs, missing, type Rootfs, runInRoot } from './support/rootfs.js';

const why = missing();
if (why !== null) console.log(`chroot tty escape tests skipped: ${why}`);

describe.skipIf(why !== null)('attacks through /dev/tty in the emulated chroot', () => {
  let fs: Rootfs;
  beforeAll(async () => {
    fs = buildRootfs();
    const source = fileURLToPath(new URL('./support/ttyinject.c', import.meta.url));
    execFileSync('cc', ['-O1', '-static', '-o', join(fs.dir, 'ttyinject'), source]);
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => fs?.remove());

  it('pushes no input into the caller’s terminal through /dev/tty', async () => {
    const pty = openPty();
    fcntl(pty.master, F_SETFL, fcntl(pty.master, F_GETFL) | openFlags(hostArch()).O_NONBLOCK);
    const said = () => {
      const buffer = Buffer.alloc(4096);
      try {
        return buffer.subarray(0, readSync(pty.master, buffer)).toString();
      } catch {
        return '';
      }
    };
    const sandboxed = await Sandbox.builder()
      .chroot(fs.dir)
      .fsMount('/dev/tty:/dev/tty')
      .build()
      .spawn(['/bin/sh', '-c', 'read line'], { stdio: 'pipe', joinable: true });
    try {
      const joined = await sandboxed.join({
        path: '/ttyinject',
        argv: ['ttyinject'],
        env: [],
        stdio: [pty.slave, pty.slave, pty.slave],
        terminal: true,
      });
      expect(await joined.wait()).toEqual({ exitCode: 0, signal: null });
      // An injected X would be echoed by the terminal before the lines.
      expect(said()).toBe('TIOCSTI: EPERM\r\nTIOCGWINSZ: ok\r\n');
    } finally {
      await sandboxed.kill();
      closeSync(pty.slave);
      closeSync(pty.master);
    }
  }, 120_000);
});
