import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemBuilder } from './helpers.js';

// SpawnOptions.user: the launch switches to the user (CAP_SETUID and CAP_SETGID needed).
const asRoot = process.getuid?.() === 0;
if (!asRoot) console.warn('SpawnOptions.user tests skipped: they need root');

const work = mkdtempSync(join(tmpdir(), 'sandlock-spawn-user-'));
chmodSync(work, 0o777);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!asRoot)('SpawnOptions.user', () => {
  const sandbox = systemBuilder().fsRead('/proc').fsWrite(work).build();
  const user = { uid: 65534, gid: 65534, groups: [65533, 65534], umask: 0o027 };

  it('runs the program as the user, with its groups and umask and no capability', async () => {
    const result = await sandbox.run(
      ['sh', '-c', 'id -u; id -g; id -G; umask; grep -E "^Cap(Prm|Eff)" /proc/self/status'],
      { encoding: 'utf8', user },
    );
    expect(result.stdout.split('\n')).toEqual([
      '65534',
      '65534',
      '65534 65533',
      '0027',
      'CapPrm:\t0000000000000000',
      'CapEff:\t0000000000000000',
      '',
    ]);
    expect(result.exitCode).toBe(0);
  });

  it("creates the user's files, through the reaper too, and reads its own /proc", async () => {
    const file = join(work, 'made');
    const result = await sandbox.run(
      [
        'sh',
        '-c',
        `echo x > ${file} && head -1 /proc/self/status && cat /proc/$$/stat > /dev/null`,
      ],
      { encoding: 'utf8', user },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('Name:\thead\n');
    const made = statSync(file);
    expect([made.uid, made.gid, made.mode & 0o777]).toEqual([65534, 65534, 0o640]);
  });

  it('runs a program it may execute but not read, which reads its own /proc', async () => {
    // Not dumpable (would_dump(), fs/exec.c): the supervisor must still reach its root and cwd.
    const program = join(work, 'xcat');
    copyFileSync('/bin/cat', program);
    chmodSync(program, 0o111);
    const result = await sandbox.run([program, '/proc/self/status'], { encoding: 'utf8', user });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Name:\txcat\n/);
    expect(result.exitCode).toBe(0);
  });

  it('refuses what is not a user', async () => {
    await expect(sandbox.run(['true'], { user: { uid: -1, gid: 0 } })).rejects.toThrow(
      /user must be an object whose uid and gid are ids/,
    );
  });
});
