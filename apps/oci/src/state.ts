import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { flock, startTimeOf } from '@sandlock/sys';
import { doesNotExist, OciError } from './errors.js';

export const DEFAULT_ROOT = '/run/sandlock-oci';

/** flock(2) operations (include/uapi/asm-generic/fcntl.h). */
const LOCK_EX = 2;
const LOCK_UN = 8;
/** sun_path is 108 bytes with the terminating NUL (unix(7)). */
const SUN_PATH_MAX = 107;

/** What `create` records; never changed by the supervisor. */
export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  /** The supervisor: the process the pid file names. */
  pid: number;
  /** Its start time (/proc/PID/stat field 22), so that a reused pid is not taken for it. */
  pidStart: number;
  created: string;
  annotations: Record<string, string>;
  paused: boolean;
}

/** What the supervisor records as the container runs. */
export interface SupervisorStatus {
  status: 'created' | 'running' | 'stopped';
  exitCode?: number;
  signal?: string;
}

export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** 1 to 1024 characters of letters, digits, '_', '+', '-', '.' (no path separator, not '.' or '..'). */
export function badContainerId(id: string): string | null {
  if (!/^[A-Za-z0-9_+\-.]{1,1024}$/.test(id) || id === '.' || id === '..') {
    return `'${id}' is not a container ID (letters, digits, '_', '+', '-', '.')`;
  }
  return null;
}

function writeAtomic(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}

/** One container's directory under --root: its record, status, lock and control socket. */
export class ContainerDir {
  readonly dir: string;
  /** The directory, held open (O_CLOEXEC) by a process that reaches a long socket path. */
  private dirFd: number | undefined;

  constructor(
    readonly root: string,
    readonly id: string,
  ) {
    const bad = badContainerId(id);
    if (bad !== null) throw new OciError(bad);
    this.dir = join(root, id);
  }

  get exists(): boolean {
    return existsSync(join(this.dir, 'record.json'));
  }

  /**
   * The control socket's path. One longer than sockaddr_un's sun_path
   * (unix(7)) would be cut short by libuv without an error, leaving the
   * socket outside the directory and two containers whose IDs share a prefix
   * on one socket: it is reached through an fd of the directory instead.
   */
  get socket(): string {
    const path = join(this.dir, 'ctl.sock');
    if (Buffer.byteLength(path) <= SUN_PATH_MAX) return path;
    this.dirFd ??= openSync(this.dir, 'r');
    return `/proc/self/fd/${this.dirFd}/ctl.sock`;
  }

  get scratch(): string {
    return join(this.dir, 'scratch');
  }

  /** Makes the directory, refusing an ID in use. */
  make(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      mkdirSync(this.dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new OciError(`container with id ${this.id} already exists`);
      }
      throw error;
    }
  }

  /**
   * Runs `body` holding the container's lock (flock on its directory), so
   * that two calls for one container (a shim and a restarted shim, `kill` and
   * `delete`) do not interleave.
   */
  async locked<T>(body: () => Promise<T>): Promise<T> {
    let fd: number;
    try {
      fd = openSync(this.dir, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw doesNotExist(this.id);
      throw error;
    }
    try {
      flock(fd, LOCK_EX);
      try {
        return await body();
      } finally {
        flock(fd, LOCK_UN);
      }
    } finally {
      closeSync(fd);
    }
  }

  record(): ContainerRecord {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'record.json'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw doesNotExist(this.id);
      throw error;
    }
    return JSON.parse(text) as ContainerRecord;
  }

  writeRecord(record: ContainerRecord): void {
    writeAtomic(join(this.dir, 'record.json'), `${JSON.stringify(record)}\n`);
  }

  supervisorStatus(): SupervisorStatus | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'status.json'), 'utf8')) as SupervisorStatus;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  writeSupervisorStatus(status: SupervisorStatus): void {
    writeAtomic(join(this.dir, 'status.json'), `${JSON.stringify(status)}\n`);
  }

  /** Whether the supervisor the record names still runs (the same process, not a reused pid). */
  supervisorAlive(record: ContainerRecord): boolean {
    if (record.pid <= 0) return false;
    const start = startTimeOf(record.pid);
    if (start === null || start !== record.pidStart) return false;
    // A zombie has not been reaped by the shim yet: it has ended.
    try {
      const stat = readFileSync(`/proc/${record.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }

  status(record: ContainerRecord): ContainerStatus {
    if (!this.supervisorAlive(record)) return 'stopped';
    const own = this.supervisorStatus();
    if (own === null || own.status === 'stopped') return own === null ? 'creating' : 'stopped';
    if (own.status === 'running' && record.paused) return 'paused';
    return own.status;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Writes the pid file the way runc does: decimal digits, no newline, replaced atomically. */
export function writePidFile(path: string, pid: number): void {
  writeAtomic(path, String(pid));
}
