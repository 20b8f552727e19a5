// What happens to a layer when its sandbox ends: onExit for exit status 0,
// onError for anything else (a signal, a timeout, a failure to start), each
// commit, abort or keep; a dry run lists the changes and aborts.

import { diffsOf } from './format.js';
import type { Change } from './layer/changes.js';
import type { Layer } from './layer/index.js';

export type Disposition = 'commit' | 'abort' | 'keep';

export interface FinishOptions {
  /** Default 'commit'. */
  readonly onExit?: Disposition;
  /** Default 'abort'. */
  readonly onError?: Disposition;
  /** List the changes, then abort whatever the dispositions say. */
  readonly dryRun?: boolean;
  /**
   * Leave the layer for the caller to decide (`result.commit()` /
   * `result.abort()`): the changes are listed and nothing else is done.
   */
  readonly defer?: boolean;
  /** Also make the unified diffs of modified text files, before the layer is gone. */
  readonly diff?: boolean;
}

export interface FinishResult {
  /** What was done: 'deferred' when the caller decides. */
  readonly done: Disposition | 'deferred';
  /** The change list, made before the layer was committed or discarded. */
  readonly changes: Change[];
  /** For 'keep': the layer's directory. */
  readonly kept?: string;
  /** With `diff`: the unified diff of each modified text file, by path (formatChanges' `diffs`). */
  readonly diffs?: Record<string, string>;
}

/**
 * Ends a layer after its sandbox ended: `exitedZero` says whether it exited
 * with status 0. Lists the changes first (always: the result carries them).
 */
export async function finishLayer(
  layer: Layer,
  exitedZero: boolean,
  options: FinishOptions = {},
): Promise<FinishResult> {
  let changes: Change[];
  let diffs: Record<string, string> | undefined;
  try {
    changes = layer.changes();
    if (options.diff) diffs = diffsOf(changes, layer.lower, layer.upper);
  } catch (error) {
    // Never decide on a list that could not be made: the layer is kept.
    const kept = layer.keep();
    throw new Error(
      `sandlock: the changes of the copy-on-write layer could not be listed (${(error as Error).message}); kept at ${kept}`,
    );
  }
  const listed = diffs === undefined ? { changes } : { changes, diffs };
  if (options.dryRun) {
    layer.abort();
    return { done: 'abort', ...listed };
  }
  if (options.defer) return { done: 'deferred', ...listed };
  const disposition = exitedZero ? (options.onExit ?? 'commit') : (options.onError ?? 'abort');
  switch (disposition) {
    case 'commit':
      await layer.commitAsync();
      return { done: 'commit', ...listed };
    case 'abort':
      layer.abort();
      return { done: 'abort', ...listed };
    case 'keep':
      return { done: 'keep', ...listed, kept: layer.keep() };
  }
}
