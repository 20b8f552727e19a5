// System calls made for a sandbox by its reaper: the stub's reaper sits in
// the sandbox's own Landlock domain (the policy's), with the sandbox's
// credentials and no capabilities, and serves requests on a socket only the
// supervisor holds (brokerCall of @sandlock/sys). What it opens is what the
// kernel would let a process confined by the policy open: the supervisor
// decides, the reaper does.
import {
  BrokerError,
  type BrokerRequest,
  brokerCall,
  ERRNO,
  hostArch,
  openFlags,
  readableNow,
} from '@sandlock/sys';

const { O_CLOEXEC } = openFlags(hostArch());

/**
 * How long a request may wait: the reaper answers in tens of microseconds;
 * meanwhile the worker serves no other sandbox. On a 2-vCPU machine running
 * two test suites at once, 500 ms was measured to be too short for a reaper
 * that was runnable but not scheduled (opens failed with EAGAIN): only a
 * reaper stopped on purpose should reach this.
 */
const BROKER_TIMEOUT_MS = 2000;

/** What a handler may have done with the sandbox's authority. */
export interface OnBehalf {
  /**
   * openat(dir, name, flags | O_CLOEXEC) made by the sandbox's reaper: a new
   * descriptor of this process, or -errno. `dir` is a descriptor of this
   * process (O_PATH will do); `name` one component (no `/`), or `.`;
   * `mode` for O_CREAT.
   */
  openat(dir: number, name: Buffer, flags: number, mode?: number): number;
  /**
   * Any system call made by the sandbox's reaper (brokerCall of
   * @sandlock/sys: descriptors of this process as `{ fd }`, buffers in
   * `data`). It must not block: make a socket non-blocking for it. The
   * result is -EAGAIN when the reaper is late. `fd`: the descriptor a
   * `returnsFd` call made, or -1; `data` as the call left it.
   */
  call(request: BrokerRequest): { result: number; fd: number; data: Buffer };
}

/**
 * The reaper's broker socket of one sandbox, used by the worker thread that
 * serves it (one request at a time). A reaper that does not answer in time
 * (stopped by someone who may signal it, or a machine out of breath) costs
 * the worker one wait: the call fails with EAGAIN, and so does every call
 * while that reply is still missing (a late reply is dropped by the next
 * call). A reaper gone closes the broker for good.
 */
export class Broker implements OnBehalf {
  private closed: Error | null = null;
  /** Whether a request timed out and its reply has not been seen since. */
  private late = false;

  constructor(private readonly socket: number) {}

  openat(dir: number, name: Buffer, flags: number, mode = 0): number {
    if (name.includes(0x2f) || name.length === 0) {
      throw new TypeError('sandlock: an on-behalf open takes one path component');
    }
    const reply = this.call({
      syscall: 'openat',
      args: [{ fd: dir }, { data: 0 }, flags | O_CLOEXEC, mode],
      data: Buffer.concat([name, Buffer.from([0])]),
      returnsFd: true,
    });
    return reply.result < 0 ? reply.result : reply.fd;
  }

  call(request: BrokerRequest): { result: number; fd: number; data: Buffer } {
    if (this.closed !== null) throw this.closed;
    const late = { result: -EAGAIN, fd: -1, data: Buffer.alloc(0) };
    if (this.late) {
      if (!readableNow(this.socket)) return late;
      this.late = false; // the late reply is there: the next call drops it
    }
    try {
      return brokerCall(this.socket, request, BROKER_TIMEOUT_MS);
    } catch (error) {
      if (error instanceof BrokerError && error.reason === 'timeout') {
        this.late = true;
        return late;
      }
      this.closed = error as Error;
      throw error;
    }
  }
}

const { EAGAIN } = ERRNO;
