// Cheap questions about a path that a supervisor asks at every open it sees.
import { AT_FDCWD } from './constants.js';
import { ERRNO } from './errno.js';
import { trySyscall } from './libc.js';

const ONE_BYTE = Buffer.alloc(1);
const { EINVAL } = ERRNO;

/**
 * Whether `path` names a symlink (the last component, not followed): true,
 * false, or null when it cannot be looked up (ENOENT, ENOTDIR, EACCES…).
 * readlinkat into a one-byte buffer, which fails with EINVAL on anything
 * but a symlink (readlink(2)): measured about 1.2 µs against 2.9 µs for
 * lstatSync, which builds a Stats object (and an Error when the path does
 * not exist).
 */
export function isSymlink(path: string): boolean | null {
  const result = trySyscall('readlinkat', AT_FDCWD, Buffer.from(`${path}\0`), ONE_BYTE, 1);
  if (result >= 0) return true;
  return result === -EINVAL ? false : null;
}

/**
 * The names of an absolute path, lexically: empty and `.` components
 * dropped, `..` taking the previous name off (`/..` is `/`, path_resolution(7)).
 * Lexical `..` matches the kernel only where no symlink comes before it: pass
 * canonical paths.
 */
function namesOf(path: string): string[] {
  if (!path.startsWith('/')) throw new TypeError(`not an absolute path: ${JSON.stringify(path)}`);
  const names: string[] = [];
  for (const name of path.split('/')) {
    if (name === '..') names.pop();
    else if (name !== '' && name !== '.') names.push(name);
  }
  return names;
}

/** An empty (but the last), `.` or `..` component. */
const EMPTY_OR_DOTS = /\/\/|\/\.\.?(?:\/|$)/;

/**
 * An absolute path already in the form namesOf would give, compared as a
 * string: measured 60 ns a comparison against 300 ns through namesOf.
 */
function plain(path: string): boolean {
  if (!path.startsWith('/') || (path.length > 1 && path.endsWith('/'))) return false;
  return !EMPTY_OR_DOTS.test(path);
}

/**
 * Whether `path` is `ancestor` or lies beneath it, comparing whole names
 * (`/t/a/..foo` lies beneath `/t/a`, `/t/ab` does not). Both are absolute
 * (a TypeError otherwise) and in the same form: both text, or both one
 * character per byte ({@link bytePath}); `/` and `.` are the same byte in
 * either, and UTF-8 never uses those bytes inside a character. Repeated and
 * trailing slashes and `.` components do not count; `..` is lexical (see
 * namesOf).
 */
export function pathWithin(path: string, ancestor: string): boolean {
  if (plain(path) && plain(ancestor)) {
    return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
  }
  const inner = namesOf(path);
  const outer = namesOf(ancestor);
  if (outer.length > inner.length) return false;
  return outer.every((name, index) => inner[index] === name);
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * A text path as its UTF-8 bytes, one character per byte (latin1): the form
 * paths read from the kernel keep, so that names that are not UTF-8 stay
 * exact. Policy paths are text; they are compared with such paths in this form.
 */
export function bytePath(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}
