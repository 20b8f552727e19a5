// The per-user registry of running sandboxes, which `Sandbox.list()`,
// `Sandbox.kill()` and `sandlock ps/inspect/kill` read.
//
// A directory, `$XDG_RUNTIME_DIR/sandlock` or else `<tmpdir>/sandlock-<uid>`,
// made 0700 and refused when it is not a directory of this user that no one
// else may write (an entry names a pid to signal: a planted one must not be
// believed). In it, one `<name>.json` per sandbox, written whole to a
// temporary name and renamed (a reader never sees half an entry), and
// `registry.lock`, whose flock(2) every change and every listing holds: a name
// is claimed, and a stale entry pruned, by one process at a time.
//
// An entry is stale when its reaper is gone: no /proc/<pid>, another start
// time there (the pid was reused), or a zombie (the reaper exits only once
// every process of the sandbox has). Its host removes it when the sandbox
// ends; after a crash, the next reader does. An entry of another pid
// namespace (a container sharing the directory) cannot be judged: it is
// neither listed nor pruned.

import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { flock, LOCK_EX, LOCK_NB, LOCK_UN, ProcReadError, readProc } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';
import { pidNamespace } from './socket-dir.js';

/** A port the sandbox bound, as it sees it (`virtual`) and as the host has it (`real`). */
export interface PortMapping {
  protocol: 'tcp' | 'udp';
  virtual: number;
  real: number;
}

/** A running sandbox, as the registry lists it. */
export interface SandboxEntry {
  /** Unique among the user's running sandboxes. */
  name: string;
  /** The program's pid. */
  pid: number;
  /** The reaper's pid (signals to the whole sandbox go to it). */
  reaperPid: number;
  /** When it started (ISO 8601). */
  startedAt: string;
  /** The program and its arguments. */
  command: string[];
  /** The policy it runs under, as `sandbox.policy` (`Sandbox.fromPolicy` takes it). */
  policy: Policy;
  /** Ports it bound that the host has under another number (`portRemap`). */
  ports: PortMapping[];
}

/** A process, told from a later one of the same pid by its start time. */
interface ProcessId {
  pid: number;
  /** Field 22 of /proc/<pid>/stat. */
  startTime: number;
}

/**
 * What the registry stores. A name is claimed before the launch (`reaper`
 * null: it holds while its host runs), then the entry is completed once the
 * program's pid is known.
 */
interface Stored {
  version: 1;
  name: string;
  /** Tells this claim from a later one of the same name. */
  claim: string;
  /** The process that started the sandbox. */
  host: ProcessId;
  reaper: ProcessId | null;
  pid: number | null;
  /** The inode of the pid namespace (/proc/self/ns/pid), or null where it could not be told. */
  pidNamespace: string | null;
  startedAt: string;
  command: string[];
  policy: Policy;
  ports: PortMapping[];
}

/** A name of a sandbox: also its file name in the registry. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const DEFAULT_NAME = /^sandbox-(\d+)$/;
const LOCK_FILE = 'registry.lock';
/** How long a lock held by another process is waited for: only a hang is caught. */
const LOCK_WAIT_MS = 10_000;
const LOCK_RETRY_MS = 5;

/** What a sandbox name is. */
export const SANDBOX_NAME_RULE =
  "a sandbox name (1 to 64 letters, digits, '_', '.', '-', not starting with '.' or '-')";

/** Why a name cannot name a sandbox, or null when it can. */
export function badSandboxName(name: unknown): string | null {
  if (typeof name === 'string' && NAME.test(name) && !name.endsWith('.json')) return null;
  return `expected ${SANDBOX_NAME_RULE}, got ${JSON.stringify(name)}`;
}

/** Where this user's registry is (not checked). */
export function registryDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime?.startsWith('/')) return join(runtime, 'sandlock');
  return join(tmpdir(), `sandlock-${process.getuid?.() ?? 'user'}`);
}

function registryError(message: string, cause?: unknown): SandboxError {
  return new SandboxError(`sandlock: sandbox registry: ${message}`, 'registry', { cause });
}

