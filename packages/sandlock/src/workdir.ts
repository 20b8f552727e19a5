// A sandbox's copy-on-write workdir: its layer made before the program
// starts, and finished when the sandbox has ended (the policy's onExit for
// status 0, onError otherwise; a dry run lists and discards; `defer` leaves
// the choice to the caller).
import { type Change, type DiskBound, finishLayer, Layer } from '@sandlock/cow';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

/** What a run does with the layer when the sandbox ends: the policy's choice, a dry run, or the caller's. */
export type WorkdirEnd = 'policy' | 'dry-run' | 'defer';

/** What became of a sandbox's workdir layer. */
export interface WorkdirResult {
  /**
   * What was done: committed to the workdir, aborted (discarded), kept in
   * the store (`kept`), or deferred: the caller decides with
   * {@link commit} or {@link abort}.
   */
  readonly done: 'commit' | 'abort' | 'keep' | 'deferred';
  /** The changes the layer held, against the workdir as it was at the end. */
  readonly changes: Change[];
  /**
   * With maxDisk, how it was enforced: `tmpfs` (the layer on a file system
   * of that size, writes past it failed with ENOSPC), `userns-tmpfs` (the
   * same, mounted in a user namespace of its own, without CAP_SYS_ADMIN) or
   * `measured` (the layer measured, the sandbox killed past it).
   */
  readonly diskBound?: DiskBound;
  /** For 'keep': the layer's directory (`sandlock cow commit|abort` takes it). */
  readonly kept?: string;
  /** For 'deferred': the layer's upper tree (what formatChanges diffs against the workdir). */
  readonly upper?: string;
  /** Applies a deferred layer to the workdir. */
  commit(): Promise<void>;
  /** Discards a deferred layer. */
  abort(): void;
}

/** The least time between two measures of a layer with maxDisk. */
const DISK_CHECK_MS = 100;
/** A measure may take at most this share of the time (a large layer is measured less often). */
const DISK_CHECK_SHARE = 0.05;

/** A layer of a sandbox being started. */
export class SandboxLayer {
  private diskTimer: NodeJS.Timeout | null = null;

  private constructor(readonly layer: Layer) {}

  static create(policy: Policy): SandboxLayer {
    try {
      return new SandboxLayer(
        Layer.create({
          lower: policy.workdir!,
          ...(policy.fsStorage !== null ? { storage: policy.fsStorage } : {}),
          maxDisk: policy.maxDisk,
        }),
      );
    } catch (error) {
      const where = policy.fsStorage !== null ? ` in fsStorage ${policy.fsStorage}` : '';
      const why = (error as Error).message.replace(/^sandlock: /, '');
      throw new SandboxError(
        `sandlock: cannot make the workdir's copy-on-write layer${where}: ${why}`,
        'workdir layer',
      );
    }
  }

  /** The layer as the cow module receives it in the session policy. */
  get forModules(): { dir: string; usage: SharedArrayBuffer; upper: string } {
    return { dir: this.layer.dir, usage: this.layer.usage, upper: this.layer.upper };
  }

  get confinement(): {
    lower: string;
    upper: string;
    store: string;
    diskBound: DiskBound | null;
  } {
    const { lower, upper, store, diskBound } = this.layer;
    return { lower, upper, store, diskBound };
  }

  /**
   * With maxDisk enforced by measures (not by a tmpfs upper, which the
   * kernel bounds): measures the upper on a timer, and calls `kill` with the
   * reason once it holds more than maxDisk (what the sandbox writes through
   * descriptors of the upper goes straight to the kernel, uncounted), or
   * cannot be measured. What it measured is counted, so the layer's own
   * copies and creations past maxDisk fail with ENOSPC meanwhile.
   * `processes`: the sandbox's, whose open files of the upper with no name
   * left are counted too.
   */
  watchDisk(kill: (reason: string) => void, processes: () => readonly number[]): void {
    const limit = this.layer.maxDisk;
    if (limit === null || this.layer.diskBound !== 'measured' || this.diskTimer !== null) return;
    const check = () => {
      const started = performance.now();
      const over = this.overDisk(limit, processes);
      if (over !== null) {
        this.diskTimer = null;
        kill(over);
        return;
      }
      const took = performance.now() - started;
      this.diskTimer = setTimeout(check, Math.max(DISK_CHECK_MS, took / DISK_CHECK_SHARE));
      this.diskTimer.unref();
    };
    check();
  }

  /** Why the layer is over maxDisk, or null. */
  private overDisk(limit: number, processes: () => readonly number[] = () => []): string | null {
    let used: number;
    try {
      used = this.layer.measure(processes());
    } catch (error) {
      return `sandlock: cannot measure the workdir's layer for maxDisk: ${(error as Error).message}`;
    }
    if (used <= limit) return null;
    return `the workdir's layer holds ${used} bytes, over maxDisk (${limit})`;
  }

  private stopDiskWatch(): void {
    if (this.diskTimer !== null) clearTimeout(this.diskTimer);
    this.diskTimer = null;
  }

  /** The sandbox did not start: nothing of the layer is kept. */
  discard(): void {
    this.stopDiskWatch();
    try {
      this.layer.abort();
    } catch {
      // Removed already, or left for cleanStaleLayers of a later run.
    }
  }

  /** The sandbox ended: `succeeded` when it exited 0 (not killed, not timed out). */
  async finish(policy: Policy, succeeded: boolean, end: WorkdirEnd): Promise<WorkdirResult> {
    this.stopDiskWatch();
    const layer = this.layer;
    // Written since the last measure: a layer over maxDisk at the end is an
    // error ending, whatever the status (onError decides). On a tmpfs upper
    // this counts the sizes of sparse files, which take no blocks there but
    // would take them in the workdir.
    const limit = layer.maxDisk;
    // The sandbox is gone: what it made unreadable to its owner is measured
    // too (a loosening that fails leaves the measure failing: an error ending).
    try {
      layer.loosen();
    } catch {}
    const within = limit === null || this.overDisk(limit) === null;
    const result = await finishLayer(layer, succeeded && within, {
      onExit: policy.onExit,
      onError: policy.onError,
      dryRun: end === 'dry-run',
      defer: end === 'defer',
    });
    let open = result.done === 'deferred';
    const decided = (what: string) => {
      if (!open) {
        throw new SandboxError(
          `sandlock: cannot ${what} the workdir's layer: it was already ${result.done === 'deferred' ? 'finished' : result.done === 'keep' ? 'kept' : `${result.done}ed`}`,
          what,
        );
      }
      open = false;
    };
    return {
      done: result.done,
      changes: result.changes,
      ...(layer.diskBound !== null ? { diskBound: layer.diskBound } : {}),
      ...(result.kept !== undefined ? { kept: result.kept } : {}),
      ...(result.done === 'deferred' ? { upper: layer.upper } : {}),
      async commit() {
        decided('commit');
        await layer.commitAsync();
      },
      abort() {
        decided('abort');
        layer.abort();
      },
    };
  }
}
