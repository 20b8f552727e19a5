import { fstatSync } from 'node:fs';
import { close, hostArch, openFlags, openPath, SysError } from '@sandlock/sys';
import { LandlockPathError } from './errors.js';

export type OpenedPath =
  | {
      /** An O_PATH|O_CLOEXEC descriptor; the caller closes it. */
      fd: number;
      isDirectory: boolean;
    }
  | {
      /** Nothing exists at the (optional) path: the errno symbol. */
      missing: string;
    };

const { O_NOFOLLOW } = openFlags(hostArch());

/** Errors that mean "there is nothing at this path". */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Opens a rule's path the way Landlock wants it: O_PATH needs no read
 * permission on the target (only search on its parents), and a symlink is
 * followed, so the rule lands on what the link points to; with `noFollow`,
 * a symlink there is opened itself (O_PATH|O_NOFOLLOW, open(2)) and refused.
 * A missing path (or, with `noFollow`, a symlink) is an error, or
 * `{ missing }` when `optional`.
 */
export function openRulePath(path: string, optional: boolean, noFollow = false): OpenedPath {
  let fd: number;
  try {
    fd = openPath(path, noFollow ? O_NOFOLLOW : 0);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    if (MISSING.has(error.code)) {
      if (optional) return { missing: error.code };
      throw new LandlockPathError(
        path,
        error.code,
        `Landlock rule path '${path}' does not exist (${error.code}); mark the rule optional to skip it`,
      );
    }
    throw new LandlockPathError(
      path,
      error.code,
      `Landlock rule path '${path}' cannot be opened: ${error.message}`,
    );
  }
  let stat: ReturnType<typeof fstatSync>;
  try {
    stat = fstatSync(fd);
  } catch (error) {
    close(fd);
    throw error;
  }
  if (stat.isSymbolicLink()) {
    close(fd);
    if (optional) return { missing: 'ELOOP' };
    throw new LandlockPathError(path, 'ELOOP', `Landlock rule path '${path}' is a symlink`);
  }
  return { fd, isDirectory: stat.isDirectory() };
}
