import { fstatSync } from 'node:fs';
import { close, openPath, SysError } from '@sandlock/sys';
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

/** Errors that mean "there is nothing at this path". */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Opens a rule's path the way Landlock wants it: O_PATH needs no read
 * permission on the target (only search on its parents), and a symlink is
 * followed, so the rule lands on what the link points to.
 * A missing path is an error, or `{ missing }` when `optional`.
 */
export function openRulePath(path: string, optional: boolean): OpenedPath {
  let fd: number;
  try {
    fd = openPath(path);
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
  try {
    return { fd, isDirectory: fstatSync(fd).isDirectory() };
  } catch (error) {
    close(fd);
    throw error;
  }
}
