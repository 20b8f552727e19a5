import {
  AF_UNIX,
  addressOf,
  close,
  encodeIovec,
  encodeMsghdr,
  encodeScmRights,
  encodeSockaddrUn,
  openPty,
  type Pty,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  setWindowSize,
  syscall,
} from '@sandlock/sys';

/**
 * A terminal for the container, its master handed to whoever listens on
 * `consoleSocket` (containerd's shim): one sendmsg(2) with the pty's name as
 * the payload and the master as SCM_RIGHTS, which is what the shim reads
 * (runc's utils.SendFile). Returns the pair; the caller keeps the slave for
 * the workload's stdio and may close the master, which the shim now holds.
 */
export function openConsole(
  consoleSocket: string,
  size: { rows: number; columns: number } | null,
): Pty {
  const pty = openPty();
  try {
    if (size !== null) setWindowSize(pty.master, size.rows, size.columns);
    const socket = syscall('socket', AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    try {
      const address = encodeSockaddrUn(consoleSocket);
      syscall('connect', socket, address.buffer, address.length);
      const payload = Buffer.from(pty.name);
      const iov = encodeIovec({ base: addressOf(payload), len: BigInt(payload.length) });
      const control = encodeScmRights([pty.master]);
      const header = encodeMsghdr({
        iov: addressOf(iov),
        iovLen: 1n,
        control: addressOf(control),
        controlLen: BigInt(control.length),
      });
      syscall('sendmsg', socket, header, 0);
      void [payload, iov, control]; // alive until the call is over
    } finally {
      close(socket);
    }
    return pty;
  } catch (error) {
    close(pty.master);
    close(pty.slave);
    throw error;
  }
}
