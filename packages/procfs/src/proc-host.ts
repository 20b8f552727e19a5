// The host's load, mount layout and sockets kept from a sandbox's /proc, as
// a handler module of @sandlock/dispatch: /proc/loadavg counts the sandbox's
// tasks only, the mount tables of its processes (/proc/<pid>/mounts,
// mountinfo, mountstats, and their task/<tid> forms, so /proc/mounts and
// /etc/mtab too) hold only the mounts the policy shows, and their socket
// tables (/proc/<pid>/net/tcp, unix…, so /proc/net/*) only the sandbox's
// own sockets. The supervisor
// imports this file in its worker threads by URL (PROC_HOST_MODULE), so it
// has no side effects at import.
//
// It decides on the proc-pids module's resolution of the path (shared for
// the same call: /proc/self is the caller's, symlinks followed, pids outside
// the sandbox already refused with ENOENT), and must come right after it.

import { fstatSync } from 'node:fs';
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  PROC_NET_PORTS,
  type WorkerSession,
} from '@sandlock/dispatch/module';
import { type ModulePolicy, policyReads } from '@sandlock/policy';
import {
  CAP_DAC_OVERRIDE,
  CAP_DAC_READ_SEARCH,
  close,
  descriptorsOf,
  encodeOpenHow,
  hostArch,
  openAt,
  openFlags,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_XDEV,
  trySyscall,
} from '@sandlock/sys';
import {
  filterLocks,
  filterMountTable,
  type HostFile,
  hostFileOf,
  loadavgText,
  type MountTable,
  mountPointVisible,
  sysvipcHeader,
} from './host-content.js';
import { dropLoad, sandboxLoad, startLoad } from './load-state.js';
import { filterSocketTable, type NetSocketFile, socketInodes } from './net-content.js';
import { insideSandbox, parentIn, readProcFile } from './proc-path.js';
import { OPEN_SYSCALLS, serve, sharedOpenRequest } from './synthetic.js';

/** The syscalls the proc-host module is notified of. */
export const PROC_HOST_SYSCALLS: readonly string[] = [...OPEN_SYSCALLS];

