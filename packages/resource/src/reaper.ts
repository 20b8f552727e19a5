import { close, pidfdOpen, REAPER_SIGNAL, trySyscall } from '@sandlock/sys';

/**
 * A sandbox addressed through its reaper (`SandboxProcess.reaperPid`): the
 * process Node spawned, ancestor of every process of the sandbox, which turns
 * REAPER_SIGNAL.killAll / stopAll / continueAll into SIGKILL / SIGSTOP /
 * SIGCONT for all of them. Held through a pidfd so that a signal can never
 * reach another process that reused the pid.
 */
export class Reaper {
  private pidfd: number | null;

  constructor(readonly pid: number) {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new RangeError(`sandlock: invalid reaper pid ${pid}`);
    }
    try {
      this.pidfd = pidfdOpen(pid);
    } catch {
      this.pidfd = null; // already gone: nothing to watch
    }
  }

  /** False once the reaper has exited (or was never there). */
  get alive(): boolean {
    if (this.pidfd === null) return false;
    // Signal 0 checks existence; a zombie still counts until Node reaps it.
    return trySyscall('pidfd_send_signal', this.pidfd, 0, null, 0) === 0;
  }

  private send(signal: number): boolean {
    if (this.pidfd === null) return false;
    return trySyscall('pidfd_send_signal', this.pidfd, signal, null, 0) === 0;
  }

  /** SIGKILL every process of the sandbox. */
  killAll(): boolean {
    return this.send(REAPER_SIGNAL.killAll);
  }

  /** SIGSTOP every process of the sandbox. */
  stopAll(): boolean {
    return this.send(REAPER_SIGNAL.stopAll);
  }

  /** SIGCONT every process of the sandbox. */
  continueAll(): boolean {
    return this.send(REAPER_SIGNAL.continueAll);
  }

  close(): void {
    if (this.pidfd !== null) close(this.pidfd);
    this.pidfd = null;
  }
}
