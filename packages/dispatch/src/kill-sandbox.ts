import {
  close,
  ERRNO,
  pidfdInfo,
  pidOfPidfd,
  REAPER_SIGNAL,
  SysError,
  startTimeOf,
  trySyscall,
} from '@sandlock/sys';

/** The sandbox's reaper, as the supervisor knows it from attach. */
export interface Reaper {
  readonly pid: number;
  readonly pidfd: number;
  /** Its start time (startTimeOf) read at attach, null if that failed. */
  readonly start: number | null;
}

/** {@link KillOutcome.problem} when the reaper's process is over. */
export const REAPER_EXITED = 'the reaper has exited';

/** What became of a kill: delivered or not, and what went wrong on the way. */
export interface KillOutcome {
  /** The signal is queued to the reaper. */
  sent: boolean;
  /** Why the session's pidfd could not be used, or null. */
  problem: string | null;
}

/**
 * Asks the sandbox's reaper to SIGKILL every process of the sandbox
 * (REAPER_SIGNAL.killAll). The session's pidfd is checked first: a number
 * closed and reused would send the signal to some other process, or nowhere
 * with pidfd_send_signal's error the only trace. When it does not name the
 * reaper, a new pidfd of the reaper's pid is used instead, once its start
 * time proves it is still the reaper (a pid reused since has another).
 */
export function signalReaper(reaper: Reaper): KillOutcome {
  let problem = pidfdProblem(reaper);
  if (problem === null) {
    const sent = trySyscall('pidfd_send_signal', reaper.pidfd, REAPER_SIGNAL.killAll, 0, 0);
    if (sent >= 0) return { sent: true, problem: null };
    if (sent === -ERRNO.ESRCH) return { sent: false, problem: REAPER_EXITED };
    problem = `pidfd_send_signal to pidfd ${reaper.pidfd} failed: errno ${-sent}`;
  }
  if (problem === REAPER_EXITED) return { sent: false, problem };
  return { sent: signalByNewPidfd(reaper), problem };
}

/** Null when `reaper.pidfd` names the reaper, else what is wrong with it. */
function pidfdProblem(reaper: Reaper): string | null {
  let pid: number | null;
  try {
    const info = pidfdInfo(reaper.pidfd, false);
    if (info === null) return REAPER_EXITED;
    pid = info.pid;
  } catch (error) {
    if (!(error instanceof SysError) || error.errno === ERRNO.EBADF) {
      return `pidfd ${reaper.pidfd} is not open`;
    }
    // Not a pidfd (ENOTTY), or a kernel before 6.13 without PIDFD_GET_INFO:
    // its fdinfo names the pid of a pidfd; with none, the send decides.
    try {
      pid = pidOfPidfd(reaper.pidfd);
    } catch {
      pid = null;
    }
    if (pid === null) return null;
  }
  return pid === reaper.pid ? null : `pidfd ${reaper.pidfd} names pid ${pid}, not the reaper`;
}

function signalByNewPidfd(reaper: Reaper): boolean {
  if (reaper.start === null) return false;
  const pidfd = trySyscall('pidfd_open', reaper.pid, 0);
  if (pidfd < 0) return false;
  try {
    // Read after the pidfd pinned its process: the same start time means the
    // pid still named the reaper then, so the pidfd names it too.
    let start: number | null;
    try {
      start = startTimeOf(reaper.pid);
    } catch {
      return false;
    }
    if (start !== reaper.start) return false;
    return trySyscall('pidfd_send_signal', pidfd, REAPER_SIGNAL.killAll, 0, 0) >= 0;
  } finally {
    close(pidfd);
  }
}

/**
 * What to report of a kill for `reason`, or null. A reaper that has exited
 * ended with its sandbox, unless a call still waits for its answer
 * (`callerWaits`): then a process of the sandbox outlived it.
 */
export function killFailure(
  outcome: KillOutcome,
  reason: string,
  callerWaits: boolean,
): string | null {
  const { sent, problem } = outcome;
  if (problem === null || (!sent && !callerWaits && problem === REAPER_EXITED)) return null;
  return `sandlock: ${sent ? 'killed the sandbox, but' : 'the sandbox was not killed:'} ${problem} (${reason})`;
}
