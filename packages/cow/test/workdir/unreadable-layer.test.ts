// A layer holding what its owner cannot read, under a supervisor that is
// not root: the sandbox makes a directory 0111 (no listing), one 0600 (no
// lookup beneath) and files of mode 0. The dry run lists them, a commit
// (deferred, or of a kept layer later) carries them with their modes and
// contents, an abort leaves nothing in the store; with the upper on disk
// and on a tmpfs (maxDisk).
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { childUnder, scriptUnder } from '../support/run-child.js';
import { cleanup, scratch } from './helpers.js';

const UID = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot)
  console.log('unreadable-layer.test skipped: running a supervisor as uid 1000 needs root');
const run = fileURLToPath(new URL('../support/workdir-run.mjs', import.meta.url));
const AS_USER = ['setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--'];

const root = scratch('cow-unreadable-');
chmodSync(root, 0o755);
afterAll(() => cleanup(root));

const PROGRAM = [
  'mkdir d d/e p',
  'echo a > d/f',
  'echo b > d/e/g',
  'echo c > p/h',
  'echo s > secret',
  'echo more >> old',
  'chmod 0 secret old',
  'chmod 0111 d/e d',
  'chmod 0600 p',
].join(' && ');

/** What the dry run lists (and the tree a commit leaves): path, type, mode. */
const CHANGES = [
  ['A', 'd', 0o111],
  ['A', 'd/e', 0o111],
  ['A', 'd/e/g', 0o644],
  ['A', 'd/f', 0o644],
  ['M', 'old', 0],
  ['A', 'p', 0o600],
  ['A', 'p/h', 0o644],
  ['A', 'secret', 0],
] as const;

const CONTENTS: Record<string, string> = {
  'd/e/g': 'b\n',
  'd/f': 'a\n',
  old: 'old\nmore\n',
  'p/h': 'c\n',
  secret: 's\n',
};

interface Dirs {
  workdir: string;
  storage: string;
}

function dirs(): Dirs {
  const base = join(root, String(Math.random()).slice(2, 8));
  const workdir = join(base, 'w');
  const storage = join(base, 'store');
  for (const dir of [base, workdir, storage]) mkdirSync(dir);
  writeFileSync(join(workdir, 'old'), 'old\n');
  for (const path of [workdir, storage, join(workdir, 'old')]) chownSync(path, UID, UID);
  chmodSync(base, 0o755);
  return { workdir, storage };
}

interface Ended {
  error?: string;
  done: string | null;
  exitCode: number;
  stderr: string;
  changes: { type: string; path: string; mode: number }[] | null;
}

async function runAsUser(at: Dirs, options: { end?: string; onExit?: string; maxDisk?: number }) {
  const config = {
    workdir: at.workdir,
    storage: at.storage,
    onExit: options.onExit ?? 'commit',
    ...(options.end !== undefined ? { end: options.end } : {}),
    ...(options.maxDisk !== undefined ? { maxDisk: options.maxDisk } : {}),
    argv: ['/bin/sh', '-c', PROGRAM],
  };
  const end = await scriptUnder(AS_USER, run, [JSON.stringify(config)]);
  expect(end.stderr).toBe('');
  const result = JSON.parse(end.stdout) as Ended;
  expect(result.error).toBeUndefined();
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return result;
}

/** The workdir's tree as root sees it: path, mode, and a file's content. */
function tree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const st = lstatSync(join(dir, path));
    const content = st.isFile() ? ` ${JSON.stringify(readFileSync(join(dir, path), 'utf8'))}` : '';
    out.push(`${path} ${(st.mode & 0o7777).toString(8)}${content}`);
    if (st.isDirectory()) out.push(...tree(dir, path));
  }
  return out;
}

/** Every change adds or modifies: the tree a commit leaves. */
const COMMITTED = CHANGES.map(([, path, mode]) => {
  const content = CONTENTS[path];
  return `${path} ${mode.toString(8)}${content === undefined ? '' : ` ${JSON.stringify(content)}`}`;
}).sort();

describe.skipIf(!asRoot)('a layer its owner cannot read (supervisor of uid 1000)', () => {
  for (const [upper, maxDisk] of [
    ['on disk', undefined],
    ['on a tmpfs', 1 << 20],
  ] as const) {
    describe(`the upper ${upper}`, () => {
      it('is listed by the dry run, which leaves nothing', async () => {
        const at = dirs();
        const before = tree(at.workdir);
        const result = await runAsUser(at, { end: 'dry-run', ...(maxDisk ? { maxDisk } : {}) });
        expect(result.done).toBe('abort');
        expect(result.changes!.map(({ type, path, mode }) => [type, path, mode])).toEqual(
          CHANGES.map((entry) => [...entry]),
        );
        expect(tree(at.workdir)).toEqual(before);
        expect(readdirSync(at.storage)).toEqual([]);
      }, 120_000);

      it('is committed, deferred, with its modes and contents', async () => {
        const at = dirs();
        const result = await runAsUser(at, {
          end: 'defer-commit',
          ...(maxDisk ? { maxDisk } : {}),
        });
        expect(result.changes).toHaveLength(CHANGES.length);
        expect(tree(at.workdir)).toEqual(COMMITTED);
        expect(readdirSync(at.storage)).toEqual([]);
      }, 120_000);

      it('is aborted, leaving nothing', async () => {
        const at = dirs();
        const before = tree(at.workdir);
        const result = await runAsUser(at, { onExit: 'abort', ...(maxDisk ? { maxDisk } : {}) });
        expect(result.done).toBe('abort');
        expect(tree(at.workdir)).toEqual(before);
        expect(readdirSync(at.storage)).toEqual([]);
      }, 120_000);

      it('is kept, then committed by its owner', async () => {
        const at = dirs();
        const result = await runAsUser(at, { onExit: 'keep', ...(maxDisk ? { maxDisk } : {}) });
        expect(result.done).toBe('keep');
        const [kept] = readdirSync(at.storage).filter((name) => /^[0-9a-f]{32}$/.test(name));
        expect(kept).toBeDefined();
        // commit-killed with no step to die at: a plain commit.
        const commit = await childUnder(AS_USER, 'commit-killed', join(at.storage, kept!), '-1');
        expect(commit.stderr).toBe('');
        expect(commit.code).toBe(0);
        expect(tree(at.workdir)).toEqual(COMMITTED);
        expect(readdirSync(at.storage)).toEqual([]);
      }, 120_000);
    });
  }
});
