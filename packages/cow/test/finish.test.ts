// The end of a sandbox: finishLayer applies onExit or onError, or lists the
// changes only (dry run) or leaves the decision to the caller (defer).

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
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finishLayer, formatChanges, Layer } from '../src/index.js';

let base: string;
let lower: string;
let store: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sandlock-cow-finish-'));
  lower = join(base, 'lower');
  store = join(base, 'store');
  mkdirSync(lower);
  writeFileSync(join(lower, 'file'), 'before\n');
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function changedLayer(): Layer {
  const layer = Layer.create({ lower, storage: store });
  writeFileSync(join(layer.upper, 'file'), 'after\n');
  return layer;
}

const content = () => readFileSync(join(lower, 'file'), 'utf8');
const expected = [{ type: 'M', path: 'file', kind: 'file', mode: 0o644, size: 6 }];

describe('finishLayer', () => {
  it('with diff makes the diffs before the layer is gone, for formatChanges', async () => {
    const result = await finishLayer(changedLayer(), true, { dryRun: true, diff: true });
    const diff = '--- a/file\n+++ b/file\n@@ -1,1 +1,1 @@\n-before\n+after\n';
    expect(result).toEqual({ done: 'abort', changes: expected, diffs: { file: diff } });
    expect(formatChanges(result.changes, { diff: true, diffs: result.diffs! })).toBe(
      `M file\n${diff}`,
    );
    expect(formatChanges(result.changes, { json: true, diff: true, diffs: result.diffs! })).toBe(
      `${JSON.stringify({ type: 'M', path: 'file', kind: 'file', mode: '0644', size: 6, diff })}\n`,
    );
    expect(() => formatChanges(result.changes, { diff: true })).toThrow(/needs diffs/);
  });

  it('commits on exit 0 and aborts otherwise, by default', async () => {
    const failed = await finishLayer(changedLayer(), false);
    expect(failed).toEqual({ done: 'abort', changes: expected });
    expect(content()).toBe('before\n');
    const succeeded = await finishLayer(changedLayer(), true);
    expect(succeeded).toEqual({ done: 'commit', changes: expected });
    expect(content()).toBe('after\n');
    expect(readdirSync(store)).toEqual([]);
  });

  it('follows onExit and onError', async () => {
    const kept = await finishLayer(changedLayer(), true, { onExit: 'keep' });
    expect(kept.done).toBe('keep');
    expect(existsSync(join(kept.kept!, 'upper/file'))).toBe(true);
    expect(Layer.open(kept.kept!).state).toBe('kept');
    expect((await finishLayer(changedLayer(), false, { onError: 'commit' })).done).toBe('commit');
    expect(content()).toBe('after\n');
    Layer.open(kept.kept!).abort();
    expect(readdirSync(store)).toEqual([]);
  });

  it('with dryRun lists the changes and leaves the directory untouched, whatever onExit says', async () => {
    const result = await finishLayer(changedLayer(), true, { dryRun: true, onExit: 'commit' });
    expect(result).toEqual({ done: 'abort', changes: expected });
    expect(content()).toBe('before\n');
    expect(readdirSync(store)).toEqual([]);
  });

  it('with defer lists the changes and leaves the layer to the caller', async () => {
    const layer = changedLayer();
    const result = await finishLayer(layer, true, { defer: true });
    expect(result).toEqual({ done: 'deferred', changes: expected });
    expect(content()).toBe('before\n');
    await layer.commitAsync();
    expect(content()).toBe('after\n');
    expect(readdirSync(store)).toEqual([]);
  });
});
