// The temporary directory that holds this process's delegation socket
// (nesting.ts), and the removal of it: when this process exits, when a signal
// that would end it without running its 'exit' listeners arrives (SIGINT,
// SIGTERM, SIGHUP with no other listener), and, for a process killed
// outright (SIGKILL), by the next process that makes one.
//
// The directory's name says whose it is: `sandlock-NS-PID-START-XXXXXX`, the
// owner's pid namespace (the inode of /proc/self/ns/pid), pid, and start time
// (field 22 of /proc/PID/stat). A pid alone may be reused by the time another
// process looks; with its start time it names one process. A directory of
// another pid namespace (a container sharing /tmp) or of another user, or
// whose owner cannot be told, is never touched.

import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTimeOf } from '@sandlock/sys';

/** The socket's name inside the directory. */
export const SOCKET_NAME = 'supervisor.sock';

const OWNED = /^sandlock-(\d+)-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

/** Signals whose default action ends a process without its 'exit' listeners. */
const ENDING_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The inode of this process's pid namespace, or null where it cannot be told. */
export function pidNamespace(): string | null {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Removes the socket and then the directory, which must then be empty: never more. */
function remove(dir: string): void {
  try {
    unlinkSync(join(dir, SOCKET_NAME));
  } catch {}
  try {
    rmdirSync(dir);
  } catch {}
}

/**
 * Whether the process that made a directory named `sandlock-NS-PID-START-…`
 * is gone. False whenever that cannot be told for sure.
 */
function ownerGone(namespace: string, pid: number, start: number): boolean {
  if (namespace !== pidNamespace()) return false;
  try {
    return startTimeOf(pid) !== start;
  } catch {
    return false;
  }
}

/** Removes the socket directories in `parent` of this user whose owner is gone. */
export function removeAbandoned(parent = tmpdir()): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const match = OWNED.exec(name);
    if (match === null) continue;
    const dir = join(parent, name);
    try {
      const stat = lstatSync(dir);
      if (!stat.isDirectory() || stat.uid !== uid) continue;
    } catch {
      continue;
    }
    if (ownerGone(match[1]!, Number(match[2]), Number(match[3]))) remove(dir);
  }
}

/**
 * Makes a fresh 0700 directory for this process's socket, removed when this
 * process ends (see above), after removing abandoned ones. Throws when it
 * cannot be made.
 */
export function makeSocketDir(): string {
  removeAbandoned();
  const namespace = pidNamespace();
  let start: number | null = null;
  try {
    start = startTimeOf(process.pid);
  } catch {}
  const prefix =
    namespace !== null && start !== null
      ? `sandlock-${namespace}-${process.pid}-${start}-`
      : 'sandlock-';
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let removed = false;
  const cleanup = () => {
    if (removed) return;
    removed = true;
    remove(dir);
  };
  process.once('exit', cleanup);
  // A listener replaces the signal's default action. When ours is the only
  // one, the host had none: remove the directory, then let the signal end the
  // process as it would have. Otherwise the host handles the signal; if it
  // then exits, the 'exit' listener removes the directory.
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    cleanup();
    for (const each of ENDING_SIGNALS) process.off(each, onSignal);
    process.kill(process.pid, signal);
  };
  for (const signal of ENDING_SIGNALS) process.on(signal, onSignal);
  return dir;
}
