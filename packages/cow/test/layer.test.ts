// The layer against the real filesystem: its change list, and that a commit
// makes the directory what the same operations done directly would have.

import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trySyscall } from '@sandlock/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Change, cleanStaleLayers, Layer, StoreError } from '../src/index.js';
import { copyTree, makeTree, snapshot, Twin } from './support/tree.js';

let base: string;
let lower: string;
let plain: string;
let store: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sandlock-cow-test-'));
  lower = join(base, 'lower');
  plain = join(base, 'plain');
  store = join(base, 'store');
  mkdirSync(lower);
  mkdirSync(plain);
  makeTree(lower);
  copyTree(lower, plain);
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function twin(): Twin {
  return new Twin(Layer.create({ lower, storage: store }), plain);
}

const brief = (changes: Change[]) => changes.map((change) => `${change.type} ${change.path}`);

describe('changes()', () => {
  it('is empty for a fresh layer', () => {
    const layer = Layer.create({ lower, storage: store });
    expect(layer.changes()).toEqual([]);
    layer.abort();
  });

  it('lists additions, modifications, deletions, mode changes, symlinks and FIFOs', () => {
    const t = twin();
    t.write('new.txt', 'new\n');
    t.write('README', 'changed\n');
    t.write('src/deep/data.txt', 'one\ntwo\nthree\n'); // same bytes: no change
    t.chmod('run.sh', 0o700);
    t.remove('old.txt');
    t.symlink('README', 'link');
    t.fifo('fifo', 0o600);
    t.remove('main');
    t.symlink('README', 'main'); // a symlink with another target
    expect(brief(t.layer.changes())).toEqual([
      'M README',
      'A fifo',
      'A link',
      'M main',
      'A new.txt',
      'D old.txt',
      'M run.sh',
    ]);
    const byPath = Object.fromEntries(t.layer.changes().map((change) => [change.path, change]));
    expect(byPath['fifo']).toMatchObject({ kind: 'fifo', mode: 0o600 });
    expect(byPath['link']).toMatchObject({ kind: 'symlink', size: 'README'.length });
    expect(byPath['run.sh']).toMatchObject({ kind: 'file', mode: 0o700 });
    expect(byPath['old.txt']).toMatchObject({ kind: 'file', size: 4 });
    t.layer.abort();
  });

  it('lists every entry of a deleted directory, and a type change as M', () => {
    const t = twin();
    t.remove('src');
    t.remove('empty');
    t.write('empty', 'now a file\n');
    expect(brief(t.layer.changes())).toEqual([
      'M empty',
      'D src',
      'D src/deep',
      'D src/deep/data.txt',
      'D src/main.c',
    ]);
    t.layer.abort();
  });

  it('lists a renamed directory as its old entries deleted and its new ones added, with contents', () => {
    const t = twin();
    t.write('src/extra.h', '#pragma once\n');
    t.renameDir('src', 'lib');
    expect(brief(t.layer.changes())).toEqual([
      'A lib',
      'A lib/deep',
      'A lib/deep/data.txt',
      'A lib/extra.h',
      'A lib/main.c',
      'D src',
      'D src/deep',
      'D src/deep/data.txt',
      'D src/main.c',
    ]);
    t.layer.abort();
  });

  it('sees the lower no more beneath a directory deleted and made again', () => {
    const t = twin();
    t.remove('src');
    t.mkdir('src');
    t.write('src/only.c', '\n');
    expect(brief(t.layer.changes())).toEqual([
      'D src/deep',
      'D src/deep/data.txt',
      'D src/main.c',
      'A src/only.c',
    ]);
    t.layer.abort();
  });

  it('lists both names of a hard link made in the layer', () => {
    const t = twin();
    t.write('a.txt', 'shared\n');
    t.link('a.txt', 'b.txt');
    t.link('README', 'README.link');
    expect(brief(t.layer.changes())).toEqual(['A README.link', 'A a.txt', 'A b.txt']);
    t.layer.abort();
  });
});

