// What happens when a process that owns or commits a layer dies (SIGKILL, a
// real process), when two processes commit to one directory at once, and
// when someone swaps a symlink into the directory during a commit.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanStaleLayers, Layer } from '../src/index.js';
import { setStepHook } from '../src/layer/commit.js';
import { child } from './support/run-child.js';
import { copyTree, makeTree, snapshot, Twin } from './support/tree.js';

let base: string;
let lower: string;
let plain: string;
let store: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sandlock-cow-proc-'));
  lower = join(base, 'lower');
  plain = join(base, 'plain');
  store = join(base, 'store');
  mkdirSync(lower);
  mkdirSync(plain);
  makeTree(lower);
  copyTree(lower, plain);
});
afterEach(() => {
  setStepHook(undefined);
  rmSync(base, { recursive: true, force: true });
});

/** A layer with many steps: deletions, directories, files, links. */
function busyTwin(): Twin {
  const t = new Twin(Layer.create({ lower, storage: store }), plain);
  t.remove('old.txt');
  t.renameDir('src', 'lib');
  t.mkdir('many');
  for (let index = 0; index < 40; index++) t.write(`many/f${index}`, `file ${index}\n`);
  t.write('README', 'changed\n');
  t.chmod('run.sh', 0o700);
  t.link('many/f0', 'many-link');
  return t;
}

const temporaries = (dir: string) =>
  readdirSync(dir, { recursive: true }).filter((name) => String(name).includes('.sandlock-cow-'));

describe('an interrupted commit', () => {
  it.for([1, 5, 30, 44, 52])(
    'killed after step %i is finished by the next layer made over the directory',
    async (step) => {
      const t = busyTwin();
      const dir = t.layer.keep();
      const result = await child('commit-killed', dir, String(step));
      expect(result.signal).toBe('SIGKILL');
      expect(existsSync(join(dir, 'journal'))).toBe(true);
      // Before its last step, the directory holds part of the commit.
      if (step < 52) expect(snapshot(lower)).not.toEqual(snapshot(plain));
      Layer.create({ lower, storage: store }).abort();
      expect(snapshot(lower)).toEqual(snapshot(plain));
      expect(temporaries(lower)).toEqual([]);
      expect(readdirSync(store)).toEqual([]);
    },
  );

  it('is finished by cleanStaleLayers', async () => {
    const t = busyTwin();
    const dir = t.layer.keep();
    const result = await child('commit-killed', dir, '20');
    expect(result.signal).toBe('SIGKILL');
    const report = cleanStaleLayers(store);
    expect(report.committed).toEqual([dir]);
    expect(snapshot(lower)).toEqual(snapshot(plain));
    expect(readdirSync(store)).toEqual([]);
  });
});

describe('stale layers', () => {
  it('of an owner that died are removed; kept ones and live owners stay', async () => {
    const mine = Layer.create({ lower, storage: store });
    const keptDir = Layer.create({ lower, storage: store }).keep();
    const result = await child('create-and-die', lower, store);
    expect(result.code).toBe(0);
    const orphan = result.stdout;
    expect(existsSync(join(orphan, 'upper/orphan.txt'))).toBe(true);
    const report = cleanStaleLayers(store);
    expect(report).toEqual({ removed: [orphan], committed: [], failed: [] });
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(mine.dir)).toBe(true);
    expect(existsSync(keptDir)).toBe(true);
    expect(snapshot(lower)).toEqual(snapshot(plain));
    mine.abort();
    Layer.open(keptDir).abort();
    expect(readdirSync(store)).toEqual([]);
  });

  it('are removed by the next layer made in the store', async () => {
    const result = await child('create-and-die', lower, store);
    expect(existsSync(result.stdout)).toBe(true);
    const next = Layer.create({ lower: plain, storage: store });
    expect(existsSync(result.stdout)).toBe(false);
    expect(readdirSync(store)).toEqual([next.id]);
    next.abort();
  });
});

describe('two commits to one directory', () => {
  it('run one after the other', async () => {
    const marks = join(base, 'marks');
    mkdirSync(marks);
    const a = new Twin(Layer.create({ lower, storage: store }), plain);
    for (let index = 0; index < 20; index++) a.write(`a${index}`, 'first\n');
    a.write('both', 'first\n');
    const b = new Twin(Layer.create({ lower, storage: store }), plain);
    for (let index = 0; index < 20; index++) b.write(`b${index}`, 'second\n');
    b.write('both', 'second\n');
    const [first, second] = await Promise.all([
      child('commit-first', a.layer.keep(), marks),
      child('commit-second', b.layer.keep(), marks),
    ]);
    expect(first.stderr).toBe('');
    expect(second.stderr).toBe('');
    expect([first.code, second.code]).toEqual([0, 0]);
    // The second commit made its first step after the first had made all of its.
    expect(readFileSync(join(marks, 'second-saw'), 'utf8')).toBe(
      readFileSync(join(marks, 'first-total'), 'utf8'),
    );
    expect(readFileSync(join(lower, 'both'), 'utf8')).toBe('second\n');
    expect(snapshot(lower)).toEqual(snapshot(plain));
    expect(readdirSync(store)).toEqual([]);
  });
});

describe('a symlink swapped into the directory during a commit', () => {
  it('on the way to a file: the commit fails and writes nothing outside', () => {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    const t = new Twin(Layer.create({ lower, storage: store }), plain);
    t.remove('old.txt'); // step 0: a deletion, before the files
    t.write('README', 'first\n');
    t.write('src/deep/data.txt', 'secret\n');
    t.write('src/deep/new.txt', 'new\n');
    setStepHook((index) => {
      if (index !== 0) return;
      renameSync(join(lower, 'src/deep'), join(base, 'moved'));
      symlinkSync(outside, join(lower, 'src/deep'));
    });
    expect(() => t.layer.commit()).toThrow(/ENOTDIR|ELOOP/);
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(base, 'moved/data.txt'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect(temporaries(lower)).toEqual([]);
    expect(temporaries(join(base, 'moved'))).toEqual([]);
    t.layer.abort();
  });

  it('once its directory is open: the files follow the directory, never the name', () => {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    const t = new Twin(Layer.create({ lower, storage: store }), plain);
    t.write('README', 'first\n');
    t.write('src/deep/data.txt', 'secret\n');
    t.write('src/deep/new.txt', 'new\n');
    setStepHook((index) => {
      if (index !== 0) return;
      renameSync(join(lower, 'src/deep'), join(base, 'moved'));
      symlinkSync(outside, join(lower, 'src/deep'));
    });
    t.layer.commit();
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(base, 'moved/data.txt'), 'utf8')).toBe('secret\n');
    expect(readFileSync(join(base, 'moved/new.txt'), 'utf8')).toBe('new\n');
    expect(temporaries(join(base, 'moved'))).toEqual([]);
  });

  it('at the file itself: the commit replaces the symlink, not its target', () => {
    const outside = join(base, 'outside.txt');
    writeFileSync(outside, 'outside\n');
    const t = new Twin(Layer.create({ lower, storage: store }), plain);
    t.write('README', 'first\n');
    t.write('run.sh', 'changed\n');
    setStepHook((index) => {
      if (index !== 0) return;
      rmSync(join(lower, 'run.sh'));
      symlinkSync(outside, join(lower, 'run.sh'));
    });
    t.layer.commit();
    expect(readFileSync(outside, 'utf8')).toBe('outside\n');
    expect(readFileSync(join(lower, 'run.sh'), 'utf8')).toBe('changed\n');
  });
});
