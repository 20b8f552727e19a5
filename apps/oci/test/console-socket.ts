import { readSync, writeSync } from 'node:fs';
import {
  AF_UNIX,
  addressOf,
  close,
  decodeMsghdr,
  decodeScmRights,
  ERRNO,
  encodeIovecInto,
  encodeMsghdrInto,
  encodeScmRights,
  encodeSockaddrUn,
  F_GETFL,
  F_SETFL,
  fcntl,
  hostArch,
  IOVEC_SIZE,
  MSG_CMSG_CLOEXEC,
  MSGHDR_SIZE,
  openFlags,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  syscall,
  trySyscall,
} from '@sandlock/sys';

// The shim's side of `--console-socket` (what containerd's console.Recv
// does): listens on a path, takes the one message the runtime sends, whose
// payload is the terminal's name and whose SCM_RIGHTS descriptor is its master.

/** Only a hang reaches it. */
const DEADLINE_MS = 60_000;

const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

export class ConsoleSocket {
  private readonly listener: number;

  constructor(readonly path: string) {
    // socket(2): SOCK_NONBLOCK is O_NONBLOCK's value.
    const nonBlocking = openFlags(hostArch()).O_NONBLOCK;
    this.listener = syscall('socket', AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | nonBlocking, 0);
    const address = encodeSockaddrUn(path);
    syscall('bind', this.listener, address.buffer, address.length);
    syscall('listen', this.listener, 1);
  }

  /** The terminal sent: its name and its master (close-on-exec, the caller's to close). */
  async receive(): Promise<{ name: string; master: number }> {
    const deadline = Date.now() + DEADLINE_MS;
    let connection: number;
    for (;;) {
      connection = trySyscall('accept4', this.listener, null, null, SOCK_CLOEXEC);
      if (connection >= 0) break;
      if (connection !== -ERRNO.EAGAIN) throw new Error(`accept4: errno ${-connection}`);
      if (Date.now() > deadline) throw new Error('no terminal came to the console socket');
      await pause(50);
    }
    try {
      const payload = Buffer.alloc(4096);
      const control = Buffer.alloc(encodeScmRights([-1]).length);
      const header = Buffer.alloc(MSGHDR_SIZE + IOVEC_SIZE);
      encodeIovecInto(header, MSGHDR_SIZE, {
        base: addressOf(payload),
        len: BigInt(payload.length),
      });
      encodeMsghdrInto(header, 0, {
        iov: addressOf(header) + BigInt(MSGHDR_SIZE),
        iovLen: 1n,
        control: addressOf(control),
        controlLen: BigInt(control.length),
      });
      // The accepted socket is blocking: the runtime sent its message before it went on.
      const length = syscall('recvmsg', connection, header, MSG_CMSG_CLOEXEC);
      const fds = decodeScmRights(control, Number(decodeMsghdr(header).controlLen));
      if (fds.length !== 1) throw new Error(`${fds.length} descriptors came, not one`);
      const master = fds[0]!;
      fcntl(master, F_SETFL, fcntl(master, F_GETFL) | openFlags(hostArch()).O_NONBLOCK);
      return { name: payload.subarray(0, length).toString(), master };
    } finally {
      close(connection);
    }
  }

  close(): void {
    close(this.listener);
  }
}

/**
 * Reads a terminal's master until `done` holds for what came (or the
 * terminal's other side is closed everywhere: EIO).
 */
export async function readTerminal(master: number, done: (text: string) => boolean) {
  const deadline = Date.now() + DEADLINE_MS;
  const chunk = Buffer.alloc(4096);
  let text = '';
  while (!done(text)) {
    let length: number;
    try {
      length = readSync(master, chunk);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EIO') break;
      if (code !== 'EAGAIN') throw error;
      if (Date.now() > deadline) throw new Error(`the terminal said only ${JSON.stringify(text)}`);
      await pause(50);
      continue;
    }
    text += chunk.subarray(0, length).toString();
  }
  return text;
}

export function writeTerminal(master: number, text: string): void {
  writeSync(master, text);
}
