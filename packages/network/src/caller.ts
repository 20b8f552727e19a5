// What the destinations module reads of a caller in /proc/<tid>/status: its
// identity (what the kernel would put in its SCM_CREDENTIALS), its
// signals (whether the kernel would have interrupted its connect) and its
// umask (the mode of a socket file it binds).
import { readProc } from '@sandlock/sys';

export interface CallerStatus {
  readonly tgid: number;
  /** Real, effective, saved and file-system uid. */
  readonly uids: readonly number[];
  readonly gids: readonly number[];
  readonly capEff: bigint;
  /** Signals pending for the thread or its process, not blocked, with a handler. */
  readonly interrupting: bigint;
  /** Those of them pending for the thread itself (delivered to it, none other). */
  readonly interruptingThread: bigint;
  /** The file-mode creation mask (`Umask:`, Linux 4.7 and later). */
  readonly umask: number;
}

function line(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1];
}

const hex = (text: string | undefined): bigint => BigInt(`0x${text ?? '0'}`);

/** The caller's status, or null when it cannot be read (it is gone). */
export function callerStatus(tid: number): CallerStatus | null {
  const status = readProc(`/proc/${tid}/status`);
  if (status === null) return null;
  const tgid = line(status, 'Tgid');
  const uids = line(status, 'Uid')?.split(/\s+/).map(Number);
  const gids = line(status, 'Gid')?.split(/\s+/).map(Number);
  const umask = line(status, 'Umask');
  if (tgid === undefined || umask === undefined || uids?.length !== 4 || gids?.length !== 4) {
    return null;
  }
  const own = hex(line(status, 'SigPnd'));
  const pending = own | hex(line(status, 'ShdPnd'));
  const deliverable = ~hex(line(status, 'SigBlk')) & hex(line(status, 'SigCgt'));
  return {
    tgid: Number(tgid),
    uids,
    gids,
    capEff: hex(line(status, 'CapEff')),
    interrupting: pending & deliverable,
    interruptingThread: own & deliverable,
    umask: Number.parseInt(umask, 8),
  };
}