/**
 * The registry directory, checked: ours, a directory (not a symlink), and
 * written by no one else. `create`: made (0700) when missing; otherwise
 * null when missing (no sandbox was ever listed there).
 */
function checkedDirectory(create: boolean): string | null {
  const dir = registryDirectory();
  if (create) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if (!create && (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const uid = process.getuid?.();
  if (!stat.isDirectory()) {
    throw registryError(`${dir} is not a directory (a symlink or a file?); refusing it`);
  }
  if (stat.uid !== uid) {
    throw registryError(
      `${dir} belongs to uid ${stat.uid}, not to this user (${uid}); refusing it`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw registryError(
      `${dir} may be written by its group or others (mode ${(stat.mode & 0o7777).toString(8)}); refusing it (chmod 700 it)`,
    );
  }
  return dir;
}

/**
 * The lock file of a registry directory, open for the life of this process
 * (one descriptor, whatever the number of sandboxes): giving a name back
 * must not need a descriptor, which a start that failed for want of them
 * does not have. Opened again when the file there is another one (the
 * directory was removed and made again).
 */
const lockFds = new Map<string, number>();

function lockFd(dir: string): number {
  const path = join(dir, LOCK_FILE);
  const known = lockFds.get(dir);
  if (known !== undefined) {
    try {
      if (fstatSync(known).ino === lstatSync(path).ino) return known;
    } catch {}
    lockFds.delete(dir);
    closeSync(known);
  }
  const fd = openSync(path, 'a', 0o600);
  lockFds.set(dir, fd);
  return fd;
}

/** Runs `body` holding the registry's lock. */
async function locked<T>(dir: string, body: () => T): Promise<T> {
  const deadline = performance.now() + LOCK_WAIT_MS;
  // Never blocking: a holder that is stopped must not stall this event loop.
  // `body` runs without yielding, so this process's own calls never overlap.
  let fd = lockFd(dir);
  while (!flock(fd, LOCK_EX | LOCK_NB)) {
    if (performance.now() > deadline) {
      throw registryError(`${join(dir, LOCK_FILE)} stayed locked for ${LOCK_WAIT_MS / 1000}s`);
    }
    await sleep(LOCK_RETRY_MS);
    fd = lockFd(dir);
  }
  try {
    return body();
  } finally {
    flock(fd, LOCK_UN);
  }
}

/**
 * readProc, tried again a few times on EAGAIN: inside a /proc-readable
 * sandbox the open is made on the sandbox's behalf and fails with EAGAIN
 * while its reaper is late to answer.
 */
function readTransient(path: string): string | null {
  for (let attempt = 1; ; attempt++) {
    try {
      return readProc(path);
    } catch (error) {
      if (!(error instanceof ProcReadError && error.code === 'EAGAIN') || attempt === 5)
        throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * attempt);
    }
  }
}

/** The state letter and start time of a process, or null when there is none. */
function processStat(pid: number): { state: string; startTime: number } | null {
  const stat = readTransient(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), rest[19] field 22 (starttime).
  return { state: rest[0] ?? '', startTime: Number.parseInt(rest[19] ?? '', 10) };
}

/** Whether a process still runs: same start time, not a zombie (a reaper exits only once every process of its sandbox has). */
export function stillRuns(id: ProcessId): boolean {
  const stat = processStat(id.pid);
  return stat !== null && stat.startTime === id.startTime && stat.state !== 'Z';
}

function isProcessId(value: unknown): value is ProcessId {
  const id = value as ProcessId;
  return (
    typeof id === 'object' &&
    id !== null &&
    Number.isSafeInteger(id.pid) &&
    id.pid > 0 &&
    Number.isSafeInteger(id.startTime)
  );
}

function isStored(value: unknown): value is Stored {
  const entry = value as Stored;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    entry.version === 1 &&
    badSandboxName(entry.name) === null &&
    typeof entry.claim === 'string' &&
    isProcessId(entry.host) &&
    (entry.reaper === null ? entry.pid === null : isProcessId(entry.reaper)) &&
    (entry.pid === null || Number.isSafeInteger(entry.pid)) &&
    typeof entry.startedAt === 'string' &&
    Array.isArray(entry.command) &&
    Array.isArray(entry.ports) &&
    typeof entry.policy === 'object'
  );
}

type Judged =
  | { kind: 'live'; entry: Stored }
  | { kind: 'stale' }
  /** Gone, or another pid namespace's, or another version's: left alone. */
  | { kind: 'foreign' };

function judge(dir: string, file: string): Judged {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'foreign' };
    if (error instanceof SyntaxError) return { kind: 'stale' };
    throw error;
  }
  if ((value as Stored | null)?.version !== 1) return { kind: 'foreign' };
  if (!isStored(value) || `${value.name}.json` !== file) return { kind: 'stale' };
  if (value.pidNamespace !== pidNamespace()) return { kind: 'foreign' };
  return stillRuns(value.reaper ?? value.host) ? { kind: 'live', entry: value } : { kind: 'stale' };
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The live entries (claims too), after removing the stale ones. Under the lock. */
function liveEntries(dir: string): Stored[] {
  const live: Stored[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json') || file.startsWith('.')) continue;
    const judged = judge(dir, file);
    if (judged.kind === 'live') live.push(judged.entry);
    else if (judged.kind === 'stale') removeFile(join(dir, file));
  }
  return live.sort(
    (a, b) => a.startedAt.localeCompare(b.startedAt) || a.name.localeCompare(b.name),
  );
}