describe('commit()', () => {
  it('makes the directory what the same operations made directly', () => {
    const t = twin();
    t.write('new.txt', 'new\n');
    t.write('README', 'changed\n');
    t.chmod('run.sh', 0o700);
    t.chmod('src/deep', 0o750);
    t.remove('old.txt');
    t.symlink('../README', 'src/up');
    t.fifo('fifo', 0o640);
    t.mkdir('made', 0o711);
    t.write('made/inside', 'x');
    t.remove('empty');
    t.write('empty', 'a file now\n');
    t.write('src/extra.h', '#pragma once\n');
    t.renameDir('src', 'lib');
    t.renameFile('lib/main.c', 'main.c');
    t.write('a.txt', 'shared\n');
    t.link('a.txt', 'b.txt');
    t.link('a.txt', 'lib/c.txt');
    expect(snapshot(lower)).not.toEqual(snapshot(plain));
    t.layer.commit();
    expect(snapshot(lower)).toEqual(snapshot(plain));
    const a = statSync(join(lower, 'a.txt'));
    expect(statSync(join(lower, 'lib/c.txt')).ino).toBe(a.ino);
    expect(a.nlink).toBe(3);
    expect(readdirSync(store)).toEqual([]);
  });

  it('keeps modification times and leaves no temporary file in the directory', () => {
    const t = twin();
    t.write('dated.txt', 'x');
    const when = new Date('2001-02-03T04:05:06Z');
    // The upper's times are what the commit carries.
    utimesSync(join(t.layer.upper, 'dated.txt'), when, when);
    t.layer.commit();
    expect(statSync(join(lower, 'dated.txt')).mtime.toISOString()).toBe(when.toISOString());
    expect(readdirSync(lower).filter((name) => name.startsWith('.sandlock'))).toEqual([]);
  });

  it('a second commit of a layer is refused; abort removes everything', () => {
    const t = twin();
    t.write('x', 'x');
    t.layer.commit();
    expect(() => t.layer.commit()).toThrow(/already finished/);
    const other = twin();
    other.write('y', 'y');
    other.layer.abort();
    expect(existsSync(join(lower, 'y'))).toBe(false);
    expect(readdirSync(store)).toEqual([]);
  });

  it('keep() leaves the layer for a later commit by another instance', () => {
    const t = twin();
    t.write('later.txt', 'later\n');
    const dir = t.layer.keep();
    expect(existsSync(join(lower, 'later.txt'))).toBe(false);
    expect(cleanStaleLayers(store).removed).toEqual([]);
    const again = Layer.open(dir);
    expect(again.state).toBe('kept');
    expect(brief(again.changes())).toEqual(['A later.txt']);
    again.commit();
    expect(readFileSync(join(lower, 'later.txt'), 'utf8')).toBe('later\n');
    expect(readdirSync(store)).toEqual([]);
  });
});

describe('extended attributes', () => {
  const set = (path: string, name: string, value: string) =>
    trySyscall(
      'setxattr',
      Buffer.from(`${path}\0`),
      Buffer.from(`${name}\0`),
      Buffer.from(value),
      value.length,
      0,
    );
  const get = (path: string, name: string) => {
    const buffer = Buffer.alloc(256);
    const length = trySyscall(
      'getxattr',
      Buffer.from(`${path}\0`),
      Buffer.from(`${name}\0`),
      buffer,
      256,
    );
    return length < 0 ? null : buffer.subarray(0, length).toString();
  };

  it('set in the layer make an entry modified, and are committed', (context) => {
    if (set(join(lower, 'README'), 'user.probe', 'x') < 0) {
      console.warn(`skipping: ${tmpdir()} takes no user extended attributes`);
      context.skip();
    }
    const t = twin();
    t.write('README', 'hello\n'); // the same bytes: a copy up
    t.write('tagged.txt', 'new\n');
    t.mkdir('dir');
    expect(set(join(t.layer.upper, 'README'), 'user.probe', 'y')).toBe(0);
    expect(set(join(t.layer.upper, 'tagged.txt'), 'user.tag', 'a tag')).toBe(0);
    expect(set(join(t.layer.upper, 'dir'), 'user.dir', 'd')).toBe(0);
    expect(brief(t.layer.changes())).toEqual(['M README', 'A dir', 'A tagged.txt']);
    t.layer.commit();
    expect(get(join(lower, 'README'), 'user.probe')).toBe('y');
    expect(get(join(lower, 'tagged.txt'), 'user.tag')).toBe('a tag');
    expect(get(join(lower, 'dir'), 'user.dir')).toBe('d');
  });
});

