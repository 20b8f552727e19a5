// sandlock cow: the kept layers of --workdir runs, listed, shown, committed
// and aborted from the command line.

import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Layer } from '@sandlock/cow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sandlock } from './helpers.js';

const register = fileURLToPath(
  new URL('../../../packages/dispatch/src/dev/register.mjs', import.meta.url),
);
const child = fileURLToPath(
  new URL('../../../packages/cow/test/support/child.ts', import.meta.url),
);

let base: string;
let lower: string;
let store: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sandlock-cli-cow-'));
  lower = join(base, 'lower');
  store = join(base, 'store');
  mkdirSync(lower);
  writeFileSync(join(lower, 'notes.txt'), 'one\ntwo\n');
  writeFileSync(join(lower, 'gone.txt'), 'gone\n');
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

/** A kept layer that modifies notes.txt, adds new.txt and deletes gone.txt. */
function keptLayer(): string {
  const layer = Layer.create({ lower, storage: store });
  writeFileSync(join(layer.upper, 'notes.txt'), 'one\nTWO\n');
  writeFileSync(join(layer.upper, 'new.txt'), 'new\n');
  layer.recordDelete('gone.txt');
  return layer.keep();
}

describe('sandlock cow', () => {
  it('lists kept layers with their state and directory', () => {
    const dir = keptLayer();
    const result = sandlock(['cow', 'list', '--fs-storage', store]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^${dir}\tkept\t${lower}\t\\d{4}-`));
  });

  it('shows the changes, as text, JSON and unified diffs', () => {
    const dir = keptLayer();
    const text = sandlock(['cow', 'changes', dir]);
    expect(text.status).toBe(0);
    expect(text.stdout).toBe('D gone.txt\nA new.txt\nM notes.txt\n');
    const json = sandlock(['cow', 'changes', dir, '--json', '--diff']);
    const lines = json.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      { type: 'D', path: 'gone.txt', kind: 'file', mode: '0644', size: 5 },
      { type: 'A', path: 'new.txt', kind: 'file', mode: '0644', size: 4 },
      {
        type: 'M',
        path: 'notes.txt',
        kind: 'file',
        mode: '0644',
        size: 8,
        diff: '--- a/notes.txt\n+++ b/notes.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n',
      },
    ]);
  });

  it('commits a kept layer to its directory and removes it', () => {
    const dir = keptLayer();
    const result = sandlock(['cow', 'commit', dir]);
    expect(result.stderr).toBe(`sandlock cow: committed ${dir} to ${lower}\n`);
    expect(result.status).toBe(0);
    expect(readdirSync(lower).sort()).toEqual(['new.txt', 'notes.txt']);
    expect(readFileSync(join(lower, 'notes.txt'), 'utf8')).toBe('one\nTWO\n');
    expect(readdirSync(store)).toEqual([]);
    const again = sandlock(['cow', 'commit', dir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe(`sandlock cow: ${dir}: no such layer\n`);
  });

  it('aborts a kept layer: the directory is untouched', () => {
    const dir = keptLayer();
    const result = sandlock(['cow', 'abort', dir]);
    expect(result.status).toBe(0);
    expect(readdirSync(lower).sort()).toEqual(['gone.txt', 'notes.txt']);
    expect(readFileSync(join(lower, 'notes.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(store)).toEqual([]);
  });

  it('finishes a layer whose commit was killed midway', () => {
    const dir = keptLayer();
    const killed = spawnSync(
      process.execPath,
      ['--import', register, child, 'commit-killed', dir, '0'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(killed.signal).toBe('SIGKILL');
    expect(Layer.open(dir).state).toBe('committing');
    const result = sandlock(['cow', 'commit', dir]);
    expect(result.stderr).toBe(`sandlock cow: committed ${dir} to ${lower}\n`);
    expect(result.status).toBe(0);
    expect(readdirSync(lower).sort()).toEqual(['new.txt', 'notes.txt']);
    expect(readFileSync(join(lower, 'notes.txt'), 'utf8')).toBe('one\nTWO\n');
    expect(readdirSync(store)).toEqual([]);
  });

  it('leaves alone a layer a live sandbox is using', () => {
    const layer = Layer.create({ lower, storage: store });
    writeFileSync(join(layer.upper, 'new.txt'), 'new\n');
    const result = sandlock(['cow', 'commit', layer.dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      `sandlock cow: ${layer.dir} is in use by a running sandbox (process ${process.pid}); not touched\n`,
    );
    expect(existsSync(join(lower, 'new.txt'))).toBe(false);
    layer.abort();
  });

  it('names the path that is not a layer', () => {
    const result = sandlock(['cow', 'commit', lower]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      `sandlock cow: ${lower} is not a copy-on-write layer (not STORE/<id>)\n`,
    );
  });

  it('exits 125 for usage errors', () => {
    for (const [args, message] of [
      [['cow'], /^Usage: sandlock cow list/],
      [['cow', 'merge', 'x'], /unknown action 'merge'/],
      [['cow', 'commit'], /commit needs the PATH of a layer/],
      [['cow', 'commit', 'a', 'b'], /unexpected argument 'b'/],
      [['cow', 'commit', 'a', '--json'], /commit takes no --json/],
      [['cow', 'list', '--fs-storage'], /--fs-storage needs a DIR/],
      [
        ['cow', 'list', '--fs-storage', 'store'],
        /--fs-storage expects an absolute path, got 'store'/,
      ],
      [['cow', 'abort', '--force', 'x'], /unknown option '--force'/],
    ] as const) {
      const result = sandlock(args);
      expect(result.status).toBe(125);
      expect(result.stderr).toMatch(message);
    }
  });
});
