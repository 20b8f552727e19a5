// Attacks on what the chroot module does on a sandbox's behalf, each
// against the kernel under a real chroot(2) of the same tree (the control:
// what the kernel gives a process there is what the emulation must give).
import { chmodSync, chownSync, copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfs, missing, type Rootfs, runInRealRoot, runInRoot } from './support/rootfs.js';

const why = missing() ?? (process.getuid?.() === 0 ? null : 'a real chroot(2) needs root');
if (why !== null) console.log(`chroot escape tests skipped: ${why}`);

describe.skipIf(why !== null)('attacks on the emulated chroot', () => {
  let fs: Rootfs;
  beforeAll(async () => {
    fs = buildRootfs();
    await runInRoot(fs.dir, ['/bin/true']);
  }, 300_000);
  afterAll(() => fs?.remove());

  it("keeps no set-group-ID bit on a file made in another group's set-group-ID directory", async () => {
    // A directory of group 4242 with the set-group-ID bit: a file made there
    // gets group 4242, and a caller outside that group without CAP_FSETID
    // cannot make it set-group-ID (mode_strip_sgid() in fs/inode.c).
    const made = (name: string) => {
      const dir = join(fs.dir, 'data', name);
      mkdirSync(dir);
      chownSync(dir, 0, 4242);
      chmodSync(dir, 0o2777);
      return dir;
    };
    const ops = (name: string) => [
      '/probe',
      'dropcaps',
      `create:/data/${name}/f:2755`,
      `stat:/data/${name}/f`,
      // The control: a mode the umask cuts is set as the caller asked.
      `create:/data/${name}/g:2777`,
      `stat:/data/${name}/g`,
    ];
    made('kernel');
    const alone = runInRealRoot(fs.dir, ops('kernel'));
    expect(alone).toMatch(/^dropcaps : ok\ncreate \S+ 2755: ok\nstat \S+: mode 100755 /);
    expect(alone).toMatch(/\nstat \S+\/g: mode 1007[0-7][0-7] /);
    const dir = made('emulated');
    const result = await runInRoot(fs.dir, ops('emulated'), { write: ['/data'] });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(alone.replaceAll('/kernel', '/emulated'));
    expect(statSync(join(dir, 'f')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(dir, 'f')).gid).toBe(4242);
  }, 120_000);

  it('runs no file of a deny path by swapping the name of an execute-only program it runs', async () => {
    // /xonly may be executed, not read: the caller's own execveat of it by
    // name from its directory, a name another thread may swap for a
    // denied file's meanwhile. The deny path is Landlock's too (the entries
    // around it are granted, not its directory): that exec stays refused.
    // busybox there says RAN as echo; the probe says "RAN : unknown".
    const denied = join(fs.dir, 'secretdir');
    mkdirSync(denied, { recursive: true });
    copyFileSync(join(fs.dir, 'bin/busybox'), join(denied, 'prog'));
    const deny = { deny: ['/secretdir'] };
    const control = await runInRoot(fs.dir, ['/probe', 'dropcaps', 'exec:/secretdir/prog'], deny);
    expect(control.stdout).toMatch(/^dropcaps : ok\nexec \/secretdir\/prog: E(NOENT|ACCES)\n$/);
    const alone = runInRealRoot(fs.dir, ['/probe', 'dropcaps', 'execrace:/secretdir/prog:prog']);
    expect(alone).toBe('dropcaps : ok\nRAN\n');
    for (let run = 0; run < 3; run++) {
      const result = await runInRoot(
        fs.dir,
        ['/probe', 'dropcaps', 'execrace:/xonly:secretdir/prog'],
        deny,
      );
      expect(result.stdout).toMatch(
        /^dropcaps : ok\n(RAN : unknown|execrace \/xonly secretdir\/prog: never ran)\n$/,
      );
    }
  }, 300_000);
});
