// Copy-up under a supervisor of uid 1000 (no CAP_CHOWN): the copy keeps
// what the user may give (the README says so): the group where the user is
// in it, its own owner and group otherwise; the mode as the original's.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PYTHON } from '../../../../tools/test-support/index.js';
import { cleanup, scratch } from './helpers.js';

const UID = 1000;
/** A group the supervisor's user is in, and one it is not in. */
const MEMBER = 2000;
const FOREIGN = 3000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('unprivileged-copy-up.test skipped: running a supervisor as uid 1000 needs root');
const run = fileURLToPath(new URL('../support/workdir-run.mjs', import.meta.url));

const root = scratch('cow-unprivileged-copy-up-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

const PROGRAM = `
import os
for path in ['shared/r', 'mine', 'other']:
    with open(path, 'a') as f:
        f.write('more')
    st = os.stat(path)
    print(path, '%o' % (st.st_mode & 0o7777), st.st_uid, st.st_gid)
`;

describe.skipIf(!asRoot)('copy-up under a supervisor without CAP_CHOWN', () => {
  it("keeps the group where the user may give it, and the original's mode", () => {
    const workdir = join(root, 'w');
    mkdirSync(join(workdir, 'shared'), { recursive: true });
    chownSync(workdir, UID, UID);
    chmodSync(join(workdir, 'shared'), 0o777);
    for (const [name, mode, uid, gid] of [
      ['shared/r', 0o666, 0, 0],
      ['mine', 0o2664, UID, MEMBER],
      ['other', 0o664, UID, FOREIGN],
    ] as const) {
      writeFileSync(join(workdir, name), name);
      chownSync(join(workdir, name), uid, gid);
      chmodSync(join(workdir, name), mode);
    }
    const storage = join(root, 'store');
    mkdirSync(storage);
    chownSync(storage, UID, UID);
    chmodSync(storage, 0o700);
    const config = JSON.stringify({
      workdir,
      storage,
      onExit: 'abort',
      argv: [PYTHON, '-c', PROGRAM],
    });
    const out = execFileSync(
      'setpriv',
      [
        `--reuid=${UID}`,
        `--regid=${UID}`,
        `--groups=${MEMBER}`,
        '--inh-caps=-all',
        '--',
        process.execPath,
        run,
        config,
      ],
      { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } },
    );
    const result = JSON.parse(out) as { stdout: string; stderr: string };
    expect(result.stderr).toBe('');
    // Root's file: the user's copy (overlayfs mounted by root would keep root's).
    // A group the user is in: kept, and S_ISGID with it (no S_IXGRP: a write keeps it).
    // A group it is not in: the user's own.
    expect(result.stdout).toBe(
      `shared/r 666 ${UID} ${UID}\nmine 2664 ${UID} ${MEMBER}\nother 664 ${UID} ${UID}\n`,
    );
  }, 120_000);
});
