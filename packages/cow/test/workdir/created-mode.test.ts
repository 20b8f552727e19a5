// The mode of a file the layer creates for a caller whose ids are not the
// supervisor's (the reaper makes it, the supervisor sets its mode after the
// reaper's umask): set with the caller's capabilities, so a set-group-ID
// bit the kernel clears for a caller not in the file's group (no
// CAP_FSETID: mode_strip_sgid() at creation, setattr_should_drop_sgid() on
// chmod) is cleared in the layer too. Against the kernel on a copy of the
// tree, the same program run directly as that user.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON, SYSTEM_DIRS } from '../../../../tools/test-support/index.js';
import { Sandbox } from '../../../sandlock/src/index.js';
import { cleanup, scratch } from './helpers.js';

const GROUP = 2000;
const OTHER = 3000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('created-mode.test skipped: a sandbox of other ids needs a root supervisor');

const root = scratch('cow-created-mode-');
afterAll(() => cleanup(root));

// Made in a set-group-ID directory of a group the caller is not in: the
// file takes the directory's group, and the kernel clears the bit asked for.
const PROGRAM = `
import os
os.umask(0o022)
fd = os.open('f', os.O_CREAT | os.O_WRONLY, 0o2755)
os.close(fd)
st = os.stat('f')
print('%o %d' % (st.st_mode & 0o7777, st.st_gid))
`;

/** A set-group-ID directory of GROUP. */
function groupDir(dir: string): string {
  mkdirSync(dir);
  chownSync(dir, 0, GROUP);
  chmodSync(dir, 0o2755);
  return dir;
}

describe.skipIf(!asRoot)('a file the layer creates for a caller of other ids (the reaper)', () => {
  it('loses the set-group-ID bit as the kernel clears it', async () => {
    // Root with no capabilities, group OTHER only: the caller's ids are not
    // the supervisor's, so the reaper makes the file.
    const copy = groupDir(join(root, 'copy'));
    const direct = spawnSync(
      'setpriv',
      [
        `--regid=${OTHER}`,
        '--clear-groups',
        '--bounding-set=-all',
        '--inh-caps=-all',
        '--',
        PYTHON,
        '-c',
        PROGRAM,
      ],
      { cwd: copy, encoding: 'utf8' },
    );
    expect(direct.stderr).toBe('');
    expect(direct.stdout).toBe(`755 ${GROUP}\n`);

    // The same tree as the copy: the layer's upper takes the workdir's
    // group and bit (it mirrors the workdir's owner for a sandbox of other
    // ids), as the copy's directory gives them to the file.
    const workdir = groupDir(join(root, 'w'));
    const storage = join(root, 'store');
    const result = await Sandbox.builder()
      .fsRead(...SYSTEM_DIRS, '/dev/null', '/proc')
      .workdir(workdir)
      .fsStorage(storage)
      .onExit('abort')
      .cwd(workdir)
      .build()
      .run([PYTHON, '-c', PROGRAM], {
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin', LANG: 'C' },
        user: { uid: 0, gid: OTHER, groups: [] },
      });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(direct.stdout);
  }, 120_000);
});
