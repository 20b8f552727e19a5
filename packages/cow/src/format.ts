// The change list as the CLI prints it: `A path`, `M path`, `D path`, or
// with json one object per line (type, path, kind, mode, size) and, with
// diff, a unified diff of each modified text file.

import type { Change } from './layer/changes.js';

export interface FormatOptions {
  readonly json?: boolean;
  readonly diff?: boolean;
  /** The directory the layer was over (for diffs). */
  readonly lower?: string;
  /** The layer's upper tree (for diffs). */
  readonly upper?: string;
}

export function formatChanges(changes: readonly Change[], options: FormatOptions = {}): string {
  const lines = changes.map((change) =>
    options.json
      ? JSON.stringify({
          type: change.type,
          path: change.path,
          kind: change.kind,
          mode: `0${change.mode.toString(8).padStart(3, '0')}`,
          size: change.size,
        })
      : `${change.type} ${change.path}`,
  );
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
