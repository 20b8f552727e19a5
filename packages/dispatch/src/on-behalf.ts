// System calls made for a sandbox by its reaper: the stub's reaper sits in
// the sandbox's own Landlock domain (the policy's), with the sandbox's
// credentials and no capabilities, and serves requests on a socket only the
// supervisor holds (brokerCall of @sandlock/sys). What it opens is what the
// kernel would let a process confined by the policy open: the supervisor
// decides, the reaper does.
import {
  type BrokerArg,
  BrokerError,
  brokerCall,
  ERRNO,
  hostArch,
  openFlags,
  readableNow,
} from '@sandlock/sys';

const { O_CLOEXEC } = openFlags(hostArch());

/**
 * How long a request may wait: the reaper answers in tens of microseconds;
 * meanwhile the worker serves no other sandbox.
 */
const BROKER_TIMEOUT_MS = 500;

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
   * Any other non-blocking call made by the reaper (mkdirat, unlinkat,
   * renameat2, fchownat…): `args` as brokerCall of @sandlock/sys takes them
   * (integers, `{ fd }` of this process, `{ data: offset }` into `data`);
   * `data` is updated with what the call wrote there. The result, or
   * -errno; with `returnsFd`, a new descriptor of this process.
   */
  call(syscall: string, args: readonly BrokerArg[], data?: Buffer, returnsFd?: boolean): number;
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
    return this.call(
      'openat',
      [{ fd: dir }, { data: 0 }, flags | O_CLOEXEC, mode],
      Buffer.concat([name, Buffer.from([0])]),
      true,
    );
  }

  call(syscall: string, args: readonly BrokerArg[], data?: Buffer, returnsFd = false): number {
    if (this.closed !== null) throw this.closed;
    if (this.late) {
      if (!readableNow(this.socket)) return -EAGAIN;
      this.late = false; // the late reply is there: the next call drops it
    }
    try {
      const reply = brokerCall(
        this.socket,
        { syscall, args, ...(data !== undefined ? { data } : {}), returnsFd },
        BROKER_TIMEOUT_MS,
      );
      if (data !== undefined) reply.data.copy(data, 0, 0, data.length);
      if (!returnsFd) return reply.result;
      return reply.result < 0 ? reply.result : reply.fd;
    } catch (error) {
      if (error instanceof BrokerError && error.reason === 'timeout') {
        this.late = true;
        return -EAGAIN;
      }
      this.closed = error as Error;
      throw error;
    }
  }
}

const { EAGAIN } = ERRNO;