const O = openFlags(hostArch());
const RESOLVE = BigInt(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
const PIN_HOW = encodeOpenHow({
  flags: BigInt(O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC),
  resolve: RESOLVE,
});
const READ_HOW = encodeOpenHow({ flags: BigInt(O.O_RDONLY | O.O_CLOEXEC), resolve: RESOLVE });

// ---- /proc/loadavg ----------------------------------------------------------

/**
 * /proc/loadavg for the sandbox: its averages, brought up to date with the
 * count now (over the whole time since the previous update, by this module
 * or the sysinfo module: load-state.ts), its running and
 * total tasks, and its highest pid (the kernel prints the last pid handed
 * out in the pid namespace, the host's: fs/proc/loadavg.c).
 */
function loadavg(ctx: HandlerContext<ModulePolicy>): string {
  const { load, tasks } = sandboxLoad(ctx);
  return loadavgText(load, tasks.running, tasks.total, tasks.last);
}

// ---- mount tables -----------------------------------------------------------

let procFd = -1;

/** The supervisor's /proc (O_PATH), opened once per worker: the tables are read beneath it. */
function proc(): number {
  if (procFd < 0) procFd = openAt('/proc', O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC);
  return procFd;
}

const chunk = Buffer.alloc(64 * 1024);

/** The whole of an open file (seq_file: read until 0), one character per byte; or -errno. */
function readAll(fd: number): string | number {
  const parts: Buffer[] = [];
  for (;;) {
    const count = trySyscall('read', fd, chunk, chunk.length);
    if (count < 0) return count;
    if (count === 0) break;
    parts.push(Buffer.from(chunk.subarray(0, count)));
  }
  return Buffer.concat(parts).toString('latin1');
}

/** The whole of a file beneath the supervisor's /proc (one character per byte), or -errno. */
function readFileOf(path: string): string | number {
  const fd = trySyscall(
    'openat2',
    proc(),
    Buffer.from(`${path.slice('/proc/'.length)}\0`),
    READ_HOW,
    READ_HOW.length,
  );
  if (fd < 0) return fd;
  try {
    return readAll(fd);
  } finally {
    close(fd);
  }
}

/**
 * Whether the caller may read a file of this mode and owner, as
 * generic_permission() decides (fs/namei.c): `mountstats` is S_IRUSR, owned
 * by the process's euid (fs/proc/base.c), `mounts` and `mountinfo` are for
 * everyone. Null: the caller's status could not be read.
 */
function callerMayRead(tid: number, mode: number, uid: number, gid: number): boolean | null {
  if ((mode & 0o004) !== 0) return true;
  const status = readProcFile(`/proc/${tid}/status`);
  if (status === null) return null;
  const line = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1];
  const fsuid = Number(line('Uid')?.split(/\s+/)[3]);
  const fsgid = Number(line('Gid')?.split(/\s+/)[3]);
  const groups = (line('Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
  const cap = BigInt(`0x${line('CapEff') ?? '0'}`);
  if ((cap & ((1n << BigInt(CAP_DAC_OVERRIDE)) | (1n << BigInt(CAP_DAC_READ_SEARCH)))) !== 0n)
    return true;
  if (fsuid === uid) return (mode & 0o400) !== 0;
  if (fsgid === gid || groups.includes(gid)) return (mode & 0o040) !== 0;
  return false;
}

/**
 * A file of a sandbox process's /proc directory (a mount table, a socket
 * table), read by the supervisor beneath its /proc from that directory,
 * pinned (O_PATH) first: its membership is asked again through the pin once
 * the file is read, so a pid that the proc-pids module checked and that was
 * reused meanwhile by a process outside serves nothing. Then `shape` cuts
 * the text to what the sandbox may see.
 */
function pidFile(
  ctx: HandlerContext<ModulePolicy>,
  file: Extract<HostFile, { pid: number }>,
  cloexec: boolean,
  shape: (text: string) => string,
): Answer {
  const pin = trySyscall('openat2', proc(), Buffer.from(`${file.pid}\0`), PIN_HOW, PIN_HOW.length);
  if (pin < 0) return answer.errno(-pin);
  let text: string | number;
  let member: boolean;
  let allowed: boolean | null;
  try {
    const how = READ_HOW;
    const fd = trySyscall('openat2', pin, Buffer.from(`${file.relative}\0`), how, how.length);
    if (fd < 0) return answer.errno(-fd);
    try {
      const stat = fstatSync(fd);
      allowed = callerMayRead(ctx.pid, stat.mode, stat.uid, stat.gid);
      text = allowed === true ? readAll(fd) : '';
    } finally {
      close(fd);
    }
    const reaper = ctx.session.reaperPid;
    const parent = file.pid === ctx.pid ? reaper : parentIn(readProcFile('stat', pin));
    member =
      parent !== null &&
      (parent === reaper || (parent > 1 && insideSandbox(parent, reaper) === true));
  } finally {
    close(pin);
  }
  // The caller's /proc files were read: is it still the caller?
  if (!ctx.valid()) return answer.continue();
  if (!member) return answer.errno('ENOENT');
  if (allowed === null) return answer.continue();
  if (!allowed) return answer.errno('EACCES');
  if (typeof text === 'number') return answer.errno(-text);
  return serve(Buffer.from(shape(text), 'latin1'), cloexec);
}

/**
 * The kernel's mount points are relative to the reading process's root
 * (seq_path_root() in show_mountinfo(), d_path() in show_vfsmnt(),
 * fs/proc_namespace.c), which is the host's for a sandbox without a root of
 * its own: the policy's paths name them.
 */
function mountTable(table: MountTable, policy: ModulePolicy): (text: string) => string {
  return (text) => filterMountTable(table, text, (point) => mountPointVisible(policy, point));
}

// ---- socket tables ------------------------------------------------------------

/**
 * The inodes of the sockets the sandbox's processes hold, from their
 * /proc/<pid>/fd links, or an empty set when any of them cannot be read
 * (fail closed: no socket shown rather than the host's).
 */
function sandboxSockets(ctx: HandlerContext<ModulePolicy>): Set<string> {
  const inodes = new Set<string>();
  try {
    for (const pid of ctx.session.processes.refresh()) {
      const links = descriptorsOf(pid);
      if (links !== null) socketInodes(links.values(), inodes);
    }
  } catch {
    return new Set();
  }
  return inodes;
}

/**
 * Under portRemap, a TCP or UDP table with the ports the sandbox bound
 * elsewhere shown as it asked for them: the translator the network's binds
 * module provides for the session (PROC_NET_PORTS), which holds its port
 * space; none provided, the real ports.
 */
function virtualPorts(
  ctx: HandlerContext<ModulePolicy>,
  table: NetSocketFile,
  text: string,
): string {
  if (!ctx.session.policy.binds.remap) return text;
  const protocol =
    table === 'tcp' || table === 'tcp6'
      ? 'tcp'
      : table === 'udp' || table === 'udp6'
        ? 'udp'
        : null;
  const translate = ctx.session.provided(PROC_NET_PORTS);
  return protocol === null || translate === undefined ? text : translate(text, protocol);
}

// ---- the module -------------------------------------------------------------

/** Read-only opens of /proc/loadavg and of the mount tables, as the proc-pids module resolved them. */
function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  // Null: proc-pids did not resolve this call (not a plain read, or a path
  // that cannot land in /proc, or hidden: then the chain ended there).
  const request = sharedOpenRequest(ctx);
  if (request === null) return answer.continue();
  const file = hostFileOf(request.path);
  if (file === null) return answer.continue();
  // An fsDeny entry on the file (or above it): the kernel refuses the real one.
  if (!policyReads(ctx.session.policy, request.path)) return answer.continue();
  if (file.kind === 'loadavg') return serve(loadavg(ctx), request.cloexec);
  if (file.kind === 'locks' || file.kind === 'sysvipc') {
    const text = readFileOf(request.path);
    if (typeof text === 'number') return answer.errno(-text);
    if (file.kind === 'sysvipc')
      return serve(Buffer.from(sysvipcHeader(text), 'latin1'), request.cloexec);
    const reaper = ctx.session.reaperPid;
    const memo = new Map<number, boolean>();
    const kept = filterLocks(
      text,
      (pid) => pid !== reaper && insideSandbox(pid, reaper, memo) === true,
    );
    return serve(Buffer.from(kept, 'latin1'), request.cloexec);
  }
  if (file.kind === 'net') {
    const table = file.file;
    return pidFile(ctx, file, request.cloexec, (text) =>
      virtualPorts(ctx, table, filterSocketTable(table, text, sandboxSockets(ctx))),
    );
  }
  return pidFile(ctx, file, request.cloexec, mountTable(file.kind, ctx.session.policy));
}

/**
 * On for a sandbox whose policy lets it read /proc (`procReadable`, the
 * proc-pids module's condition), right after that module: /proc/loadavg
 * shows the sandbox's tasks, and its processes' mount tables only the
 * mounts the policy shows.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'proc-host',
  syscalls: PROC_HOST_SYSCALLS,
  enabled: (policy) => policy.procReadable,
  /**
   * It decides on the proc-pids module's resolution of the open (shared for
   * the same call: /proc/self is the caller's, pids outside the sandbox
   * already refused) and resolves no path itself.
   */
  after: ['proc-pids'],
  handlers: Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
  sessionStart(session: WorkerSession<ModulePolicy>) {
    startLoad(session.id);
  },
  sessionEnd(session: WorkerSession<ModulePolicy>) {
    dropLoad(session.id);
  },
});
