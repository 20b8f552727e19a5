import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytePath, isSymlink, pathWithin } from '../src/index.js';

describe('isSymlink', () => {
  it('tells a symlink from anything else, and null for what cannot be looked up', () => {
    expect(isSymlink('/proc/self')).toBe(true);
    expect(isSymlink('/proc/self/')).toBe(false); // followed: the directory
    expect(isSymlink('/proc')).toBe(false);
    expect(isSymlink('/dev/null')).toBe(false);
    expect(isSymlink('/nonexistent/sandlock')).toBeNull();
    expect(isSymlink('/dev/null/x')).toBeNull(); // ENOTDIR
  });
});

/** A file name: dots and prefixes of one another are frequent, `.` and `..` are not names. */
const name = fc
  .oneof(
    fc.constantFrom('a', 'ab', 'b', '..foo', '.x', '...', 'é', 'a\n'),
    fc.string({ unit: fc.constantFrom('a', '.', '\n', 'é'), minLength: 1, maxLength: 4 }),
  )
  .filter((text) => text !== '.' && text !== '..');
const names = fc.array(name, { maxLength: 4 });

/**
 * The ways to write the path of `list`: repeated slashes, `.` components,
 * `name/..` detours, `/..` at the root, trailing slashes and `/.`.
 */
function spellings(list: readonly string[]): fc.Arbitrary<string> {
  const step = fc.record({
    slashes: fc.integer({ min: 1, max: 3 }),
    dot: fc.boolean(),
    detour: fc.option(name, { nil: undefined }),
  });
  return fc
    .record({
      steps: fc.array(step, { minLength: list.length, maxLength: list.length }),
      aboveRoot: fc.boolean(),
      trailingDot: fc.boolean(),
      trailingSlashes: fc.integer({ min: 0, max: 2 }),
    })
    .map(({ steps, aboveRoot, trailingDot, trailingSlashes }) => {
      let path = aboveRoot ? '/..' : '';
      list.forEach((entry, index) => {
        const { slashes, dot, detour } = steps[index]!;
        const separator = '/'.repeat(slashes);
        if (dot) path += `${separator}.`;
        if (detour !== undefined) path += `${separator}${detour}${separator}..`;
        path += `${separator}${entry}`;
      });
      if (trailingDot) path += '/.';
      path += '/'.repeat(trailingSlashes);
      return path === '' ? '/' : path;
    });
}

/** The plain path of `list` (`/` when empty). */
function plain(list: readonly string[]): string {
  return `/${list.join('/')}`;
}

function isPrefix(outer: readonly string[], inner: readonly string[]): boolean {
  return outer.length <= inner.length && outer.every((entry, index) => inner[index] === entry);
}

/** Two paths sharing a first part, each written in any of its ways. */
const pair = fc
  .record({ shared: names, inner: names, outer: names })
  .chain(({ shared, inner, outer }) => {
    const path = [...shared, ...inner];
    const ancestor = [...shared, ...outer];
    return fc.record({
      path: fc.constant(path),
      ancestor: fc.constant(ancestor),
      pathSpelled: fc.oneof(fc.constant(plain(path)), spellings(path)),
      ancestorSpelled: fc.oneof(fc.constant(plain(ancestor)), spellings(ancestor)),
    });
  });

describe('pathWithin', () => {
  it('compares whole names: a name beginning with `..` lies beneath its directory', () => {
    expect(pathWithin('/t/a/..foo', '/t/a')).toBe(true);
    expect(pathWithin('/t/a/..foo/s', '/t/a/..foo')).toBe(true);
    expect(pathWithin('/t/a', '/t/a/..foo')).toBe(false);
    expect(pathWithin('/t/a/.x', '/t/a')).toBe(true);
    expect(pathWithin('/t/ab', '/t/a')).toBe(false);
    expect(pathWithin('/t/a', '/t/ab')).toBe(false);
    expect(pathWithin('/t/a', '/t/a')).toBe(true);
    expect(pathWithin('/t', '/t/a')).toBe(false);
  });

  it('takes `/`, repeated and trailing slashes, `.` and `..` components as the kernel does', () => {
    expect(pathWithin('/', '/')).toBe(true);
    expect(pathWithin('/etc', '/')).toBe(true);
    expect(pathWithin('/', '/etc')).toBe(false);
    expect(pathWithin('/t/a/s', '/t/a/')).toBe(true);
    expect(pathWithin('/t/a/', '/t/a')).toBe(true);
    expect(pathWithin('/t//a', '/t/a')).toBe(true);
    expect(pathWithin('/t/a', '//t/./a/.')).toBe(true);
    expect(pathWithin('/t/b/../a/s', '/t/a')).toBe(true);
    expect(pathWithin('/t/a/../b', '/t/a')).toBe(false);
    expect(pathWithin('/../t', '/t')).toBe(true);
    expect(pathWithin('/t/a\n/', '/t/a')).toBe(false);
  });

  it('agrees with comparing the names, however the paths are written', () => {
    fc.assert(
      fc.property(pair, ({ path, ancestor, pathSpelled, ancestorSpelled }) => {
        expect(pathWithin(pathSpelled, ancestorSpelled)).toBe(isPrefix(ancestor, path));
      }),
      { numRuns: 2000 },
    );
  });

  it('holds every path beneath `/` and itself', () => {
    fc.assert(
      fc.property(
        names.chain((list) => spellings(list)),
        (path) => {
          expect(pathWithin(path, '/')).toBe(true);
          expect(pathWithin(path, path)).toBe(true);
        },
      ),
    );
  });

  it('gives the same answers on text and on its bytes, one character per byte', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 3 }).filter((t) => !t.includes('/'));
    const textPath = fc.array(text, { maxLength: 3 }).map((list) => `/${list.join('/')}`);
    fc.assert(
      fc.property(textPath, textPath, (path, ancestor) => {
        expect(pathWithin(bytePath(path), bytePath(ancestor))).toBe(pathWithin(path, ancestor));
      }),
    );
  });

  it('refuses paths that are not absolute', () => {
    for (const [path, ancestor] of [
      ['t/a', '/t'],
      ['/t/a', 't'],
      ['', '/'],
      ['/t', ''],
    ]) {
      expect(() => pathWithin(path!, ancestor!)).toThrow(TypeError);
    }
  });
});

describe('bytePath', () => {
  it('is the UTF-8 bytes of the text, one character per byte', () => {
    expect(bytePath('/etc/hosts')).toBe('/etc/hosts');
    expect(bytePath('/tmp/é')).toBe('/tmp/\u00c3\u00a9');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(Buffer.from(bytePath(text), 'latin1')).toEqual(Buffer.from(text, 'utf8'));
      }),
    );
  });
});
