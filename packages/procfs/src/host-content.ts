// What the proc-host module serves, as pure functions: which opens are its
// own, the mount tables cut to what the policy shows, and /proc/loadavg of
// the sandbox's tasks. No I/O here, so they are tested without a sandbox.

import { type Policy, policyReads } from '@sandlock/policy';
import { bytePath, pathWithin } from '@sandlock/sys';
import { NET_SOCKET_FILES, type NetSocketFile } from './net-content.js';

/** The mount tables of a process (fs/proc_namespace.c). */
export type MountTable = 'mounts' | 'mountinfo' | 'mountstats';

/** An open the proc-host module serves. */
export type HostFile =
  | { readonly kind: 'loadavg' }
  /** /proc/locks: every file lock of the host, with its owner's pid. */
  | { readonly kind: 'locks' }
  /** /proc/sysvipc/shm, msg, sem: the host's System V IPC objects and their pids. */
  | { readonly kind: 'sysvipc' }
  | {
      readonly kind: MountTable;
      /** The /proc/<pid> directory the file is in. */
      readonly pid: number;
      /** Below it: `mounts`, or `task/<tid>/mounts`. */
      readonly relative: string;
    }
  /** A socket table of the process's network namespace: every socket of it, the host's too. */
  | {
      readonly kind: 'net';
      readonly file: NetSocketFile;
      readonly pid: number;
      /** Below it: `net/tcp`, or `task/<tid>/net/tcp`. */
      readonly relative: string;
    };

// task/<tid>/ has mounts and mountinfo but no mountstats (tid_base_stuff in
// fs/proc/base.c): that open finds nothing, as on the kernel.
const MOUNT_FILE = /^\/proc\/(\d+)\/((?:task\/\d+\/)?(mounts|mountinfo|mountstats))$/;
// /proc/net is a link to self/net (proc_net_init(), fs/proc/proc_net.c): resolved, it is one of these.
const NET_FILE = new RegExp(`^/proc/(\\d+)/((?:task/\\d+/)?net/(${NET_SOCKET_FILES.join('|')}))$`);

/**
 * The file of a resolved /proc path (as the proc-pids module resolves it:
 * /proc/self and /proc/thread-self already the caller's /proc/<tgid> and
 * /proc/<tgid>/task/<tid>, symlinks followed), or null when the path is not
 * one the proc-host module serves.
 */
export function hostFileOf(path: string): HostFile | null {
  if (path === '/proc/loadavg') return { kind: 'loadavg' };
  if (path === '/proc/locks') return { kind: 'locks' };
  if (/^\/proc\/sysvipc\/(shm|msg|sem)$/.test(path)) return { kind: 'sysvipc' };
  const net = NET_FILE.exec(path);
  if (net !== null) {
    const file = net[3] as NetSocketFile;
    return { kind: 'net', file, pid: Number(net[1]), relative: net[2]! };
  }
  const match = MOUNT_FILE.exec(path);
  if (match === null) return null;
  return { kind: match[3] as MountTable, pid: Number(match[1]), relative: match[2]! };
}

/**
 * A mount point as the kernel prints it, its escapes undone: the kernel
 * writes space, tab, newline and backslash as `\ooo` octal (mangle() and
 * seq_path_root() in fs/proc_namespace.c, with seq_escape); it escapes the
 * backslash itself, so every `\ooo` is an escape. The text is one character
 * per byte (latin1), and so is the result: a name that is not UTF-8 stays exact.
 */
export function decodeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8) & 0xff),
  );
}

/**
 * Whether a mount point shows to a sandbox: the policy lets it read the
 * mount point (fsRead or fsWrite holds it or an ancestor, no fsDeny entry
 * does), or the mount point is an ancestor of a path the policy grants (an
 * fsRead or fsWrite entry beneath it, itself readable): `/` and the mounts
 * that hold granted paths stay, a host mount elsewhere (/mnt/secret,
 * /home/x) does not. The mount point is one character per byte, as
 * decodeMountPath gives it.
 */
export function mountPointVisible(
  policy: Pick<Policy, 'fsRead' | 'fsWrite' | 'fsDeny'>,
  mountPoint: string,
): boolean {
  if (!mountPoint.startsWith('/')) return false;
  if (policyReads(policy, mountPoint)) return true;
  return [...policy.fsRead, ...policy.fsWrite].some(
    (entry) => pathWithin(bytePath(entry), mountPoint) && policyReads(policy, bytePath(entry)),
  );
}

/**
 * `device <dev> mounted on <mount point> with fstype <type>…`, the dev
 * mangled, or `no device mounted on …` for a mount without a device name
 * (show_mountstats() in fs/proc_namespace.c).
 */
const MOUNTSTATS_DEVICE = /^(?:device \S+|no device) mounted on (\S+) with fstype /;

/** The raw (still escaped) mount point of a line of `table`, or null when the line has none. */
function mountPointField(table: MountTable, line: string): string | null {
  if (table === 'mountstats') return MOUNTSTATS_DEVICE.exec(line)?.[1] ?? null;
  // mounts: `dev mountpoint type options 0 0` (show_vfsmnt); mountinfo:
  // `id parent major:minor root mountpoint options …` (show_mountinfo).
  // Fields are single-space separated and hold no raw spaces (mangled).
  const fields = line.split(' ');
  const field = fields[table === 'mounts' ? 1 : 4];
  return field === undefined || field === '' ? null : field;
}