/** The entry as the library gives it, or null for a claim whose sandbox has not started yet. */
function publicEntry(stored: Stored): SandboxEntry | null {
  const { name, pid, reaper, startedAt, command, policy, ports } = stored;
  if (reaper === null || pid === null) return null;
  return { name, pid, reaperPid: reaper.pid, startedAt, command, policy, ports };
}

/** Which file a path is now (inode and change time), or null when there is none: told without a descriptor. */
function fileIdentity(path: string): string | null {
  try {
    const stat = lstatSync(path, { bigint: true });
    return `${stat.ino}:${stat.ctimeNs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Writes an entry whole, then renames it into place; returns the file's identity. Under the lock. */
function writeEntry(dir: string, entry: Stored): string | null {
  const path = join(dir, `${entry.name}.json`);
  const temporary = join(dir, `.${entry.name}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, `${JSON.stringify(entry)}\n`, { mode: 0o600, flag: 'w' });
    renameSync(temporary, path);
  } catch (error) {
    removeFile(temporary);
    throw error;
  }
  return fileIdentity(path);
}

/** The first `sandbox-N` above every live one's N. */
function defaultName(live: readonly Stored[]): string {
  let highest = 0;
  for (const entry of live) {
    const match = DEFAULT_NAME.exec(entry.name);
    if (match !== null) highest = Math.max(highest, Number(match[1]));
  }
  return `sandbox-${highest + 1}`;
}

/** The user's running sandboxes (stale entries removed on the way). */
export async function listSandboxes(): Promise<SandboxEntry[]> {
  const dir = checkedDirectory(false);
  if (dir === null) return [];
  return locked(dir, () =>
    liveEntries(dir).flatMap((stored) => {
      const entry = publicEntry(stored);
      return entry === null ? [] : [entry];
    }),
  );
}

/** A sandbox's place in the registry, held by its host while it runs. */
export interface Registration {
  readonly name: string;
  /** Completes the entry once the program runs; false when it could not be (the sandbox then runs unlisted). */
  started(pid: number, reaperPid: number): Promise<boolean>;
  /** Replaces the entry's ports (the port-remap module reports each bind). */
  setPorts(ports: readonly PortMapping[]): Promise<void>;
  /** Removes the entry (once; later calls do nothing). */
  remove(): Promise<void>;
}

/**
 * Whether an error says this process may not use the registry: it may not
 * write the directory (EACCES, EPERM, EROFS), its parent does not exist
 * (an XDG_RUNTIME_DIR of a session that ended), or it may not read the
 * /proc files that tell live entries from stale ones (inside a sandbox).
 */
function notAllowed(error: unknown): boolean {
  if (error instanceof ProcReadError) return error.code === 'EACCES' || error.code === 'EPERM';
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT';
}

let claims = 0;

