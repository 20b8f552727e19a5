// The change list as the CLI prints it: `A path`, `M path`, `D path`, or
// with json one object per line (type, path, kind, mode, size) and, with
// diff, a unified diff of each modified text file (the `diff` field in JSON,
// after the list otherwise).

import { readSync } from 'node:fs';
import { close } from '@sandlock/sys';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { O, openDirectoryNoSymlinks, tryOpenBeneath, withFd } from './layer/at.js';
import type { Change } from './layer/changes.js';

export interface FormatOptions {
  readonly json?: boolean;
  /** A unified diff of each modified text file (needs `diffs`, or lower and upper). */
  readonly diff?: boolean;
  /** The diffs, made while the layer existed ({@link diffsOf}; finishLayer's `diffs`). */
  readonly diffs?: Readonly<Record<string, string>>;
  /** The directory the layer is over. */
  readonly lower?: string;
  /** The layer's upper tree. */
  readonly upper?: string;
}

/** Files above this are not diffed. */
const DIFF_LIMIT = 1 << 20;

/** The text of a file beneath `root`, or null: missing, unreadable, too big, or not text. */
function textOf(root: number, path: string): string | null {
  const fd = tryOpenBeneath(root, path, O.O_RDONLY | O.O_NOFOLLOW | O.O_NONBLOCK);
  if (fd < 0) return null;
  return withFd(fd, () => {
    const buffer = Buffer.alloc(DIFF_LIMIT + 1);
    let length = 0;
    while (length < buffer.length) {
      const got = readSync(fd, buffer, length, buffer.length - length, length);
      if (got === 0) break;
      length += got;
    }
    if (length > DIFF_LIMIT) return null;
    const bytes = buffer.subarray(0, length);
    if (bytes.includes(0)) return null;
    const text = bytes.toString('utf8');
    return Buffer.byteLength(text) === length && !text.includes('\ufffd') ? text : null;
  });
}

/**
 * A unified diff of each modified text file (not binary, valid UTF-8, at
 * most 1 MiB on both sides), by path: the layer's upper against the lower.
 */
export function diffsOf(
  changes: readonly Change[],
  lower: string,
  upper: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const lowerRoot = openDirectoryNoSymlinks(lower);
  try {
    const upperRoot = openDirectoryNoSymlinks(upper);
    try {
      for (const change of changes) {
        if (change.type !== 'M' || change.kind !== 'file') continue;
        const before = textOf(lowerRoot, change.path);
        const after = textOf(upperRoot, change.path);
        if (before === null || after === null || before === after) continue;
        out[change.path] = createTwoFilesPatch(
          `a/${change.path}`,
          `b/${change.path}`,
          before,
          after,
          '',
          '',
          {
            context: 3,
            headerOptions: FILE_HEADERS_ONLY,
          },
        );
      }
    } finally {
      close(upperRoot);
    }
  } finally {
    close(lowerRoot);
  }
  return out;
}

export function formatChanges(changes: readonly Change[], options: FormatOptions = {}): string {
  let diffs: Readonly<Record<string, string>> = {};
  if (options.diff) {
    if (options.diffs !== undefined) diffs = options.diffs;
    else if (options.lower !== undefined && options.upper !== undefined) {
      diffs = diffsOf(changes, options.lower, options.upper);
    } else {
      throw new TypeError('sandlock: formatChanges with diff needs diffs, or lower and upper');
    }
  }
  if (options.json) {
    return changes
      .map((change) => {
        const diff = diffs[change.path];
        return `${JSON.stringify({
          type: change.type,
          path: change.path,
          kind: change.kind,
          mode: `0${change.mode.toString(8).padStart(3, '0')}`,
          size: change.size,
          ...(diff === undefined ? {} : { diff }),
        })}\n`;
      })
      .join('');
  }
  const list = changes.map((change) => `${change.type} ${change.path}\n`).join('');
  return list + changes.map((change) => diffs[change.path] ?? '').join('');
}
