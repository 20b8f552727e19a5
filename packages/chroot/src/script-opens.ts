// The script a `#!` interpreter started from inside the root opens by the
// path its caller executed (binfmt_script gives the interpreter that path,
// fs/binfmt_script.c): the file that was checked and executed, not what the
// path names by the time the interpreter opens it. The first open of that
// path by the process after its exec gets the descriptor kept here.
import { close } from '@sandlock/sys';

/** More pending scripts than processes that start one at a time: the oldest are dropped. */
const MAX_PENDING = 64;

export class ScriptOpens {
  private readonly pending = new Map<number, { path: string; fd: number }>();

  get size(): number {
    return this.pending.size;
  }

  /** Keeps `fd` (this object owns it) for the next open of `path` by thread group `tgid`. */
  set(tgid: number, path: string, fd: number): void {
    this.drop(tgid);
    if (this.pending.size >= MAX_PENDING) this.drop(this.pending.keys().next().value as number);
    this.pending.set(tgid, { path, fd });
  }

  /** The descriptor kept for an open of `path` by `tgid` (the caller owns it), or null. */
  take(tgid: number, path: string): number | null {
    const entry = this.pending.get(tgid);
    if (entry === undefined || entry.path !== path) return null;
    this.pending.delete(tgid);
    return entry.fd;
  }

  /** Forgets what `tgid` had pending (it executes something else). */
  drop(tgid: number): void {
    const entry = this.pending.get(tgid);
    if (entry === undefined) return;
    this.pending.delete(tgid);
    close(entry.fd);
  }

  close(): void {
    for (const { fd } of this.pending.values()) close(fd);
    this.pending.clear();
  }
}