/**
 * Claims `name`, or the next free `sandbox-N`, for a sandbox about to
 * start. Throws a SandboxError (step 'name') when a running sandbox holds
 * the name, (step 'registry') when the directory is refused or cannot be
 * written; returns null when this process may not use the registry at all
 * (see notAllowed), and the sandbox runs unlisted.
 */
export async function claimName(details: {
  name: string | undefined;
  command: readonly string[];
  policy: Policy;
}): Promise<Registration | null> {
  let where: string;
  let stored: Stored;
  let identity: string | null = null;
  try {
    const self = processStat(process.pid);
    if (self === null) throw registryError('cannot read /proc/self/stat');
    where = checkedDirectory(true)!;
    const dir = where;
    stored = await locked(dir, () => {
      const live = liveEntries(dir);
      const name = details.name ?? defaultName(live);
      const holder = live.find((entry) => entry.name === name);
      if (holder !== undefined) {
        const who =
          holder.pid !== null ? `pid ${holder.pid}` : `starting, host pid ${holder.host.pid}`;
        throw new SandboxError(
          `sandlock: a running sandbox is already called '${name}' (${who}); choose another name, or end it first (sandlock kill ${name})`,
          'name',
        );
      }
      const entry: Stored = {
        version: 1,
        name,
        claim: `${process.pid}-${self.startTime}-${++claims}`,
        host: { pid: process.pid, startTime: self.startTime },
        reaper: null,
        pid: null,
        pidNamespace: pidNamespace(),
        startedAt: new Date().toISOString(),
        command: [...details.command],
        policy: details.policy,
        ports: [],
      };
      identity = writeEntry(dir, entry);
      return entry;
    });
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    if (notAllowed(error)) return null;
    throw registryError((error as Error).message, error);
  }
  const path = join(where, `${stored.name}.json`);
  let removed = false;
  /**
   * Runs `body` under the lock when the file under the name is still the one
   * this claim wrote (another may have taken the name once this sandbox's
   * entry was pruned). Told by inode and change time, with no descriptor.
   */
  const ifOurs = (body: () => void) =>
    locked(where, () => {
      if (identity !== null && fileIdentity(path) === identity) body();
    });
  const registration: Registration = {
    name: stored.name,
    async started(pid, reaperPid) {
      let reaper: ReturnType<typeof processStat>;
      try {
        reaper = processStat(reaperPid);
      } catch (error) {
        if (!notAllowed(error)) throw registryError((error as Error).message, error);
        reaper = null;
      }
      if (reaper === null) {
        await registration.remove();
        return false;
      }
      stored = { ...stored, pid, reaper: { pid: reaperPid, startTime: reaper.startTime } };
      await ifOurs(() => {
        identity = writeEntry(where, stored);
      });
      return true;
    },
    async setPorts(ports) {
      if (removed) return;
      stored = { ...stored, ports: ports.map((port) => ({ ...port })) };
      await ifOurs(() => {
        identity = writeEntry(where, stored);
      });
    },
    async remove() {
      if (removed) return;
      removed = true;
      await ifOurs(() => removeFile(path));
    },
  };
  return registration;
}

/** A running sandbox's entry and its reaper (to pin the process before signalling it), or null. */
export async function findSandbox(
  name: string,
): Promise<{ entry: SandboxEntry; reaper: ProcessId } | null> {
  const dir = checkedDirectory(false);
  if (dir === null || badSandboxName(name) !== null) return null;
  return locked(dir, () => {
    const judged = judge(dir, `${name}.json`);
    if (judged.kind !== 'live') return null;
    const entry = publicEntry(judged.entry);
    return entry === null || judged.entry.reaper === null
      ? null
      : { entry, reaper: judged.entry.reaper };
  });
}

/** Prunes the entry `name` when its reaper is gone (after a kill). */
export async function pruneEnded(name: string): Promise<void> {
  const dir = checkedDirectory(false);
  if (dir === null || badSandboxName(name) !== null) return;
  await locked(dir, () => {
    if (judge(dir, `${name}.json`).kind === 'stale') removeFile(join(dir, `${name}.json`));
  });
}
