// maxDisk under a supervisor without CAP_SYS_ADMIN (uid 1000): where the
// kernel gives it a user namespace, the layer is a tmpfs of maxDisk bytes
// mounted there, and a write past it fails with ENOSPC from the kernel;
// where it does not (user.max_user_namespaces 0, set in a user namespace
// of the test's own: the sysctl is per user namespace, so nothing else on
// the machine is affected), the measured bound applies and is reported.
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ChildEnd, scriptUnder } from '../support/run-child.js';
import { cleanup, scratch } from './helpers.js';

const UID = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('unprivileged maxDisk tests skipped: running a supervisor as uid 1000 needs root');
const run = fileURLToPath(new URL('../support/workdir-run.mjs', import.meta.url));
const AS_USER = ['setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--'];
const MAX = 1024 * 1024;

const root = scratch('cow-unprivileged-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));
let count = 0;

/** A directory of uid 1000 (the workdir, the store's parent). */
function owned(): string {
  const dir = join(root, `d${count++}`);
  mkdirSync(dir);
  chownSync(dir, UID, UID);
  return dir;
}

interface Outcome {
  diskBound: string | null;
  done: string | null;
  exitCode: number | null;
  killedBy: string | null;
  stdout: string;
  stderr: string;
  uid: number;
}

function config(workdir: string, storage: string, script: string): string {
  return JSON.stringify({ workdir, storage, maxDisk: MAX, argv: ['/bin/sh', '-c', script] });
}

function outcome(end: ChildEnd): Outcome {
  if (end.code !== 0) throw new Error(`the supervisor failed (${end.code}): ${end.stderr}`);
  return JSON.parse(end.stdout) as Outcome;
}

// dd's messages to a pipe (a file of the layer would be full too); then what
// the program does after the refusal, and the name the kernel shows for a
// descriptor of a layer file.
const FILL =
  '{ dd if=/dev/zero of=big bs=64k count=100; echo "dd=$?"; } 2>&1 | grep -E "No space left on device|^dd="; rm big; echo kept > small; exec 3<small; readlink /proc/self/fd/3';

describe.skipIf(!asRoot)('maxDisk under a supervisor of uid 1000', () => {
  it('is a tmpfs in a user namespace: ENOSPC past maxDisk, the program goes on', async () => {
    const refusal = [
      '/proc/sys/kernel/unprivileged_userns_clone',
      '/proc/sys/user/max_user_namespaces',
    ]
      .filter((path) => existsSync(path) && readFileSync(path, 'utf8').trim() === '0')
      .join(', ');
    if (refusal !== '') {
      console.log(`skipped: this kernel gives no user namespace to uid ${UID} (${refusal} is 0)`);
      return;
    }
    const dir = owned();
    const store = join(owned(), 'store');
    const result = outcome(await scriptUnder(AS_USER, run, [config(dir, store, FILL)]));
    expect(result.uid).toBe(UID);
    expect(result.diskBound).toBe('userns-tmpfs');
    expect(result.killedBy).toBeNull();
    expect(result.stdout).toBe(
      `dd: error writing 'big': No space left on device\ndd=1\n${dir}/small\n`,
    );
    expect(result.exitCode).toBe(0);
    expect(result.done).toBe('commit');
    expect(readFileSync(join(dir, 'small'), 'utf8')).toBe('kept\n');
    expect(existsSync(join(dir, 'big'))).toBe(false);
  }, 120_000);

  it('is measured, and says so, where the kernel gives it no user namespace', async () => {
    const dir = owned();
    const store = join(owned(), 'store');
    // A user namespace mapping uids 0-1000 to themselves, with
    // user.max_user_namespaces 0 inside: the supervisor (uid 1000 there) may
    // make none beneath it.
    const limited = [
      'unshare',
      '--user',
      '--',
      'sh',
      '-c',
      // Capabilities in the namespace come with an exec once it maps uid 0
      // (execve(2) of a root process: capabilities(7)).
      'read -r _ && exec sh -c \'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"\' limited "$@"',
      'limited',
      ...AS_USER,
    ];
    const mapped = (child: ChildProcess) => {
      const own = readlinkSync('/proc/self/ns/user');
      const pid = child.pid!;
      const deadline = Date.now() + 60_000;
      const wait = () => {
        let theirs: string;
        try {
          theirs = readlinkSync(`/proc/${pid}/ns/user`);
        } catch {
          return; // gone: its output says why
        }
        if (theirs === own) {
          if (Date.now() < deadline) setTimeout(wait, 10);
          return;
        }
        writeFileSync(`/proc/${pid}/uid_map`, `0 0 ${UID + 1}\n`);
        writeFileSync(`/proc/${pid}/gid_map`, `0 0 ${UID + 1}\n`);
        child.stdin!.write('\n');
      };
      wait();
    };
    const end = await scriptUnder(limited, run, [config(dir, store, 'echo small > small')], mapped);
    const result = outcome(end);
    expect(result.uid).toBe(UID);
    expect(result.diskBound).toBe('measured');
    expect(result.exitCode).toBe(0);
    expect(result.done).toBe('commit');
    expect(readFileSync(join(dir, 'small'), 'utf8')).toBe('small\n');
  }, 120_000);
});
