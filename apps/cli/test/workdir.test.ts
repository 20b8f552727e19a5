// `sandlock run --workdir`: the copy-on-write view from the command line,
// with --dry-run, and nothing left in the temp dir whatever the ending.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { sandlock } from './helpers.js';

let root: string;
let dir: string;
let temp: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sandlock-workdir-cli-'));
  dir = join(root, 'tree');
  temp = join(root, 'tmp');
  mkdirSync(dir);
  mkdirSync(temp);
  writeFileSync(join(dir, 'a.txt'), 'hello\n');
  writeFileSync(join(dir, 'b.txt'), 'keep\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** What copy-on-write left in the temp dir (the per-user runtime directory `sandlock-<uid>` is not a layer). */
function layersLeft(): string[] {
  return readdirSync(temp).filter((name) => name.startsWith('sandlock-cow'));
}

const CHANGE = 'echo new > c.txt && echo more >> a.txt && rm b.txt && cat a.txt && ls';

function run(flags: string[], script = CHANGE) {
  return sandlock(
    ['run', '--system', '--workdir', dir, '--cwd', dir, ...flags, '--', 'sh', '-c', script],
    {
      env: { ...process.env, TMPDIR: temp },
    },
  );
}

it('--dry-run shows the changes, the program saw them, and the directory is untouched', () => {
  const result = run(['--dry-run']);
  expect(result.status).toBe(0);
  // The program's output, then the change list.
  const lines = result.stdout.split('\n').filter(Boolean);
  expect(lines.slice(0, 4)).toEqual(['hello', 'more', 'a.txt', 'c.txt']);
  expect(lines.slice(4).sort()).toEqual(['A c.txt', 'D b.txt', 'M a.txt']);
  expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt']);
  expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('hello\n');
  expect(layersLeft()).toEqual([]);
});

it('--dry-run --json lists one object per change', () => {
  const result = run(['--dry-run', '--json']);
  expect(result.status).toBe(0);
  const changes = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string; path: string });
  expect(changes.map((change) => `${change.type} ${change.path}`).sort()).toEqual([
    'A c.txt',
    'D b.txt',
    'M a.txt',
  ]);
});

it('commits on exit 0, aborts on failure, and leaves nothing in the temp dir', () => {
  const failed = run([], `${CHANGE} && exit 3`);
  expect(failed.status).toBe(3);
  expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt']);
  expect(layersLeft()).toEqual([]);
  const committed = run([]);
  expect(committed.status).toBe(0);
  expect(readdirSync(dir).sort()).toEqual(['a.txt', 'c.txt']);
  expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('hello\nmore\n');
  expect(layersLeft()).toEqual([]);
});