describe('the store', () => {
  it('is made 0700 and refused when another user owns it', () => {
    Layer.create({ lower, storage: store }).abort();
    expect(statSync(store).mode & 0o777).toBe(0o700);
    if (process.getuid?.() !== 0) {
      console.warn('skipping the other-owner case: chown needs root');
      return;
    }
    chownSync(store, 65534, 65534);
    expect(() => Layer.create({ lower, storage: store })).toThrow(StoreError);
    expect(() => Layer.create({ lower, storage: store })).toThrow(/belongs to uid 65534/);
  });

  it('is refused when others may write it, or when it is a symlink', () => {
    mkdirSync(store, { mode: 0o700 });
    chmodSync(store, 0o1777);
    expect(() => Layer.create({ lower, storage: store })).toThrow(/writable by others/);
    chmodSync(store, 0o770);
    expect(() => Layer.create({ lower, storage: store })).toThrow(/writable by others/);
    chmodSync(store, 0o700);
    const link = join(base, 'link');
    symlinkSync(store, link);
    expect(() => Layer.create({ lower, storage: link })).toThrow(/not a directory/);
  });

  it('is refused inside the directory the layer is over', () => {
    expect(() => Layer.create({ lower, storage: join(lower, 'src', 'layers') })).toThrow(
      /lies inside the directory/,
    );
    expect(existsSync(join(lower, 'src', 'layers'))).toBe(false);
  });

  it('leaves alone a layer whose layer.json it cannot read, and still makes layers', () => {
    Layer.create({ lower, storage: store }).abort();
    const odd = join(store, 'f'.repeat(32));
    mkdirSync(odd);
    writeFileSync(join(odd, 'layer.json'), '{"version":2}');
    expect(cleanStaleLayers(store)).toEqual({ removed: [], committed: [], failed: [] });
    const layer = Layer.create({ lower, storage: store });
    expect(readdirSync(store).sort()).toEqual([layer.id, 'f'.repeat(32)].sort());
    layer.abort();
    expect(() => Layer.open(odd)).toThrow(
      /not a copy-on-write layer \(layer.json: not a layer description of version 1\)/,
    );
  });

  it('gives layers ids no one can guess', () => {
    const a = Layer.create({ lower, storage: store });
    const b = Layer.create({ lower, storage: store });
    expect(a.id).toMatch(/^[0-9a-f]{32}$/);
    expect(b.id).not.toBe(a.id);
    expect(lstatSync(a.dir).mode & 0o777).toBe(0o700);
    a.abort();
    b.abort();
  });
});

describe('maxDisk', () => {
  it('refuses a reservation past the limit and counts releases', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: 1000 });
    expect(layer.reserve(600)).toBe(true);
    expect(layer.reserve(500)).toBe(false);
    expect(layer.bytesUsed).toBe(600);
    layer.release(200);
    expect(layer.reserve(500)).toBe(true);
    expect(layer.reserve(100)).toBe(true);
    expect(layer.bytesUsed).toBe(1000);
    expect(layer.reserve(1)).toBe(false);
    layer.abort();
  });

  it('starts a reopened layer from what its upper holds', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: 1000 });
    writeFileSync(join(layer.upper, 'big'), Buffer.alloc(900));
    const dir = layer.keep();
    const again = Layer.open(dir);
    expect(again.bytesUsed).toBe(900);
    expect(again.reserve(101)).toBe(false);
    expect(again.reserve(100)).toBe(true);
    again.abort();
  });

  it('is shared between instances given the same usage', () => {
    const layer = Layer.create({ lower, storage: store, maxDisk: 100 });
    const other = Layer.open(layer.dir, { usage: layer.usage });
    expect(layer.reserve(60)).toBe(true);
    expect(other.reserve(60)).toBe(false);
    other.close();
    layer.abort();
  });
});

describe('the whiteout log', () => {
  it('is seen by every instance of a layer', () => {
    const layer = Layer.create({ lower, storage: store });
    const other = Layer.open(layer.dir);
    expect(other.hidden('src/main.c')).toBe(false);
    layer.recordDelete('src');
    expect(other.hidden('src/main.c')).toBe(true);
    expect(other.hidden('src')).toBe(true);
    expect(other.hidden('srcx')).toBe(false);
    other.recordOpaque('empty');
    expect(layer.hidden('empty')).toBe(false);
    expect(layer.hidden('empty/x')).toBe(true);
    expect(() => layer.recordDelete('../etc')).toThrow(/normalized/);
    expect(() => layer.recordDelete('a//b')).toThrow(/normalized/);
    other.close();
    layer.abort();
  });
});
