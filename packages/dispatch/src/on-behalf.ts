// System calls made for a sandbox by its reaper: the stub's reaper sits in
// the sandbox's own Landlock domain (the policy's), with the sandbox's
// credentials and no capabilities, and serves requests on a socket only the
// supervisor holds (brokerCall of @sandlock/sys). What it opens is what the
// kernel would let a process confined by the policy open: the supervisor
// decides, the reaper does.
import { brokerCall, hostArch, openFlags } from '@sandlock/sys';

const { O_CLOEXEC } = openFlags(hostArch());

/** How long a request may take before the sandbox is given up on: the reaper answers in microseconds. */
const BROKER_TIMEOUT_MS = 5000;

/** What a handler may have done with the sandbox's authority. */
export interface OnBehalf {
  /**
   * openat(dir, name, flags | O_CLOEXEC) made by the sandbox's reaper: a new
   * descriptor of this process, or -errno. `dir` is a descriptor of this
   * process (O_PATH will do); `name` one component (no `/`), or `.`;
   * `mode` for O_CREAT.
   */
  openat(dir: number, name: Buffer, flags: number, mode?: number): number;
}

/**
 * The reaper's broker socket of one sandbox, used by the worker thread that
 * serves it (one request at a time: replies come in order). A request that
 * got no reply leaves the socket out of step: it is not used again, and the
 * call fails (the handler's error refuses it).
 */
export class Broker implements OnBehalf {
  private broken: Error | null = null;

  constructor(private readonly socket: number) {}

  openat(dir: number, name: Buffer, flags: number, mode = 0): number {
    if (name.includes(0x2f) || name.length === 0) {
      throw new TypeError('sandlock: an on-behalf open takes one path component');
    }
    if (this.broken !== null) throw this.broken;
    try {
      const reply = brokerCall(
        this.socket,
        {
          syscall: 'openat',
          args: [{ fd: dir }, { data: 0 }, flags | O_CLOEXEC, mode],
          data: Buffer.concat([name, Buffer.from([0])]),
          returnsFd: true,
        },
        BROKER_TIMEOUT_MS,
      );
      return reply.result < 0 ? reply.result : reply.fd;
    } catch (error) {
      this.broken = error as Error;
      throw error;
    }
  }
}
