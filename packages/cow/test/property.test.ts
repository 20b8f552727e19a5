// Random sequences of file operations, done through a layer and committed,
// and done directly on a copy of the same tree, leave identical trees
// (names, types, contents, modes, link structure); aborted, the directory is
// untouched byte for byte.

import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Layer } from '../src/index.js';
import { copyTree, makeTree, snapshot, Twin } from './support/tree.js';

const NAMES = ['a', 'b', 'src', 'README', 'old.txt', 'empty', 'run.sh', 'main', 'pipe'];
const name = fc.constantFrom(...NAMES);
const rel = fc.oneof(
  name,
  fc
    .tuple(fc.constantFrom('src', 'empty', 'src/deep'), name)
    .map(([dir, leaf]) => `${dir}/${leaf}`),
);

type Op =
  | { op: 'write'; path: string; text: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'remove'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'link'; from: string; path: string }
  | { op: 'rename'; from: string; path: string };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), path: rel, text: fc.string({ maxLength: 20 }) }),
  fc.record({
    op: fc.constant('chmod' as const),
    path: rel,
    mode: fc.constantFrom(0o600, 0o644, 0o755, 0o700),
  }),
  fc.record({ op: fc.constant('remove' as const), path: rel }),
  fc.record({ op: fc.constant('mkdir' as const), path: rel }),
  fc.record({
    op: fc.constant('symlink' as const),
    path: rel,
    target: fc.constantFrom('README', '../x', 'src'),
  }),
  fc.record({ op: fc.constant('link' as const), from: rel, path: rel }),
  fc.record({ op: fc.constant('rename' as const), from: rel, path: rel }),
);

function kindAt(root: string, path: string): 'dir' | 'file' | 'other' | null {
  try {
    const stat = lstatSync(join(root, path));
    return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
  } catch {
    return null;
  }
}

/** Does `op` on both sides when it is one the kernel would allow on the plain tree. */
function apply(t: Twin, step: Op): void {
  const parent = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  const parentIsDir = (path: string) =>
    parent(path) === '' || kindAt(t.plain, parent(path)) === 'dir';
  const at = kindAt(t.plain, step.path);
  switch (step.op) {
    case 'write':
      if (parentIsDir(step.path) && (at === null || at === 'file')) t.write(step.path, step.text);
      return;
    case 'chmod':
      if (at === 'file' || at === 'dir') t.chmod(step.path, step.mode);
      return;
    case 'remove':
      if (at !== null) t.remove(step.path);
      return;
    case 'mkdir':
      if (at === null && parentIsDir(step.path)) t.mkdir(step.path);
      return;
    case 'symlink':
      if (at === null && parentIsDir(step.path)) t.symlink(step.target, step.path);
      return;
    case 'link':
      if (kindAt(t.plain, step.from) === 'file' && at === null && parentIsDir(step.path)) {
        t.link(step.from, step.path);
      }
      return;
    case 'rename': {
      const from = kindAt(t.plain, step.from);
      if (from === null || at !== null || !parentIsDir(step.path)) return;
      if (step.path.startsWith(`${step.from}/`) || step.path === step.from) return;
      if (from === 'dir') t.renameDir(step.from, step.path);
      else if (from === 'file') t.renameFile(step.from, step.path);
    }
  }
}

describe('a random sequence of operations', () => {
  it('committed, leaves the tree made directly; aborted, leaves the directory as it was', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), fc.boolean(), (ops, commit) => {
        const base = mkdtempSync(join(tmpdir(), 'sandlock-cow-prop-'));
        try {
          const lower = join(base, 'lower');
          const plain = join(base, 'plain');
          mkdirSync(lower);
          mkdirSync(plain);
          makeTree(lower);
          copyTree(lower, plain);
          const before = snapshot(lower);
          const t = new Twin(Layer.create({ lower, storage: join(base, 'store') }), plain);
          for (const step of ops) apply(t, step);
          if (commit) {
            t.layer.commit();
            expect(snapshot(lower)).toEqual(snapshot(plain));
          } else {
            t.layer.abort();
            expect(snapshot(lower)).toEqual(before);
          }
          expect(readdirSync(join(base, 'store'))).toEqual([]);
          expect(existsSync(join(base, 'store'))).toBe(true);
        } finally {
          rmSync(base, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});
