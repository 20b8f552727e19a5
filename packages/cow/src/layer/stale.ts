// Layers whose owner is gone: a sandbox host killed outright leaves its
// layer in the store; the next process to look removes it (an owner that
// died mid-run or mid-abort), or finishes its commit (the journal). Kept
// layers stay until `sandlock cow commit|abort`.

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { finishOthers, layersIn, lockLower, tryLock, unlock } from './commit.js';
import type { LayerMeta } from './index.js';
import { checkedStore, ownerGone, removeLayerDir, unmountUpper } from './store.js';

const BUILDING = /^\.new-(\d+)-(\d*)-[0-9a-f]{32}$/;
const TRASH = /^\.trash-[0-9a-f]{32}$/;
const LOCK = /^\.lock-\d+-\d+$/;

export interface CleanReport {
  /** Layers removed (their owner died while running or aborting). */
  readonly removed: string[];
  /** Layers whose interrupted commit was finished. */
  readonly committed: string[];
  /** Layers that could not be cleaned, and why (left in place). */
  readonly failed: { readonly dir: string; readonly error: Error }[];
}

/** The layers of a store and their description, kept ones included. */
export function listLayers(storage?: string): { dir: string; meta: LayerMeta }[] {
  return layersIn(checkedStore(storage));
}

/**
 * Cleans the store: removes the layers of dead owners that were running or
 * aborting, finishes those that were committing (under the lower's lock),
 * and removes what interrupted makings and removals left. Kept layers and
 * layers of live owners are left alone.
 */
export function cleanStaleLayers(storage?: string): CleanReport {
  const store = checkedStore(storage);
  const report: CleanReport = { removed: [], committed: [], failed: [] };
  for (const name of readdirSync(store)) {
    const path = join(store, name);
    if (TRASH.test(name)) {
      unmountUpper(path);
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    const building = BUILDING.exec(name);
    if (building !== null) {
      if (building[2] !== '' && ownerGone({ pid: Number(building[1]), startTime: building[2]! })) {
        unmountUpper(path);
        rmSync(path, { recursive: true, force: true });
      }
      continue;
    }
    if (LOCK.test(name)) {
      // A lock file whose holder died holding it: nobody holds it now.
      const lock = tryLock(path);
      if (lock !== null) unlock(lock);
    }
  }
  for (const { dir, meta } of layersIn(store)) {
    if (meta.state === 'kept' || !ownerGone(meta.owner)) continue;
    try {
      if (meta.state === 'committing') {
        const lock = lockLower(store, meta.device, meta.inode);
        try {
          finishOthers(store, meta.device, meta.inode);
        } finally {
          unlock(lock);
        }
        report.committed.push(dir);
      } else {
        removeLayerDir(store, dir.slice(store.length + 1));
        report.removed.push(dir);
      }
    } catch (error) {
      report.failed.push({ dir, error: error as Error });
    }
  }
  return report;
}
