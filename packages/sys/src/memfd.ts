// Files whose contents a supervisor makes up (a virtual /etc/hostname, a
// seeded /proc/sys/kernel/random/uuid): a sealed memfd, and read-only
// descriptors of it to hand to a sandboxed process.
import { writeSync } from 'node:fs';
import {
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  openFlags,
} from './constants.js';
import { close, fcntl, memfdCreate, openAt } from './libc.js';
import { hostArch } from './syscalls/index.js';

const SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
const O = openFlags(hostArch());
/** The access mode that is neither O_RDONLY, O_WRONLY nor O_RDWR (open(2): "flags 3"). */
const O_NOACCESS = 3;

/** A memfd holding `contents`, sealed against any change (close-on-exec in this process). */
export function sealedMemfd(contents: string | Buffer): number {
  const fd = memfdCreate('sandlock', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  try {
    const data = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents;
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written);
    fcntl(fd, F_ADD_SEALS, SEALS);
    return fd;
  } catch (error) {
    close(fd);
    throw error;
  }
}

/**
 * A new read-only open file description of a memfd, with its own offset,
 * opened through /proc/self/fd (a descriptor injected into a sandbox is
 * O_RDONLY, and the seals forbid writes through any other). Not
 * fs.openSync: whoever receives it closes it with close(2), and a worker
 * thread's fs warns when a number it opened comes back.
 */
export function readOnlyReopen(memfd: number): number {
  return openAt(`/proc/self/fd/${memfd}`, O.O_RDONLY | O.O_CLOEXEC);
}

/**
 * A descriptor of a memfd that neither reads nor writes: open(2)'s access
 * mode 3 (OPEN_FMODE() in include/linux/fs.h gives it neither FMODE_READ
 * nor FMODE_WRITE; the open itself checks read and write permission, which
 * the supervisor has). It still serves fstat and execveat(fd, "",
 * AT_EMPTY_PATH), which opens the file again checking MAY_EXEC only
 * (do_open_execat(), fs/exec.c); a reopen through /proc/self/fd checks the
 * memfd's mode and owner against whoever reopens it. ADDFD takes it
 * (seccomp_notify_addfd() refuses only O_PATH files, through fget()).
 */
export function noAccessReopen(memfd: number): number {
  return openAt(`/proc/self/fd/${memfd}`, O_NOACCESS | O.O_CLOEXEC);
}

/**
 * A read-only descriptor of a new sealed memfd holding `contents`: what a
 * supervisor injects as the result of an open it answers with made-up
 * contents (the memfd itself is closed; the descriptor keeps it alive).
 */
export function readOnlyFile(contents: string | Buffer): number {
  const memfd = sealedMemfd(contents);
  try {
    return readOnlyReopen(memfd);
  } finally {
    close(memfd);
  }
}