/**
 * A mount table (`mounts`, `mountinfo` or `mountstats` of a process, as
 * text of one character per byte) with only the lines whose mount point is
 * `visible` (decoded first); kept lines are byte-identical and in order. In
 * `mountstats`, the indented lines after a device line are its statistics
 * (NFS's show_stats writes several, indented by a tab, fs/nfs/super.c): they
 * go with it. Any other line without a mount point (none in the kernel's
 * files) is dropped, and so are the indented lines after it.
 */
export function filterMountTable(
  table: MountTable,
  text: string,
  visible: (mountPoint: string) => boolean,
): string {
  const out: string[] = [];
  let keeping = false;
  // Each line with its newline (the last may lack one).
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    const body = line.endsWith('\n') ? line.slice(0, -1) : line;
    if (table === 'mountstats' && /^([\t ]|$)/.test(body)) {
      // A statistics line (indented), or the empty line NFS's statistics end
      // with: it goes with its device line.
      if (keeping) out.push(line);
      continue;
    }
    const field = mountPointField(table, body);
    keeping = field !== null && visible(decodeMountPath(field));
    if (keeping) out.push(line);
  }
  return out.join('');
}

/**
 * /proc/locks with only the locks held (or waited for) by processes for
 * which `member` says yes. A line is `id: [-> ]TYPE MODE ACCESS pid
 * major:minor:inode start end` (lock_get_status() in fs/locks.c); a lock
 * with no owning process (an open file description lock: pid -1) or a line
 * of another shape is dropped.
 */
export function filterLocks(text: string, member: (pid: number) => boolean): string {
  const out: string[] = [];
  for (const line of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    const fields = line.trim().split(/\s+/);
    const at = fields[1] === '->' ? 5 : 4;
    const pid = Number(fields[at]);
    if (/^\d+:$/.test(fields[0] ?? '') && Number.isInteger(pid) && pid > 0 && member(pid)) {
      out.push(line);
    }
  }
  return out.join('');
}

/**
 * A /proc/sysvipc file with its header line only: the sandbox's filter
 * refuses System V IPC, so none of the objects listed is the sandbox's.
 */
export function sysvipcHeader(text: string): string {
  const end = text.indexOf('\n');
  return end < 0 ? text : text.slice(0, end + 1);
}

/** The three load averages (1, 5 and 15 minutes), as plain numbers. */
export interface LoadAverages {
  readonly a1: number;
  readonly a5: number;
  readonly a15: number;
}

export const ZERO_LOAD: LoadAverages = Object.freeze({ a1: 0, a5: 0, a15: 0 });

/**
 * The averages after `elapsedMs` with `active` runnable or uninterruptible
 * tasks: each moves towards `active` as the kernel's exponential decay does
 * (kernel/sched/loadavg.c: a·e^(−t/T) + n·(1 − e^(−t/T)), T = 60, 300 and
 * 900 s), over the whole time at once: the count is sampled when the file is
 * read, not every 5 s.
 */
export function decayLoad(load: LoadAverages, active: number, elapsedMs: number): LoadAverages {
  const dt = Math.max(0, elapsedMs) / 1000;
  const step = (average: number, period: number) => {
    const keep = Math.exp(-dt / period);
    return average * keep + active * (1 - keep);
  };
  return { a1: step(load.a1, 60), a5: step(load.a5, 300), a15: step(load.a15, 900) };
}

/** FSHIFT and FIXED_1 of include/linux/sched/loadavg.h: the kernel keeps the averages (avenrun) in 11-bit fixed point. */
export const FSHIFT = 11;
const FIXED_1 = 1 << FSHIFT;

/**
 * An average as the kernel holds it in avenrun: 11-bit fixed point (FIXED_1
 * is 1.0), at least 0. /proc/loadavg prints it, sysinfo(2) shifts it, so the
 * two show the same number.
 */
export function fixedLoad(average: number): number {
  return Math.round(Math.max(0, average) * FIXED_1);
}

/**
 * One average as fs/proc/loadavg.c prints it: fixed point, FIXED_1/200 added
 * (get_avenrun's offset, which rounds to the nearest hundredth), then the
 * integer part and the hundredths truncated (LOAD_INT, LOAD_FRAC).
 */
function loadText(average: number): string {
  const fixed = fixedLoad(average) + Math.floor(FIXED_1 / 200);
  const whole = Math.floor(fixed / FIXED_1);
  const hundredths = Math.floor(((fixed % FIXED_1) * 100) / FIXED_1);
  return `${whole}.${String(hundredths).padStart(2, '0')}`;
}

/**
 * /proc/loadavg: `a1 a5 a15 running/total last\n` (fs/proc/loadavg.c). The
 * kernel's `running` counts the reader itself (it is running as it reads),
 * so with any task it is at least 1 and at most `total`.
 */
export function loadavgText(
  load: LoadAverages,
  running: number,
  total: number,
  last: number,
): string {
  const shown = total > 0 ? Math.min(Math.max(running, 1), total) : 0;
  return `${loadText(load.a1)} ${loadText(load.a5)} ${loadText(load.a15)} ${shown}/${total} ${last}\n`;
}
