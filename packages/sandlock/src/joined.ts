import { constants } from 'node:os';
import { close, pidfdInfo, pidfdSendSignal } from '@sandlock/sys';
import { SandboxError } from './errors.js';

/** How a joined program ended. */
export interface JoinedExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** How often wait() looks at the pidfd: Node has no way to wait on one. */
const EXIT_POLL_MS = 20;

function signalName(number: number): NodeJS.Signals | null {
  const entry = Object.entries(constants.signals).find(([, value]) => value === number);
  return (entry?.[0] as NodeJS.Signals | undefined) ?? null;
}

/**
 * A program started in a running sandbox by {@link SandboxProcess.join}: a
 * process of that sandbox (forked inside it), whose exit status comes from
 * its pidfd (PIDFD_INFO_EXIT, as its parent is the sandbox's zygote).
 */
export class JoinedProcess {
  private readonly ended: Promise<JoinedExit>;
  private closed = false;

  /** @internal */
  constructor(
    readonly pid: number,
    private readonly pidfd: number,
  ) {
    this.ended = this.poll();
  }

  private async poll(): Promise<JoinedExit> {
    for (;;) {
      let status: number | null;
      try {
        status = pidfdInfo(this.pidfd, true)?.waitStatus ?? null;
      } catch (error) {
        this.close();
        throw new SandboxError(
          `sandlock: the exit status of process ${this.pid} cannot be read: ${(error as Error).message}`,
          'join',
        );
      }
      if (status !== null) {
        this.close();
        const signal = status & 0x7f;
        return signal === 0
          ? { exitCode: (status >> 8) & 0xff, signal: null }
          : { exitCode: null, signal: signalName(signal) };
      }
      await new Promise((done) => setTimeout(done, EXIT_POLL_MS));
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.pidfd);
  }

  /** Resolves once the program has ended (not its children, which stay in the sandbox). */
  wait(): Promise<JoinedExit> {
    return this.ended;
  }

  /** Sends `signal` to the program (nothing once it has ended). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    const number = constants.signals[signal];
    if (number === undefined) throw new TypeError(`sandlock: unknown signal ${String(signal)}`);
    if (this.closed) return;
    try {
      pidfdSendSignal(this.pidfd, number);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') throw error;
    }
  }
}
